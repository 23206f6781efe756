"""Bilevel with a closed-form reply -> the reduced NLP over x alone.

With the reaction map y*(x) of a strictly convex follower (``analysis/reaction.py``: one
Piecewise per follower variable, pieces = active sets), the bilevel problem is

    min_x Phi(x) = F(x, y*(x))  s.t.  G(x, y*(x)) >= 0,  H(x, y*(x)) = 0

an NLP in x whose functions are Piecewise (kinks where the follower's active set changes).
``invert`` maps x back to the bilevel point: y = y*(x) and the multipliers of the active piece.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import casadi as ca
import numpy as np
import sympy as sp

from ..lower import SympyToCasadi, to_casadi
from ..values import Point
from .nlp import NLP
from .reduction import Reduction

if TYPE_CHECKING:
    from ..model.protocol import Problem
    from ..analysis.reaction import ReactionMap


def _piecewise_total(pairs: list) -> sp.Expr:
    """A Piecewise whose last branch is ``True`` (CasADi needs an otherwise-branch)."""
    if len(pairs) == 1:
        return pairs[0][0]
    return sp.Piecewise(*pairs[:-1], (pairs[-1][0], True))


class Substitution(Reduction):
    """Substitute the reaction map ``reaction`` (at parameter values ``pvals``, symbol -> value)."""

    def __init__(self, reaction: "ReactionMap", pvals: dict):
        self.reaction, self.pvals = reaction, dict(pvals)

    def apply(self, problem: Problem) -> tuple[NLP, dict]:
        xs = ca.SX.sym("x", problem.n_x)
        tr = SympyToCasadi({s: xs[i] for i, s in enumerate(problem.leader)})
        ys = {s: _piecewise_total([(pc.y[s], pc.region) for pc in self.reaction.pieces]) for s in problem.follower}
        sub = lambda e: e.subs(self.pvals).subs(ys)  # noqa: E731
        g, lbg, ubg = NLP.constraints((to_casadi([sub(c.expr) for c in problem.G], tr), 0, np.inf),
                                      (to_casadi([sub(c.expr) for c in problem.H], tr), 0, 0))
        nlp = NLP(x=xs, f=tr(sub(problem.F)), g=g, lbg=lbg, ubg=ubg, blocks={"x": slice(0, problem.n_x)},
                  name="substitution")
        return nlp, {"blocks": nlp.blocks}

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        """The bilevel point at the solution ``w`` of the reduced NLP (see :meth:`point`)."""
        return self.point(np.asarray(w, float).reshape(-1)[inverse_data["blocks"]["x"]])

    def point(self, x: np.ndarray) -> Point:
        """(x, y*(x), lam and mu of the active piece) at the leader point ``x``."""
        lam, mu = self.reaction.multipliers(x)
        return Point(x, self.reaction(x), lam, mu)

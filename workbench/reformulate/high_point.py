"""The high-point relaxation with value-function cuts: both levels' constraints, no optimality.

    min_{x, y}  F(x, y)
    s.t.        G(x, y) >= 0,  g(x, y) >= 0,  f(x, y_k) - f(x, y) >= 0  (k = 1..K),
                H(x, y) = 0,   h(x, y) = 0

Every bilevel-feasible point satisfies the cuts, since f(x, y*(x)) <= f(x, y_k) for any
follower-feasible y_k; so this is a relaxation, tightened by each better follower reply the
certificate finds (Mitsos, Lemonidis & Barton's discretisation, here with local solves). The
cuts are valid only when the follower's feasible set does not depend on x: then every y_k is
feasible at every x. ``invert`` reads (x, y) through the NLP's blocks.
"""
from __future__ import annotations

from typing import Sequence

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..values import Point
from .nlp import NLP
from .reduction import Reduction


class HighPointRelaxation(Reduction):
    """LoweredProblem -> NLP over w = [x, y] with the value-function cuts at ``cuts`` (points y_k)."""

    def __init__(self, cuts: Sequence[np.ndarray] = ()):
        self.cuts = [np.asarray(c, float).reshape(-1) for c in cuts]

    def accepts(self, problem: LoweredProblem) -> bool:
        """The cuts are valid only when g and h do not depend on x."""
        return not ca.depends_on(ca.vertcat(problem.g, problem.h), problem.x)

    def apply(self, lp: LoweredProblem) -> tuple[NLP, dict]:
        cuts = [ca.substitute(lp.f, lp.y, ca.DM(c)) - lp.f for c in self.cuts]
        g, lbg, ubg = NLP.constraints((lp.G, 0.0, np.inf), (lp.g, 0.0, np.inf), *((c, 0.0, np.inf) for c in cuts),
                                      (lp.H, 0.0, 0.0), (lp.h, 0.0, 0.0))
        blocks = {"x": slice(0, lp.n_x), "y": slice(lp.n_x, lp.n_x + lp.n_y)}
        nlp = NLP(x=ca.vertcat(lp.x, lp.y), p=lp.p, f=lp.F, g=g, lbg=lbg, ubg=ubg, blocks=blocks, name="high_point")
        return nlp, {"nlp": nlp}

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        nlp = inverse_data["nlp"]
        return Point(nlp.block(w, "x"), nlp.block(w, "y"))

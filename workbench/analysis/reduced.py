"""The reduced (implicit) leader objective  Phi(x) = F(x, y*(x)).

Substituting the follower's reply turns the bilevel problem into a single-level
one in x; its shape (kinks where the follower's active set changes, emergent
non-convexity) is what decides whether a local method can be trusted. When the
reaction map has a closed form, Phi is a SymPy expression (a Piecewise over the
active sets); otherwise Phi is evaluated numerically by solving the follower
(multistart Ipopt, best value wins; ties are broken optimistically, i.e. the
follower optimum with the smallest F).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import sympy as sp

from ..lower import lower
from ..solve import FollowerSolver, follower_starts
from .reaction import NoClosedFormError, ReactionMap, reaction_map

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class ReducedObjective:
    """Phi(x) = F(x, y*(x)): ``expr`` (SymPy, or None with ``reason``) and a numeric ``__call__``.

    ``pieces`` is a list of (F on the piece, leader region) pairs in Piecewise order;
    ``closed_form`` says which of the two evaluations ``__call__`` uses.
    """

    problem: BilevelProblem
    expr: sp.Expr | None
    pieces: list[tuple[sp.Expr, Any]]
    reaction: ReactionMap | None
    reason: str = ""
    parameters: np.ndarray | None = None
    n_starts: int = 6
    _fn: Callable | None = field(default=None, repr=False)
    _follower: FollowerSolver | None = field(default=None, repr=False)

    @property
    def closed_form(self) -> bool:
        return self.expr is not None

    def follower_point(self, x: Any) -> np.ndarray:
        """y*(x): from the closed form, or the best of a follower multistart."""
        x = np.asarray(x, float).reshape(-1)
        if self.reaction is not None:
            return self.reaction(x)
        lp = lower(self.problem)
        if self._follower is None:
            self._follower = FollowerSolver(lp, tight=True)
        starts = follower_starts(lp, lp.y_start, self.n_starts)
        sols = [s for s in self._follower.multistart(x, self.parameters, starts) if s.success]
        if not sols:
            return np.full(lp.n_y, np.nan)
        best = sols[0].value
        ties = [s for s in sols if s.value <= best + 1e-8 * (1 + abs(best))]
        return min(ties, key=lambda s: float(lp.evaluate("upper_objective", x, s.y, self.parameters)[0])).y

    def __call__(self, x: Any) -> float:
        """Phi(x) as a float (nan where the follower has no solution)."""
        x = np.asarray(x, float).reshape(-1)
        if self._fn is not None:
            return float(self._fn(*x))
        y = self.follower_point(x)
        if not np.all(np.isfinite(y)):
            return float("nan")
        return float(lower(self.problem).evaluate("upper_objective", x, y, self.parameters)[0])

    def _repr_latex_(self) -> str | None:
        if not self.closed_form:
            return None
        return f"$\\Phi({', '.join(map(sp.latex, self.problem.leader))}) = {sp.latex(self.expr)}$"

    def __repr__(self) -> str:
        return f"ReducedObjective({self.expr})" if self.closed_form else f"ReducedObjective(numeric: {self.reason})"


def reduced_objective(problem: BilevelProblem, parameters: Mapping | None = None, n_starts: int = 6,
                      **reaction_options: Any) -> ReducedObjective:
    """Phi(x) = F(x, y*(x)) of ``problem`` (minimisation sense, parameters substituted).

    Uses :func:`reaction_map` when it succeeds; otherwise the returned object has
    ``expr = None``, ``reason`` saying why, and evaluates Phi with follower solves.
    """
    p = problem.parameter_vector(parameters)
    pvals = {s: sp.nsimplify(v) for s, v in zip(problem.parameter_symbols, p)}
    try:
        rm = reaction_map(problem, parameters=parameters, **reaction_options)
    except NoClosedFormError as exc:
        return ReducedObjective(problem, None, [], None, reason=str(exc), parameters=p, n_starts=n_starts)
    F = problem.F.subs(pvals)
    pieces = [(sp.simplify(F.subs(pc.y)), pc.region) for pc in rm.pieces]
    expr = pieces[0][0] if len(pieces) == 1 and pieces[0][1] == sp.true else sp.Piecewise(*pieces)
    fn = sp.lambdify(problem.leader, expr, "numpy")
    return ReducedObjective(problem, expr, pieces, rm, parameters=p, n_starts=n_starts, _fn=fn)

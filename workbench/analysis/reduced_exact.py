"""The exact minimum of the reduced objective Phi(x) = F(x, y*(x)) in one leader variable (SymPy).

On each piece of a closed-form reaction map (``reaction.py``) Phi is a continuous expression of
x over an interval-like feasible set (the piece's region intersected with G(x, y*(x)) >= 0,
H(x, y*(x)) = 0). Its minimum there lies at a stationary point (dPhi/dx = 0) or at an end point
of the set, so all of them are enumerated with ``solveset`` and compared exactly; unbounded ends
are checked with limits (an infimum only approached is reported, never returned as a point).
``None`` means SymPy could not describe a feasible set or the stationary points: the caller then
solves the reduced NLP numerically (``reformulate/substitution.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy as sp

from .reaction import ReactionMap

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class ExactMinimum:
    """``best``: (value, x, y) of the smallest feasible candidate (None if none is feasible);
    ``candidates``: every feasible (value, x, y); ``limits``: ("limit", value, +-oo) at unbounded
    ends; ``below``: the limits below ``best`` (the infimum is not attained when non-empty)."""

    best: tuple | None
    candidates: list[tuple] = field(default_factory=list)
    limits: list[tuple] = field(default_factory=list)
    below: list[tuple] = field(default_factory=list)

    @property
    def unbounded(self) -> bool:
        return any(lim[1] == -sp.oo for lim in self.below)


def reduced_expression(problem: BilevelProblem, rm: ReactionMap, pvals: dict) -> sp.Expr:
    """Phi(x) as a SymPy expression: one branch per reaction piece (a Piecewise when there are several)."""
    pairs = [(sp.simplify(problem.F.subs(pvals).subs(pc.y)), pc.region) for pc in rm.pieces]
    return pairs[0][0] if len(pairs) == 1 and pairs[0][1] == sp.true else sp.Piecewise(*pairs)


def _candidates(problem: BilevelProblem, rm: ReactionMap, pvals: dict) -> list | None:
    """Stationary points and end points of every piece's feasible set (None if SymPy cannot say)."""
    x = problem.leader[0]
    F = problem.F.subs(pvals)
    cands: set = set()
    for pc in rm.pieces:
        region = pc.region.as_set() if pc.region != sp.true else sp.S.Reals
        feas = region
        for c in problem.G + problem.H:
            e = sp.simplify(c.expr.subs(pvals).subs(pc.y))
            s = sp.solveset(e >= 0 if c.kind == "ineq" else sp.Eq(e, 0), x, sp.S.Reals)
            if isinstance(s, sp.ConditionSet):
                return None
            feas = sp.Intersection(feas, s)
        if feas is sp.S.EmptySet:
            continue
        Fi = sp.simplify(F.subs(pc.y))
        stat = sp.solveset(sp.diff(Fi, x), x, feas)
        if isinstance(stat, sp.ConditionSet) or not (stat.is_FiniteSet or stat is sp.S.EmptySet):
            if not (sp.diff(Fi, x) == 0):
                return None
        else:
            cands |= set(stat)
        for end, lim in ((feas.inf, -sp.oo), (feas.sup, sp.oo)):
            if end.is_finite:
                cands.add(end)
            else:
                cands.add(("limit", sp.limit(Fi, x, lim), lim))
        bnd = feas.boundary
        if bnd.is_FiniteSet:
            cands |= {b for b in bnd if b.is_finite}
    return list(cands)


def exact_minimum(problem: BilevelProblem, rm: ReactionMap, pvals: dict) -> ExactMinimum | None:
    """The exact minimum of Phi over the leader's feasible set (module docstring), one leader variable."""
    cands = _candidates(problem, rm, pvals)
    if cands is None:
        return None
    x = problem.leader[0]
    F = problem.F.subs(pvals)
    limits = [c for c in cands if isinstance(c, tuple)]
    rows = []
    for c in (c for c in cands if not isinstance(c, tuple)):
        piece = next((pc for pc in rm.pieces if bool(pc.region.subs(x, c))), None)
        if piece is None:
            continue
        y = {s: e.subs(x, c) for s, e in piece.y.items()}
        ok = all((sp.simplify(k.expr.subs(pvals).subs(y).subs(x, c)) >= 0) if k.kind == "ineq"
                 else sp.simplify(k.expr.subs(pvals).subs(y).subs(x, c)) == 0 for k in problem.G + problem.H)
        if ok:
            rows.append((sp.nsimplify(sp.simplify(F.subs(y).subs(x, c))), c, y))
    best = min(rows, key=lambda r: float(r[0])) if rows else None
    below = [lim for lim in limits if best is None or lim[1] == -sp.oo or float(lim[1]) < float(best[0]) - 1e-12]
    return ExactMinimum(best, rows, limits, below)

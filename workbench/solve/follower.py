"""The follower's problem at a fixed leader point: min_y f(x, y) s.t. g >= 0, h = 0.

Used to certify (re-solve at x*), to generate good starts, and by the
sensitivity stage. Built once per problem; ``tight=True`` turns off Ipopt's
bound relaxation and tightens tolerances, as certification needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..reformulate.nlp import NLP
from .ipopt import TIGHT_OPTIONS, IpoptSolver


@dataclass
class FollowerSolution:
    """One follower solve: point, multipliers in our convention (L = f - lam^T g - mu^T h)."""

    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    value: float
    ipopt_status: str
    status: str
    success: bool
    start: np.ndarray


class FollowerSolver:
    """Compiled follower NLP with the leader point and parameters as ``p``."""

    def __init__(self, lp: LoweredProblem, tight: bool = True):
        self.lp = lp
        self.ng, self.nh = int(lp.g.numel()), int(lp.h.numel())
        g, lbg, ubg = NLP.constraints((lp.g, 0.0, np.inf), (lp.h, 0.0, 0.0))
        nlp = NLP(x=lp.y, p=ca.vertcat(lp.x, lp.p), f=lp.f, g=g, lbg=lbg, ubg=ubg, name="follower")
        self.solver = IpoptSolver(nlp, TIGHT_OPTIONS if tight else {})

    def solve(self, x: Any, p: Any, y0: Any) -> FollowerSolution:
        x = np.asarray(x, dtype=float).reshape(-1)
        y0 = np.asarray(y0, dtype=float).reshape(-1)
        r = self.solver.solve(y0, np.concatenate([x, np.asarray(p, dtype=float).reshape(-1)]))
        lam_g = r.lam_g if r.lam_g.size else np.zeros(self.ng + self.nh)
        return FollowerSolution(
            y=r.w, lam=-lam_g[: self.ng], mu=-lam_g[self.ng:], value=r.objective,
            ipopt_status=r.ipopt_status, status=r.status, success=r.success, start=y0,
        )

    def multistart(self, x: Any, p: Any, starts: Iterable[Any]) -> list[FollowerSolution]:
        """Solve from every start; successful solutions first, best value first."""
        sols = [self.solve(x, p, y0) for y0 in starts]
        return sorted(sols, key=lambda s: (not s.success, s.value if np.isfinite(s.value) else np.inf))


def box_from_constraints(lp: LoweredProblem, which: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Simple bounds a <= v_i <= b read off constraints of the form ±v_i + c >= 0.

    Only constraints that depend on a single variable of ``which`` linearly and on
    nothing else count; missing bounds are +-inf.
    """
    known = lp.known_boxes  # vectorised declarations state their boxes
    if known and which in known:
        return known[which][0].copy(), known[which][1].copy()
    v = lp.y if which == "y" else lp.x
    n = int(v.numel())
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    exprs = [lp.g] if which == "y" else [lp.G]  # the follower's box comes from its own constraints only
    others = ca.vertcat(lp.x, lp.p) if which == "y" else ca.vertcat(lp.y, lp.p)
    for block in exprs:
        for k in range(int(block.numel())):
            e = block[k]
            if ca.depends_on(e, others) or not ca.is_linear(e, v):
                continue
            grad = ca.evalf(ca.jacobian(e, v)).full().reshape(-1) if hasattr(ca, "evalf") else None
            if grad is None:
                continue
            nz = np.flatnonzero(grad)
            if nz.size != 1:
                continue
            i = int(nz[0])
            c = float(ca.evalf(ca.substitute(e, v, ca.DM.zeros(n))))
            bound = -c / grad[i]
            if grad[i] > 0:
                lo[i] = max(lo[i], bound)
            else:
                hi[i] = min(hi[i], bound)
    return lo, hi

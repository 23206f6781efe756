"""HiGHS through ``scipy.optimize.milp``: the terminal step of the MILP chain.

One call per :class:`~workbench.reformulate.lp_bigm_milp.MILP`; the result keeps HiGHS' own
status code and message (``workbench.status.failure_from_highs`` maps a failure to a status).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from ..reformulate.lp_bigm_milp import MILP


@dataclass(frozen=True)
class HighsResult:
    """What one HiGHS call returned (objective and dual bound include the MILP's offset)."""

    z: np.ndarray | None
    objective: float | None
    status: int          # scipy.optimize.milp's code: 0 optimal, 1 limit, 2 infeasible, 3 unbounded, 4 other
    message: str
    mip_gap: float | None
    mip_nodes: int | None
    mip_dual_bound: float | None

    @property
    def success(self) -> bool:
        return self.status == 0


class HighsSolver:
    """``scipy.optimize.milp`` with a relative gap and an optional time limit."""

    def __init__(self, mip_rel_gap: float = 1e-9, time_limit: float | None = None):
        self.options = {"mip_rel_gap": mip_rel_gap, "disp": False}
        if time_limit is not None:
            self.options["time_limit"] = float(time_limit)

    def solve(self, problem: MILP) -> HighsResult:
        cons = [LinearConstraint(problem.A, problem.row_lb, problem.row_ub)] if problem.A.shape[0] else []
        r = milp(problem.c, integrality=problem.integrality, bounds=Bounds(problem.lb, problem.ub),
                 constraints=cons, options=self.options)
        bound = getattr(r, "mip_dual_bound", None)
        return HighsResult(z=None if r.x is None else np.asarray(r.x, float),
                           objective=None if r.x is None else float(r.fun + problem.offset),
                           status=int(r.status), message=str(r.message), mip_gap=getattr(r, "mip_gap", None),
                           mip_nodes=getattr(r, "mip_node_count", None),
                           mip_dual_bound=None if bound is None else float(bound) + problem.offset)

    def boxed_optima(self, problem: MILP, sizes: tuple[float, ...] = (1e2, 1e3, 1e4)) -> list[tuple[float, float]]:
        """Optimal F with x and y boxed to [-K, K]: evidence (not proof) that an unbounded MILP is
        unbounded through bilevel-feasible points, since each boxed optimum is one."""
        out = []
        for K in sizes:
            r = self.solve(problem.boxed(K))
            if r.success:
                out.append((K, r.objective))
        return out

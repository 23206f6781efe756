"""Ipopt through ``casadi.nlpsol``: the terminal step of every solving chain.

One ``STATUS_MAP`` translates Ipopt's return codes to our status words; a
failure is returned as such (``success=False`` with Ipopt's status), never
silently turned into a point.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..reformulate.nlp import NLP

log = logging.getLogger("workbench.solve")

STATUS_MAP = {
    "Solve_Succeeded": "optimal",
    "Solved_To_Acceptable_Level": "optimal_inaccurate",
    "Infeasible_Problem_Detected": "infeasible",
    "Diverging_Iterates": "unbounded",
    "Search_Direction_Becomes_Too_Small": "stalled",
    "User_Requested_Stop": "stopped",
    "Feasible_Point_Found": "optimal_inaccurate",
    "Maximum_Iterations_Exceeded": "max_iter",
    "Maximum_CpuTime_Exceeded": "time_limit",
    "Maximum_WallTime_Exceeded": "time_limit",
    "Restoration_Failed": "restoration_failed",
    "Error_In_Step_Computation": "error",
    "Not_Enough_Degrees_Of_Freedom": "too_few_degrees_of_freedom",
    "Invalid_Problem_Definition": "error",
    "Invalid_Option": "error",
    "Invalid_Number_Detected": "invalid_number",
    "Unrecoverable_Exception": "error",
    "NonIpopt_Exception_Thrown": "error",
    "Insufficient_Memory": "error",
    "Internal_Error": "error",
}
SUCCESS = {"optimal", "optimal_inaccurate"}

BASE_OPTIONS = {
    "ipopt.print_level": 0, "print_time": 0, "ipopt.sb": "yes",
    "ipopt.max_iter": 1000, "ipopt.tol": 1e-9, "ipopt.acceptable_tol": 1e-6,
}
WARM_OPTIONS = {
    "ipopt.warm_start_init_point": "yes", "ipopt.mu_init": 1e-6,
    "ipopt.warm_start_bound_push": 1e-9, "ipopt.warm_start_mult_bound_push": 1e-9,
    "ipopt.warm_start_slack_bound_push": 1e-9,
}
TIGHT_OPTIONS = {"ipopt.bound_relax_factor": 0.0, "ipopt.tol": 1e-10, "ipopt.honor_original_bounds": "yes"}


@dataclass
class IpoptResult:
    """What one Ipopt call returned."""

    w: np.ndarray
    objective: float
    g: np.ndarray
    lam_w: np.ndarray
    lam_g: np.ndarray
    ipopt_status: str
    status: str
    iterations: int
    time_s: float
    inf_du: float = float("nan")   # Ipopt's final (scaled) dual infeasibility: the stationarity residual

    @property
    def success(self) -> bool:
        return self.status in SUCCESS and bool(np.all(np.isfinite(self.w)))


class IpoptSolver:
    """A compiled ``nlpsol`` for one :class:`~workbench.reformulate.nlp.NLP`, called many times
    with new data: ``solver.solve(x0=..., p=...)`` takes the NLP's own bounds unless given."""

    def __init__(self, nlp: "NLP | dict", options: dict[str, Any] | None = None, name: str | None = None):
        if isinstance(nlp, dict):  # CasADi's dict form: bounds default to CasADi's (-inf, +inf)
            nlp = NLP(x=nlp["x"], f=nlp["f"], g=nlp.get("g"), p=nlp.get("p"), name=name or "solver")
        self.nlp = nlp
        opts = dict(BASE_OPTIONS)
        opts.update(options or {})
        self.options = opts
        self.solver = ca.nlpsol(name or nlp.name, "ipopt", nlp.casadi(), opts)

    def solve(self, x0: Any, p: Any = None, lbx: Any = None, ubx: Any = None, lbg: Any = None,
              ubg: Any = None, lam_x0: Any = None, lam_g0: Any = None) -> IpoptResult:
        """One Ipopt run from ``x0``; bounds not given are the NLP's, ``p`` defaults to empty."""
        nlp = self.nlp
        args = dict(x0=x0, p=np.zeros(0) if p is None else p,
                    lbx=nlp.lbx if lbx is None else lbx, ubx=nlp.ubx if ubx is None else ubx,
                    lbg=nlp.lbg if lbg is None else lbg, ubg=nlp.ubg if ubg is None else ubg)
        if lam_x0 is not None:
            args["lam_x0"] = lam_x0
        if lam_g0 is not None:
            args["lam_g0"] = lam_g0
        try:
            out = self.solver(**args)
            stats = self.solver.stats()
        except RuntimeError as exc:  # CasADi raises on NaN in evaluation, etc.
            log.debug("Ipopt raised: %s", exc)
            n = np.asarray(x0).size
            return IpoptResult(np.full(n, np.nan), np.nan, np.array([]), np.zeros(n), np.array([]),
                               "NonIpopt_Exception_Thrown", "error", 0, 0.0)
        ipopt_status = str(stats.get("return_status", "unknown"))
        inf_du = stats.get("iterations", {}).get("inf_du", []) if isinstance(stats.get("iterations"), dict) else []
        return IpoptResult(
            w=np.asarray(out["x"], dtype=float).reshape(-1),
            objective=float(out["f"]),
            g=np.asarray(out["g"], dtype=float).reshape(-1),
            lam_w=np.asarray(out["lam_x"], dtype=float).reshape(-1),
            lam_g=np.asarray(out["lam_g"], dtype=float).reshape(-1),
            ipopt_status=ipopt_status,
            status=STATUS_MAP.get(ipopt_status, "error"),
            iterations=int(stats.get("iter_count", 0)),
            time_s=float(stats.get("t_wall_total", 0.0)),
            inf_du=float(inf_du[-1]) if len(inf_du) else float("nan"),
        )

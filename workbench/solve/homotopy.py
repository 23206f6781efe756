"""The eps -> 0 homotopy over a relaxed MPCC, warm-started step to step.

One ``nlpsol`` (eps in ``p``) is reused for every step; steps after the first
use Ipopt's warm start with the previous primal and dual values. A final
"polish" step fixes the active set the homotopy found (s_i = 0 or lam_i = 0)
and re-solves, so the returned point satisfies complementarity exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import casadi as ca
import numpy as np

from ..reformulate import SCHEMES, RelaxedNLP, complementarity_residual
from .ipopt import WARM_OPTIONS, IpoptResult, IpoptSolver


@dataclass
class HomotopyStep:
    """One row of ``r.log``."""

    eps: float
    objective: float
    complementarity: float
    ipopt_status: str
    iterations: int
    time_s: float
    start: int = 0
    phase: str = "homotopy"
    stationarity: float = float("nan")  # max |grad_y L| of the follower at the step's point
    leader_stationarity: float = float("nan")  # Ipopt's dual infeasibility of the single-level NLP

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class HomotopyResult:
    """End point of a homotopy run and its trace."""

    w: np.ndarray
    success: bool
    ipopt_status: str
    complementarity: float
    steps: list[HomotopyStep] = field(default_factory=list)
    polished: bool = False


class Homotopy:
    """Compiled solvers (cold, warm) for one relaxed NLP, run along an eps schedule."""

    def __init__(self, relaxed: RelaxedNLP, schedule: tuple[float, ...] | None = None,
                 ipopt_options: dict | None = None):
        self.relaxed = relaxed
        if schedule is None:
            schedule = SCHEMES[relaxed.scheme].default_schedule
        self.schedule = tuple(schedule)
        self.cold = IpoptSolver(relaxed, ipopt_options, name="relaxed_cold")
        warm = dict(ipopt_options or {})
        warm.update(WARM_OPTIONS)
        self.warm = IpoptSolver(relaxed, warm, name="relaxed_warm")
        mpcc = relaxed.mpcc
        n_y = mpcc.lowered.n_y
        grad = mpcc.g_eq[:n_y] if n_y else ca.DM(0, 1)
        self._stationarity = ca.Function("stationarity", [mpcc.w, mpcc.p], [ca.norm_inf(grad)], ["w", "p"], ["inf_norm"])

    def stationarity(self, w: np.ndarray, p: np.ndarray) -> float:
        """max |grad_y L(x, y, lam, mu)| at an MPCC point (the follower's stationarity residual)."""
        if not np.all(np.isfinite(w)):
            return float("nan")
        return float(self._stationarity(w, p))

    def run(self, w0: np.ndarray, p: np.ndarray, start: int = 0, polish: bool = True,
            deadline: float | None = None) -> HomotopyResult:
        r = self.relaxed
        mpcc = r.mpcc
        steps: list[HomotopyStep] = []
        last: IpoptResult | None = None
        best_ok: IpoptResult | None = None
        # eps only enters through complementarity pairs: without pairs one solve is the answer
        schedule = self.schedule if mpcc.n_comp else self.schedule[:1]
        for k, eps in enumerate(schedule):
            if deadline is not None and time.monotonic() > deadline:
                break
            pe = np.concatenate([p, [eps]])
            if last is not None and last.success:
                res = self.warm.solve(last.w, pe, lam_x0=last.lam_w, lam_g0=last.lam_g)
                if not res.success:  # a warm start can fail where a cold one works
                    res = self.cold.solve(last.w, pe)
            else:
                res = self.cold.solve(w0 if last is None else last.w if np.all(np.isfinite(last.w)) else w0, pe)
            comp = complementarity_residual(mpcc, res.w) if np.all(np.isfinite(res.w)) else np.inf
            steps.append(HomotopyStep(eps, res.objective, comp, res.ipopt_status, res.iterations,
                                      res.time_s, start, stationarity=self.stationarity(res.w, p),
                                      leader_stationarity=res.inf_du))
            last = res
            if res.success:
                best_ok = res
        final = best_ok if best_ok is not None else last
        if final is None:
            return HomotopyResult(np.asarray(w0, float), False, "not_run", np.inf, steps)
        out = HomotopyResult(final.w, final.success, final.ipopt_status,
                             complementarity_residual(mpcc, final.w) if final.success else np.inf, steps)
        if polish and final.success and mpcc.n_comp:
            self._polish(out, final, p, start)
        return out

    def _polish(self, out: HomotopyResult, final: IpoptResult, p: np.ndarray, start: int) -> None:
        """Fix the active set (smaller of s_i, lam_i to zero) and re-solve once."""
        r = self.relaxed
        mpcc = r.mpcc
        lbw, ubw = r.lbx.copy(), r.ubx.copy()
        s, lam = final.w[mpcc.comp_s], final.w[mpcc.comp_lam]
        active = s <= lam
        ubw[mpcc.comp_s[active]] = 0.0
        ubw[mpcc.comp_lam[~active]] = 0.0
        w0 = final.w.copy()
        w0[mpcc.comp_s[active]] = 0.0
        w0[mpcc.comp_lam[~active]] = 0.0
        eps = self.schedule[-1]
        res = self.warm.solve(w0, np.concatenate([p, [eps]]), lbw, ubw, lam_x0=final.lam_w, lam_g0=final.lam_g)
        if not res.success:
            res = self.cold.solve(w0, np.concatenate([p, [eps]]), lbw, ubw)
        comp = complementarity_residual(mpcc, res.w) if res.success else np.inf
        out.steps.append(HomotopyStep(0.0, res.objective, comp, res.ipopt_status, res.iterations,
                                      res.time_s, start, phase="polish", stationarity=self.stationarity(res.w, p),
                                      leader_stationarity=res.inf_du))
        if res.success:  # exactly complementary: preferred over the relaxed end point
            out.w, out.complementarity, out.polished = res.w, comp, True
            out.ipopt_status = res.ipopt_status

"""The eps -> 0 homotopy over a relaxed NLP, warm-started step to step.

Any NLP whose last parameter is eps and which equals the problem of interest at
eps = 0 can be run (the :class:`Relaxed` protocol): the relaxed MPCC of the KKT
route (``reformulate/mpcc_relax.py``) and the strong-duality NLP (``reformulate/lp_dual.py``).
One ``nlpsol`` (eps in ``p``) is reused for every step; steps after the first
use Ipopt's warm start with the previous primal and dual values. A final
"polish" step asks the NLP's ``polish(w, p)`` hook for bounds that fix the
structure the homotopy found (for the MPCC: s_i = 0 or lam_i = 0) and re-solves
once, so the returned point satisfies the unrelaxed conditions exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import casadi as ca
import numpy as np

from ..reformulate import SCHEMES, RelaxedNLP
from .ipopt import WARM_OPTIONS, IpoptResult, IpoptSolver

DEFAULT_SCHEDULE = tuple(10.0 ** -k for k in range(0, 10))  # for relaxed NLPs outside the scheme table

Bounds = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # lbx, ubx, lbg, ubg


class Relaxed(Protocol):
    """What the homotopy needs of a relaxed NLP (an :class:`~workbench.reformulate.nlp.NLP`
    whose last parameter is eps); ``p`` below is the parameter vector without eps."""

    x: Any
    p: Any
    f: Any
    g: Any
    lbx: np.ndarray
    ubx: np.ndarray
    lbg: np.ndarray
    ubg: np.ndarray

    @property
    def polish(self) -> Callable[[np.ndarray, np.ndarray], Bounds] | None:
        """Bounds fixing the structure found at an end point ``w`` (at parameters ``p``), or None."""

    def residual(self, w: np.ndarray, p: np.ndarray) -> float:
        """How far ``w`` is from the unrelaxed problem (0 there): the "complementarity" column."""

    def stationarity(self, w: np.ndarray, p: np.ndarray) -> float:
        """The follower's max |grad_y L| at ``w``."""


@dataclass
class HomotopyStep:
    """One row of ``r.log``."""

    eps: float
    objective: float
    complementarity: float   # the relaxed NLP's residual (MPCC: max min(s, lam); strong duality: gap)
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
    eps: float = float("nan")   # eps of the homotopy's end point (before any polish step)


class Homotopy:
    """Compiled solvers (cold, warm) for one relaxed NLP, run along an eps schedule.

    After a step that fails (warm, then cold) the schedule goes on from the failed point, unless
    ``stop_on_failure``: then the run ends there, with the last successful step as its end point.
    """

    def __init__(self, relaxed: Relaxed, schedule: tuple[float, ...] | None = None,
                 ipopt_options: dict | None = None, stop_on_failure: bool = False):
        self.relaxed = relaxed
        self.stop_on_failure = stop_on_failure
        if schedule is None:
            schedule = (SCHEMES[relaxed.scheme].default_schedule if isinstance(relaxed, RelaxedNLP)
                        else DEFAULT_SCHEDULE)
        self.schedule = tuple(schedule)
        self.cold = IpoptSolver(relaxed, ipopt_options, name="relaxed_cold")
        warm = dict(ipopt_options or {})
        warm.update(WARM_OPTIONS)
        self.warm = IpoptSolver(relaxed, warm, name="relaxed_warm")
        # without eps in the NLP (an MPCC without pairs) one solve is the answer
        self._relaxes = bool(ca.depends_on(ca.vertcat(relaxed.f, relaxed.g), relaxed.p[-1]))

    def stationarity(self, w: np.ndarray, p: np.ndarray) -> float:
        """The follower's stationarity residual at ``w`` (nan at a non-finite point)."""
        if not np.all(np.isfinite(w)):
            return float("nan")
        return self.relaxed.stationarity(w, p)

    def _residual(self, w: np.ndarray, p: np.ndarray) -> float:
        return self.relaxed.residual(w, p) if np.all(np.isfinite(w)) else np.inf

    def run(self, w0: np.ndarray, p: np.ndarray, start: int = 0, polish: bool = True,
            deadline: float | None = None) -> HomotopyResult:
        steps: list[HomotopyStep] = []
        last: IpoptResult | None = None
        best_ok: IpoptResult | None = None
        best_eps = float("nan")
        schedule = self.schedule if self._relaxes else self.schedule[:1]
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
            steps.append(HomotopyStep(eps, res.objective, self._residual(res.w, p), res.ipopt_status, res.iterations,
                                      res.time_s, start, stationarity=self.stationarity(res.w, p),
                                      leader_stationarity=res.inf_du))
            last = res
            if res.success:
                best_ok, best_eps = res, eps
            elif self.stop_on_failure:
                break
        final = best_ok if best_ok is not None else last
        if final is None:
            return HomotopyResult(np.asarray(w0, float), False, "not_run", np.inf, steps)
        out = HomotopyResult(final.w, final.success, final.ipopt_status,
                             self._residual(final.w, p) if final.success else np.inf, steps, eps=best_eps)
        hook = self.relaxed.polish
        if polish and final.success and hook is not None:
            self._polish(out, final, hook(final.w, p), p, start)
        return out

    def _polish(self, out: HomotopyResult, final: IpoptResult, bounds: Bounds, p: np.ndarray, start: int) -> None:
        """Re-solve once within the hook's bounds, from the end point moved into the bounds it tightened."""
        lbw, ubw, lbg, ubg = bounds
        w0 = final.w.copy()
        moved = (lbw != self.relaxed.lbx) | (ubw != self.relaxed.ubx)
        w0[moved] = np.clip(w0[moved], lbw[moved], ubw[moved])
        pe = np.concatenate([p, [self.schedule[-1]]])
        res = self.warm.solve(w0, pe, lbw, ubw, lbg, ubg, lam_x0=final.lam_w, lam_g0=final.lam_g)
        if not res.success:
            res = self.cold.solve(w0, pe, lbw, ubw, lbg, ubg)
        comp = self._residual(res.w, p) if res.success else np.inf
        out.steps.append(HomotopyStep(0.0, res.objective, comp, res.ipopt_status, res.iterations,
                                      res.time_s, start, phase="polish", stationarity=self.stationarity(res.w, p),
                                      leader_stationarity=res.inf_du))
        if res.success:  # exactly complementary: preferred over the relaxed end point
            out.w, out.complementarity, out.polished = res.w, comp, True
            out.ipopt_status = res.ipopt_status

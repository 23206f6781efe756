"""The bounding scheme of Mitsos, Lemonidis & Barton (2008) for bilevel programs with a nonconvex follower.

    min_{x,y} F(x, y)  s.t.  G(x, y) >= 0, H(x, y) = 0,  y in argmin_z { f(x, z) : z in Y(x) }

The scheme implemented here (Mitsos, Lemonidis & Barton, "Global solution of bilevel programs with
a nonconvex inner program", J. Global Optim. 42 (2008), Alg. 1 without branching on x):

* **Lower bound (LBP).** A relaxation R_k of the bilevel problem solved to global optimality by
  SCIP: the high-point relaxation (G, H, g, h; no follower optimality), or, where the follower's CQ
  holds for every x, its KKT relaxation; in both cases strengthened by the value-function cuts
  f(x, y) <= f(x, y_j), j < k. A cut is valid (keeps every bilevel-feasible point) when y_j is
  feasible for the follower at *every* x of the relaxation, since then phi(x) <= f(x, y_j) and
  every bilevel-feasible (x, y) has f(x, y) = phi(x). LB_k = SCIP's dual bound of R_k.
* **Follower solve.** At the LBP's leader point x_k, SCIP solves the follower globally:
  phi(x_k) with its minimiser y_k, which gives the next cut f(x, y) <= f(x, y_k).
* **Upper bound (UBP).** min_y F(x_k, y) s.t. G, H, g, h at x_k and f(x_k, y) <= phi(x_k) + eps_f
  (the optimistic choice among the follower's eps_f-optimal replies), whose point is then *checked*
  by the caller's follower certificate; a certified point is an incumbent, UB = min F over them.
* Stop when UB - LB <= gap_tol (1 + |UB|) (a proven eps-global optimum), at the time limit (LB and the
  incumbent are reported), or when a step cannot be made valid (see ``reason``).

After a cut at x_k, R_{k+1} cannot return x_k with a y that is not follower-optimal at x_k, so the
leader points explored are distinct; termination in finitely many steps at a positive tolerance
needs, as in the paper: the relaxation's feasible set compact (finite bounds on x and y, derived
from the constraints: an assumed box voids the claim), f continuous so that the cuts bite in a
neighbourhood of x_k, and the follower feasible at every x the LBP returns. Where these fail the
scheme stops with the reason instead of claiming anything. Callbacks keep this module free of the
model, certificate and SCIP plumbing; the route wires them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class BoundingStep:
    """One iteration: LBP value, leader point, follower value phi(x_k), incumbent value after it."""

    k: int
    lower: float
    x: list[float]
    phi: float | None
    upper: float
    time_s: float


@dataclass
class BoundingResult:
    status: str            # "optimal" (gap closed), "infeasible", "time_limit", "stalled", "failed"
    lower: float
    upper: float
    incumbent: Any         # what the ``upper_bound`` callback returned for the best point, or None
    cuts: list[np.ndarray]
    steps: list[BoundingStep] = field(default_factory=list)
    reason: str = ""

    @property
    def gap(self) -> float:
        return self.upper - self.lower if math.isfinite(self.upper) and math.isfinite(self.lower) else math.inf


def bounding_scheme(lower_bound: Callable[[list[np.ndarray], float], tuple[str, float, np.ndarray | None]],
                    follower: Callable[[np.ndarray], tuple[str, float, np.ndarray | None]],
                    cut_valid: Callable[[np.ndarray], tuple[bool, str]],
                    upper_bound: Callable[[np.ndarray, float, np.ndarray], tuple[float, Any] | None],
                    *, extra_cuts: Callable[[np.ndarray, np.ndarray], list[np.ndarray]] | None = None,
                    cuts: list[np.ndarray] | None = None, lower: float = -math.inf, upper: float = math.inf,
                    incumbent: Any = None, gap_tol: float = 1e-6, time_limit: float = 60.0,
                    max_iter: int = 200) -> BoundingResult:
    """Run the scheme (module docstring).

    ``lower_bound(cuts, upper) -> (status, dual bound, x or None)`` solves R_k (status "infeasible" when
    no point of R_k has F below ``upper`` minus the gap tolerance; "timelimit" with a point is used
    like an optimal one: the cut at any x is valid, only the bound is weaker); ``follower(x) -> (status,
    phi, y)`` solves the follower globally; ``cut_valid(y) -> (ok, why)``; ``upper_bound(x, phi, y) ->
    (F, incumbent) or None`` returns a *certified* bilevel-feasible point's value; ``extra_cuts(x, y_k)``
    returns more follower points whose cuts are valid (e.g. interior points, see the route).
    """
    t0 = time.monotonic()
    cuts = [np.asarray(c, float) for c in (cuts or [])]
    steps: list[BoundingStep] = []

    def done(status: str, reason: str) -> BoundingResult:
        return BoundingResult(status, lower, upper, incumbent, cuts, steps, reason)

    def closed() -> bool:
        return math.isfinite(upper) and upper - lower <= gap_tol * (1 + abs(upper))

    for k in range(max_iter):
        if closed():
            return done("optimal", f"gap {upper - lower:.3g} <= {gap_tol:g} (1 + |UB|) after {k} LBP solves")
        if time.monotonic() - t0 > time_limit:
            return done("time_limit", f"time limit ({time_limit:g} s) after {k} LBP solves")
        st, lb, x = lower_bound(cuts, upper)
        if st == "infeasible":
            if math.isfinite(upper):
                # lb is the cutoff the relaxation was solved with (no point below it), else UB - tolerance
                lower = max(lower, lb if (math.isfinite(lb) and lb <= upper) else upper - gap_tol * (1 + abs(upper)))
                return done("optimal", f"no point of the relaxation with {len(cuts)} cuts has F below "
                            f"{lower:.10g} (the incumbent {upper:.10g} minus the tolerance), after {k + 1} LBP solves")
            return done("infeasible", "the relaxation (without follower optimality) is infeasible")
        if math.isfinite(lb):
            lower = max(lower, min(lb, upper))
        if x is None or st not in ("optimal", "timelimit"):
            return done("time_limit" if st in ("timelimit", "time_limit") else "failed",
                        f"the lower-bounding problem ended with SCIP status {st!r}")
        if closed():
            return done("optimal", f"gap {upper - lower:.3g} <= {gap_tol:g} (1 + |UB|) after {k + 1} LBP solves")
        if steps and np.allclose(x, steps[-1].x, rtol=0, atol=1e-7 * (1 + float(np.max(np.abs(x))))):
            steps.append(BoundingStep(k, lower, x.tolist(), None, upper, time.monotonic() - t0))
            return done("stalled", f"the relaxation returned x = {np.round(x, 8).tolist()} again after its cut: the "
                        "cut holds there only to the solver's tolerance (an optimum that needs x exactly, or a "
                        "discontinuous follower reply), so the bound cannot improve")
        fst, phi, yk = follower(x)
        if fst != "optimal" or yk is None:
            steps.append(BoundingStep(k, lower, x.tolist(), None, upper, time.monotonic() - t0))
            return done("stalled", f"the follower at the relaxation's x = {np.round(x, 8).tolist()} ended "
                        f"{fst!r}: no value-function cut can be generated there")
        ok, why = cut_valid(yk)
        cand = upper_bound(x, phi, yk)
        if cand is not None and cand[0] < upper:
            upper, incumbent = cand
        steps.append(BoundingStep(k, lower, x.tolist(), float(phi), upper, time.monotonic() - t0))
        if not ok:
            if closed():
                return done("optimal", "gap closed")
            return done("stalled", f"the follower's reply y_k = {np.round(yk, 8).tolist()} at x = "
                        f"{np.round(x, 8).tolist()} is not feasible at every leader x ({why}), so the cut "
                        "f(x, y) <= f(x, y_k) would not be valid")
        cuts.append(np.asarray(yk, float))
        if extra_cuts is not None:
            cuts += [np.asarray(c, float) for c in extra_cuts(x, yk)]
    return done("time_limit", f"iteration limit ({max_iter}) reached")

"""The route's answer from a candidate pool: the best proven exact point, or why there is none.

In order: no candidate (the solver's failure, or the time limit); a follower unbounded at
every candidate; an infimum approached only from outside the leader's bounds (not attained,
certify/limits.py); a ray of exact points along which F keeps falling (unbounded); else the
best proven candidate ("optimal") or the best unproven one, feasible first and then by its
follower gap ("not_certified").
"""
from __future__ import annotations

import numpy as np

from ..certify import leader_box
from ..certify.limits import approach_infimum, unbounded_ray
from ..model.protocol import Problem
from ..result import BilevelResult
from ..status import SolverStats, Status, failure_from_ipopt
from ..values import Point
from .pool import CandidatePool


def result_from(pool: CandidatePool, problem: Problem, x0: np.ndarray, method: str = "kkt",
                relaxation: str | None = None, time_s: float = 0.0) -> BilevelResult:
    """The BilevelResult of a search (see module docstring); ``info`` lists every candidate."""
    candidates, lp, p = pool.candidates, pool.lp, pool.p
    base = dict(problem=problem, method=method, parameters=p, log=pool.rows, relaxation=relaxation, time_s=time_s)
    if not candidates:
        ipopt = pool.statuses.most_common(1)[0][0] if pool.statuses else "not_run"
        status = Status.TIME_LIMIT if pool.late() else failure_from_ipopt(ipopt)
        return BilevelResult(status=status, solver_stats=SolverStats("ipopt", ipopt),
                             message=f"no start produced a solution (Ipopt statuses: {dict(pool.statuses)})", **base)
    proven = [c for c in candidates if c.ok]
    if not proven and all(c.certificate.follower_unbounded for c in candidates):
        ipopt = candidates[0].certificate.follower_solver_status
        return BilevelResult(status=Status.UNBOUNDED, solver_stats=SolverStats("ipopt", ipopt), message=(
            "the follower is unbounded below at every leader point tried (its re-solve ended with status "
            f"{ipopt}): no follower-optimal response exists; bound the follower's variables"), **base)
    if proven:
        best = min(proven, key=lambda c: c.upper)
        status = Status.OPTIMAL
    else:
        best = min(candidates, key=lambda c: (c.certificate.lower_infeasibility + c.certificate.upper_infeasibility > 1e-6,
                                              c.certificate.value_gap if np.isfinite(c.certificate.value_gap) else np.inf,
                                              c.upper))
        status = Status.TIME_LIMIT if pool.late() else Status.NOT_CERTIFIED
    stats = SolverStats("ipopt", best.origin.solver_status)
    info = {"candidates": [(c.origin.start, c.upper, c.certificate.passed) for c in candidates],
            "cuts": [c.tolist() for c in pool.cuts], "proof": best.certificate.proof}
    lo, hi = leader_box(lp)
    message = "" if status == Status.OPTIMAL else "; ".join(best.certificate.reasons)
    # An infimum approached only from outside the leader's bounds (inside a tolerance) is not attained.
    bar = best.upper if proven else np.inf
    outside = [c for c in candidates if c.origin.raw_upper is not None and c.origin.raw_upper < bar - 1e-6 * (1 + abs(bar))]
    if outside and not pool.late():
        c = min(outside, key=lambda c: c.origin.raw_upper)
        seq = approach_infimum(pool.evaluate_exact, c.origin.raw_x, c.x, c.y, lo, hi, c.origin.raw_upper, bar)
        if seq is not None:
            info.update(infimum=c.origin.raw_upper, approaching=[(v.x.tolist(), v.upper) for v in seq])
            last = pool.add_exact(Point(seq[-1].x, seq[-1].y), -5, "probe")
            return BilevelResult(status=Status.NOT_ATTAINED, x=last.x, y=last.y, lam=last.lam, mu=last.mu,
                                 certificate=last.certificate, solver_stats=stats,
                                 message=(f"the infimum F = {c.origin.raw_upper:.10g} is approached (exact points "
                                          f"{[round(v.upper, 10) for v in seq]}) but not attained: at the bound "
                                          f"x = {c.x.tolist()} the follower replies differently and F = {c.upper:.10g}"),
                                 info=info, **base)
    # A point far out, or a feasible point far below the best proven one, on a ray along which exact
    # values keep falling: no finite optimum.
    feasible = [c for c in candidates if c.certificate.lower_infeasibility <= 1e-6 and c.certificate.upper_infeasibility <= 1e-6]
    low = min(feasible, key=lambda c: c.upper, default=best)
    far = np.max(np.abs(low.x), initial=0.0) > 10 * (1 + np.max(np.abs(x0), initial=0.0))
    below = proven and low.upper < bar - 10 * (1 + abs(bar))
    if (far or below) and not pool.late():
        seq = unbounded_ray(pool.evaluate_exact, np.asarray(x0, float), low.x, low.y, low.upper, lo, hi,
                            descent=-lp.gradient("upper_objective", "x", low.x, low.y, p))
        if seq is not None:
            info["unbounded_evidence"] = [(v.x.tolist(), v.upper) for v in seq]
            return BilevelResult(status=Status.UNBOUNDED, solver_stats=stats,
                                 message=("the leader's objective keeps falling along the ray x0 + 2^k (x* - x0) "
                                          "through exact bilevel points: F = "
                                          + ", ".join(f"{v.upper:.6g}" for v in seq)), info=info, **base)
    info["leader_stationarity"] = best.origin.leader_stationarity
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         solver_stats=stats, optimality="local", message=message, info=info, **base)

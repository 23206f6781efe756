"""The KKT/MPCC route: reformulate, relax, homotopy from several starts, certify, cut.

    lower -> Bilevel2MPCC(cuts) -> MPCCRelax(scheme) -> Homotopy (Ipopt) -> invert -> certify

When a certificate finds a better follower response y_k at a candidate's x,
the route restarts from (x, y_k) and, when the follower's feasible set does not
depend on x, adds the value-function cut f(x, y) <= f(x, y_k), which every
bilevel-feasible point satisfies. Only certified points are called "optimal".
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

import numpy as np

from ..errors import NonSmoothError
from ..lower import LoweredProblem, lower
from ..reformulate import Relaxation
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..result import BilevelResult
from ..status import SolverStats, Status, failure_from_ipopt
from ..certify import leader_box
from ..certify.limits import approach_infimum, unbounded_ray
from ..solve import FollowerSolver, leader_starts
from .search import Search



def solve_kkt(problem: Any, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
              start: Mapping | None = None, n_starts: int = 4, max_cut_rounds: int = 3, seed: int = 0,
              time_limit: float | None = None, nonsmooth: str = "error", certify_starts: int = 8,
              gap_tol: float = GAP_TOL, feas_tol: float = FEAS_TOL, schedule: tuple | None = None,
              ipopt_options: dict | None = None, response_starts: bool = True,
              global_search: bool = True, sample_dims: int = 3) -> BilevelResult:
    """Solve through the follower's KKT conditions (see module docstring).

    Starts: the user's point as given ("raw") and, with ``response_starts``, ``n_starts``
    leader points (the user's first, then random in the leader's box) each paired with the
    follower's reply there, which gives the homotopy a KKT-consistent start with multipliers.
    With ``global_search`` (default) the route also samples the reduced objective when the leader
    has at most ``sample_dims`` variables and runs the value-function-cut loop when its cuts are
    valid (see ``routes/value_function.py``); every candidate still has to pass the certificate.
    ``n_starts=1, response_starts=False, max_cut_rounds=0, global_search=False`` is the plain
    one-start baseline.
    """
    if getattr(problem, "uses_multipliers", False):  # a leader paid with follower multipliers
        from .shadow import solve_kkt_multipliers
        return solve_kkt_multipliers(problem, relaxation=relaxation, parameters=parameters, start=start,
                                     n_starts=n_starts, seed=seed, time_limit=time_limit, nonsmooth=nonsmooth,
                                     schedule=schedule, ipopt_options=ipopt_options, certify_starts=certify_starts,
                                     gap_tol=gap_tol, feas_tol=feas_tol)
    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + time_limit
    scheme = Relaxation.parse(relaxation)
    _check_smooth(problem, nonsmooth)
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    x0, y0 = problem.start_vectors(start)
    if time_limit is not None:  # one Ipopt call must not eat the whole budget
        ipopt_options = dict(ipopt_options or {}, **{"ipopt.max_wall_time": max(time_limit / 6, 0.5)})
    run = Search(lp, p, FollowerSolver(lp, tight=True), scheme, schedule, ipopt_options, deadline,
               dict(n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed))
    xs = leader_starts(lp, x0, n_starts, seed)
    starts = ([(x, y0, "response") for x in xs] if response_starts else []) + [(x0, y0, "raw")]
    for rnd in range(max_cut_rounds + 1):
        new_starts = run.homotopies(starts, rnd, stop_on_consensus=rnd == 0)
        if run.certified() or not new_starts or run.late():
            break
        starts = new_starts + starts[:2]
    if global_search and not run.late():
        # rounded leader points at refuted candidates early too: later stages may not get there in time
        run.snap_refuted(min((c.upper for c in run.candidates if c.ok), default=np.inf))
        full = run.needs_global_search()
        if lp.n_x <= sample_dims:  # a convex follower needs one solve per sample: a light scan
            run.sampling(x0, y0, seed, light=not full)
        if full and run.cuts_ok and not run.late():
            run.value_function_loop(x0, y0)
    for _ in range(3):  # a strong re-check that finds a better reply restarts the search from it
        restarts = run.final_check(snap=global_search)
        if not restarts or run.late():
            break
        run.homotopies(restarts, rnd=-2)
    return _pick(problem, lp, p, run, scheme, time.monotonic() - t0, x0)


def _check_smooth(problem: Any, nonsmooth: str) -> None:
    terms = problem.nonsmooth_follower_terms()
    if not terms:
        return
    what, node = terms[0]
    msg = (f"{what} contains the non-smooth term {node}; the KKT route differentiates the follower and "
           "its multipliers are meaningless at kinks. Smooth it (e.g. sqrt(t**2 + d) for Abs) or use "
           "method='substitution'.")
    if nonsmooth == "error":
        raise NonSmoothError(msg + " Pass nonsmooth='warn' to proceed anyway.")
    warnings.warn(msg + " Proceeding: results at kinks may be wrong.", stacklevel=4)


def _pick(problem, lp, p, run: Search, scheme, elapsed, x0) -> BilevelResult:
    """The route's answer from the candidate pool: the best proven exact point, or why there is none."""
    candidates, rows, statuses = run.candidates, run.rows, run.statuses
    base = dict(problem=problem, method="kkt", parameters=p, log=rows, relaxation=scheme.value, time_s=elapsed)
    if not candidates:
        ipopt = statuses.most_common(1)[0][0] if statuses else "not_run"
        status = Status.TIME_LIMIT if run.late() else failure_from_ipopt(ipopt)
        return BilevelResult(status=status, solver_stats=SolverStats("ipopt", ipopt),
                             message=f"no start produced a solution (Ipopt statuses: {dict(statuses)})", **base)
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
        status = Status.TIME_LIMIT if run.late() else Status.NOT_CERTIFIED
    info = {"candidates": [(c.start, c.upper, c.certificate.passed) for c in candidates], "cuts": [c.tolist() for c in run.cuts],
            "proof": best.certificate.proof}
    lo, hi = leader_box(lp)
    message = "" if status == Status.OPTIMAL else "; ".join(best.certificate.reasons)
    # An infimum approached only from outside the leader's bounds (inside a tolerance) is not attained.
    bar = best.upper if proven else np.inf
    outside = [c for c in candidates if c.raw_upper is not None and c.raw_upper < bar - 1e-6 * (1 + abs(bar))]
    if outside and not run.late():
        c = min(outside, key=lambda c: c.raw_upper)
        seq = approach_infimum(run.evaluate_exact, c.raw_x, c.x, c.y, lo, hi, c.raw_upper, bar)
        if seq is not None:
            info.update(infimum=c.raw_upper, approaching=[(v.x.tolist(), v.upper) for v in seq])
            x_last = seq[-1]
            last = run.add_exact(x_last.x, x_last.y, None, None, "probe", -5)
            return BilevelResult(status=Status.NOT_ATTAINED, x=last.x, y=last.y, lam=last.lam, mu=last.mu,
                                 certificate=last.certificate, solver_stats=SolverStats("ipopt", best.ipopt_status),
                                 message=(f"the infimum F = {c.raw_upper:.10g} is approached (exact points "
                                          f"{[round(v.upper, 10) for v in seq]}) but not attained: at the bound "
                                          f"x = {c.x.tolist()} the follower replies differently and F = {c.upper:.10g}"),
                                 info=info, **base)
    # A point far out, or a feasible point far below the best proven one, on a ray along which exact
    # values keep falling: no finite optimum.
    feasible = [c for c in candidates if c.certificate.lower_infeasibility <= 1e-6 and c.certificate.upper_infeasibility <= 1e-6]
    low = min(feasible, key=lambda c: c.upper, default=best)
    far = np.max(np.abs(low.x), initial=0.0) > 10 * (1 + np.max(np.abs(x0), initial=0.0))
    below = proven and low.upper < bar - 10 * (1 + abs(bar))
    if (far or below) and not run.late():
        seq = unbounded_ray(run.evaluate_exact, np.asarray(x0, float), low.x, low.y, low.upper, lo, hi,
                            descent=-lp.gradient("upper_objective", "x", low.x, low.y, p))
        if seq is not None:
            info["unbounded_evidence"] = [(v.x.tolist(), v.upper) for v in seq]
            return BilevelResult(status=Status.UNBOUNDED, solver_stats=SolverStats("ipopt", best.ipopt_status),
                                 message=("the leader's objective keeps falling along the ray x0 + 2^k (x* - x0) "
                                          "through exact bilevel points: F = "
                                          + ", ".join(f"{v.upper:.6g}" for v in seq)), info=info, **base)
    info["leader_stationarity"] = best.leader_stationarity
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         solver_stats=SolverStats("ipopt", best.ipopt_status), optimality="local",
                         message=message, info=info, **base)

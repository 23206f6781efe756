"""The KKT/MPCC route: the plan of the search; the strategies live in ``workbench/search/``.

    lower -> Bilevel2MPCC(cuts) -> MPCCRelax(scheme) -> Homotopy (Ipopt) -> invert -> certify

1. Homotopies from starts (search/homotopies.py). A certificate that finds a better follower
   reply y_k restarts the search from (x, y_k) and, when the follower's feasible set does not
   depend on x, adds the value-function cut f(x, y) <= f(x, y_k).
2. Global search: reduced-objective sampling (search/sampling.py), the cut loop on the
   high-point relaxation (search/cuts.py).
3. The final re-check (search/recheck.py), then the answer (search/answer.py). Only certified
   points are called "optimal".
"""
from __future__ import annotations

import time
import warnings
from typing import Mapping

from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..errors import NonSmoothError
from ..lower import lower
from ..model.protocol import Problem
from ..reformulate import Relaxation
from ..result import BilevelResult
from ..search import CandidatePool, Homotopies, Start, cut_loop, final_check, result_from, sample_and_polish, snap_refuted
from ..solve import FollowerSolver, leader_starts
from ..values import Point


def solve_kkt(problem: Problem, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
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
    valid; every candidate still has to pass the certificate.
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
    scheme = Relaxation.parse(relaxation)
    _check_smooth(problem, nonsmooth)
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    x0, y0 = problem.start_vectors(start)
    if time_limit is not None:  # one Ipopt call must not eat the whole budget
        ipopt_options = dict(ipopt_options or {}, **{"ipopt.max_wall_time": max(time_limit / 6, 0.5)})
    pool = CandidatePool(lp, p, FollowerSolver(lp, tight=True), ipopt_options=ipopt_options,
                         deadline=None if time_limit is None else t0 + time_limit,
                         cert_opts=dict(n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed))
    homotopies = Homotopies(pool, scheme, schedule, ipopt_options)
    starts = [Start(Point(x, y0), respond=True) for x in leader_starts(lp, x0, n_starts, seed)] if response_starts else []
    starts += [Start(Point(x0, y0))]
    for rnd in range(max_cut_rounds + 1):
        restarts = homotopies(starts, rnd, stop_on_consensus=rnd == 0)
        if pool.certified() or not restarts or pool.late():
            break
        starts = restarts + starts[:2]
    if global_search and not pool.late():
        # rounded leader points at refuted candidates early too: later stages may not get there in time
        snap_refuted(pool, pool.best_value())
        full = pool.needs_global_search()
        if lp.n_x <= sample_dims:  # a convex follower needs one solve per sample: a light scan
            sample_and_polish(pool, homotopies, x0, y0, seed, light=not full)
        if full and pool.cuts_ok and not pool.late():
            cut_loop(pool, homotopies, x0, y0)
    for _ in range(3):  # a strong re-check that finds a better reply restarts the search from it
        restarts = final_check(pool, snap=global_search)
        if not restarts or pool.late():
            break
        homotopies(restarts, rnd=-2)
    return result_from(pool, problem, x0, method="kkt", relaxation=scheme.value, time_s=time.monotonic() - t0)


def _check_smooth(problem: Problem, nonsmooth: str) -> None:
    """A follower with kinks (Abs, Max, ...) has meaningless multipliers there: an error by default."""
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

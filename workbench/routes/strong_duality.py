"""``method="strong_duality"``: a follower LP replaced by primal/dual feasibility and strong duality.

    lower -> Bilevel2StrongDuality (reformulate/lp_dual.py) -> Homotopy eps -> 0 + polish (Ipopt)
          -> invert -> implemented point -> certify

from several leader starts (the follower's reply gives y, lam, mu). The reformulation is
nonconvex when the follower's data depend on x; ``info["nonconvex"]`` says why, and a
certified point is then locally optimal for the single-level problem.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..certify import Certificate, certify, follower_is_convex, implemented_point
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..lower import lower
from ..model.protocol import Problem
from ..reformulate.linear import require_lp_follower
from ..reformulate.lp_dual import FORMULATION, Bilevel2StrongDuality
from ..result import BilevelResult
from ..solve import FollowerSolver, Homotopy
from ..status import SolverStats
from ..solve.starts import leader_starts
from ..values import Point

EPS_SCHEDULE = (1e-2, 1e-4, 1e-6, 1e-8)


@dataclass(frozen=True)
class Candidate:
    """A certified end point of one start."""

    point: Point
    certificate: Certificate
    upper: float
    ipopt_status: str
    start: int


def solve_strong_duality(problem: Problem, parameters: Mapping | None = None, start: Mapping | None = None,
                         n_starts: int = 6, seed: int = 0, certify_starts: int = 4, gap_tol: float = GAP_TOL,
                         feas_tol: float = FEAS_TOL, schedule: tuple = EPS_SCHEDULE,
                         ipopt_options: dict | None = None, time_limit: float | None = None) -> BilevelResult:
    """Solve with the follower's argmin replaced by primal/dual feasibility and strong duality.

    ``time_limit`` (seconds) stops starting new homotopies and the running one at its next step."""
    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + float(time_limit)
    require_lp_follower(problem, "strong_duality")
    lp, p = lower(problem), problem.parameter_vector(parameters)
    reduction = Bilevel2StrongDuality()
    nlp, inv = reduction.apply(lp)
    homotopy = Homotopy(nlp, schedule, {"ipopt.bound_relax_factor": 0.0, **(ipopt_options or {})},
                        stop_on_failure=True)
    follower = FollowerSolver(lp, tight=True)
    x0, y0 = problem.start_vectors(start)
    candidates: list[Candidate] = []
    log: list[dict] = []
    late = False
    for k, xs in enumerate(leader_starts(lp, x0, n_starts, seed)):
        if deadline is not None and time.monotonic() > deadline:
            late = True
            break
        fs = follower.solve(xs, p, y0)
        w0 = nlp.start(xs, fs.y, fs.lam, fs.mu) if fs.success else nlp.start(xs, y0)
        h = homotopy.run(w0, p, start=k, deadline=deadline)
        log += [s.as_dict() for s in h.steps]
        if not h.success or not (h.polished or h.eps <= homotopy.schedule[-1]):
            continue  # neither polished nor at the end of the schedule
        pt = reduction.invert(h.w, inv)
        x, y, lam, mu, _ = implemented_point(lp, follower, pt.x, pt.y, p, pt.lam, pt.mu)
        cert = certify(lp, x, y, p, lam, follower, mu=mu, n_random=certify_starts, gap_tol=gap_tol,
                       feas_tol=feas_tol, seed=seed + k, follower_convex=follower_is_convex(lp, x, p))
        point = Point(x, y, lam if cert.lam is None else cert.lam, mu if cert.mu is None else cert.mu)
        upper = float(lp.evaluate("upper_objective", x, y, p)[0])
        candidates.append(Candidate(point, cert, upper, h.ipopt_status, k))
    note = nlp.nonconvexity
    info = {"nonconvex": note, "reformulation_convex_constraints": note is None, "formulation": FORMULATION,
            "eps_schedule": list(schedule), "candidates": [(c.start, c.upper, c.certificate.passed) for c in candidates]}
    base = dict(problem=problem, method="strong_duality", parameters=p, log=log, time_s=time.monotonic() - t0)
    if not candidates:
        statuses = sorted({row["ipopt_status"] for row in log})
        status = ("time_limit" if late or (deadline is not None and time.monotonic() > deadline)
                  else "infeasible" if statuses == ["Infeasible_Problem_Detected"] else "solver_failed")
        return BilevelResult(status=status, solver_stats=SolverStats("ipopt", ",".join(statuses)), info=info,
                             message=f"no start reached the end of the eps schedule or a polished point "
                                     f"(Ipopt statuses: {statuses})", **base)
    certified = [c for c in candidates if c.certificate.passed]
    best = min(certified or candidates, key=lambda c: c.upper)
    msg = "" if certified else "; ".join(best.certificate.reasons)
    if note and certified:
        msg = "locally optimal single-level point (nonconvex reformulation), follower optimality certified"
    pt = best.point
    return BilevelResult(status="optimal" if certified else "not_certified", x=pt.x, y=pt.y, lam=pt.lam, mu=pt.mu,
                         certificate=best.certificate, solver_stats=SolverStats("ipopt", best.ipopt_status),
                         message=msg, info=info, **base)

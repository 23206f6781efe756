"""The KKT/MPCC route: reformulate, relax, homotopy from several starts, certify, cut.

    lower -> Bilevel2MPCC(cuts) -> MPCCRelax(scheme) -> Homotopy (Ipopt) -> invert -> certify

When a certificate finds a better follower response y_k at a candidate's x,
the route restarts from (x, y_k) and, when the follower's feasible set does not
depend on x, adds the value-function cut f(x, y) <= f(x, y_k), which every
bilevel-feasible point satisfies. Only certified points are called "optimal".
"""
from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

import casadi as ca
import numpy as np

from ..certify import Certificate, certify, follower_is_convex
from ..errors import NonSmoothError
from ..lower import LoweredProblem, lower
from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from ..result import BilevelResult
from ..solve import FollowerSolver, Homotopy, box_from_constraints

log = logging.getLogger("workbench.routes.kkt")


@dataclass
class Candidate:
    x: np.ndarray
    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    upper: float
    certificate: Certificate
    ipopt_status: str
    start: int


def leader_starts(lp: LoweredProblem, x0: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """The user's x0, then random points in the leader's box (or around x0)."""
    rng = np.random.default_rng(seed)
    lo, hi = box_from_constraints(lp, "x")
    a = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), np.minimum(hi, x0) - 5 * (1 + np.abs(x0)), x0 - 5 * (1 + np.abs(x0))))
    b = np.where(np.isfinite(hi), hi, np.where(np.isfinite(lo), np.maximum(lo, x0) + 5 * (1 + np.abs(x0)), x0 + 5 * (1 + np.abs(x0))))
    starts = [np.asarray(x0, float)]
    for _ in range(max(n - 1, 0)):
        starts.append(a + (b - a) * rng.random(lp.n_x))
    return starts


def _w_start(mpcc, lp, follower, x, y0, p):
    """Start the MPCC at the follower's reply to x (a KKT point with multipliers) when possible."""
    fs = follower.solve(x, p, y0)
    if fs.success:
        return initial_w(mpcc, x, fs.y, p, fs.lam, fs.mu)
    return initial_w(mpcc, x, y0, p)


def solve_kkt(problem: Any, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
              start: Mapping | None = None, n_starts: int = 6, max_cut_rounds: int = 3, seed: int = 0,
              time_limit: float | None = None, nonsmooth: str = "error", certify_starts: int = 8,
              gap_tol: float = 1e-6, feas_tol: float = 1e-6, schedule: tuple | None = None,
              ipopt_options: dict | None = None, response_starts: bool = True) -> BilevelResult:
    """Solve through the follower's KKT conditions (see module docstring).

    Starts: the user's point as given ("raw") and, with ``response_starts``, ``n_starts``
    leader points (the user's first, then random in the leader's box) each paired with the
    follower's reply there, which gives the homotopy a KKT-consistent start with multipliers.
    ``n_starts=1, response_starts=False, max_cut_rounds=0`` is the plain one-start baseline.
    """
    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + time_limit
    scheme = Relaxation.parse(relaxation)
    terms = problem.nonsmooth_follower_terms()
    if terms:
        what, node = terms[0]
        msg = (f"{what} contains the non-smooth term {node}; the KKT route differentiates the follower and "
               "its multipliers are meaningless at kinks. Smooth it (e.g. sqrt(t**2 + d) for Abs) or use "
               "method='substitution'.")
        if nonsmooth == "error":
            raise NonSmoothError(msg + " Pass nonsmooth='warn' to proceed anyway.")
        warnings.warn(msg + " Proceeding: results at kinks may be wrong.", stacklevel=3)
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    x0 = problem.point_vector({s: v for s, v in (start or {}).items() if s in problem.leader} or None, "leader") \
        if start and any(s in problem.leader for s in start) else lp.x_start
    y0 = np.array([float((start or {}).get(s, problem.start.get(s, 0.0))) for s in problem.follower])
    if time_limit is not None:  # one Ipopt call must not eat the whole budget
        ipopt_options = dict(ipopt_options or {}, **{"ipopt.max_wall_time": max(time_limit / 3, 0.5)})
    follower = FollowerSolver(lp, tight=True)
    cuts_ok = not ca.depends_on(ca.vertcat(lp.g, lp.h), lp.x)
    xs = leader_starts(lp, x0, n_starts, seed)
    starts = ([(x, y0, "response") for x in xs] if response_starts else []) + [(x0, y0, "raw")]
    cuts: list[np.ndarray] = []
    candidates: list[Candidate] = []
    rows: list[dict] = []
    statuses: Counter = Counter()
    for rnd in range(max_cut_rounds + 1):
        chain = Chain([Bilevel2MPCC(cuts), MPCCRelax(scheme)])
        relaxed, inv = chain.apply(lp)
        hom = Homotopy(relaxed, schedule, ipopt_options)
        new_cuts, new_starts = [], []
        for k, (xs_k, ys_k, kind) in enumerate(starts):
            if deadline is not None and time.monotonic() > deadline and candidates:
                break
            w0 = _w_start(relaxed.mpcc, lp, follower, xs_k, ys_k, p) if kind == "response" \
                else initial_w(relaxed.mpcc, xs_k, ys_k, p)
            h = hom.run(w0, p, start=k, deadline=deadline)
            rows += [dict(s.as_dict(), round=rnd, relaxation=scheme.value) for s in h.steps]
            statuses[h.ipopt_status] += 1
            if not h.success:
                continue
            sol = chain.invert(h.w, inv)
            convex = follower_is_convex(lp, sol.x, p)
            cert = certify(lp, sol.x, sol.y, p, sol.lam, follower, n_random=certify_starts,
                           gap_tol=gap_tol, feas_tol=feas_tol, seed=seed + k, follower_convex=convex)
            upper = float(lp.evaluate("upper_objective", sol.x, sol.y, p)[0])
            candidates.append(Candidate(sol.x, sol.y, sol.lam, sol.mu, upper, cert, h.ipopt_status, k))
            if cert.better_y is not None:
                new_starts.append((sol.x, cert.better_y, "raw"))
                if cuts_ok and not any(np.allclose(cert.better_y, c, atol=1e-6) for c in cuts + new_cuts):
                    new_cuts.append(cert.better_y)
        if any(c.certificate.passed for c in candidates) or not (new_cuts or new_starts):
            break
        if deadline is not None and time.monotonic() > deadline:
            break
        cuts += new_cuts
        starts = new_starts + starts[:2]
    return _pick(problem, lp, p, candidates, rows, statuses, scheme, time.monotonic() - t0, cuts)


def _pick(problem, lp, p, candidates, rows, statuses, scheme, elapsed, cuts) -> BilevelResult:
    base = dict(problem=problem, method="kkt", parameters=p, log=rows, relaxation=scheme.value, time_s=elapsed)
    if not candidates:
        ipopt = statuses.most_common(1)[0][0] if statuses else "not_run"
        status = {"Infeasible_Problem_Detected": "infeasible", "Diverging_Iterates": "unbounded",
                  "Maximum_CpuTime_Exceeded": "time_limit"}.get(ipopt, "solver_failed")
        return BilevelResult(status=status, ipopt_status=ipopt,
                             message=f"no start produced a solution (Ipopt statuses: {dict(statuses)})", **base)
    certified = [c for c in candidates if c.certificate.passed]
    if certified:
        best = min(certified, key=lambda c: c.upper)
        status = "optimal"
    else:
        best = min(candidates, key=lambda c: (c.certificate.lower_infeasibility + c.certificate.upper_infeasibility > 1e-6,
                                              c.certificate.value_gap if np.isfinite(c.certificate.value_gap) else np.inf,
                                              c.upper))
        status = "not_certified"
    info = {"candidates": [(c.start, c.upper, c.certificate.passed) for c in candidates], "cuts": [c.tolist() for c in cuts]}
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         ipopt_status=best.ipopt_status,
                         message="" if status == "optimal" else "; ".join(best.certificate.reasons), info=info, **base)

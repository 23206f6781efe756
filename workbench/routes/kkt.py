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
from .value_function import OptimisticSelection, sample_reduced_objective, value_function_cuts

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
    strong: bool = False  # re-certified with the strong multistart


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
              start: Mapping | None = None, n_starts: int = 4, max_cut_rounds: int = 3, seed: int = 0,
              time_limit: float | None = None, nonsmooth: str = "error", certify_starts: int = 8,
              gap_tol: float = 1e-6, feas_tol: float = 1e-6, schedule: tuple | None = None,
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
    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + time_limit
    scheme = Relaxation.parse(relaxation)
    _check_smooth(problem, nonsmooth)
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    x0 = problem.point_vector({s: v for s, v in (start or {}).items() if s in problem.leader} or None, "leader") \
        if start and any(s in problem.leader for s in start) else lp.x_start
    y0 = np.array([float((start or {}).get(s, problem.start.get(s, 0.0))) for s in problem.follower])
    if time_limit is not None:  # one Ipopt call must not eat the whole budget
        ipopt_options = dict(ipopt_options or {}, **{"ipopt.max_wall_time": max(time_limit / 6, 0.5)})
    run = _Run(lp, p, FollowerSolver(lp, tight=True), scheme, schedule, ipopt_options, deadline,
               dict(n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed))
    cuts_ok = not ca.depends_on(ca.vertcat(lp.g, lp.h), lp.x)
    xs = leader_starts(lp, x0, n_starts, seed)
    starts = ([(x, y0, "response") for x in xs] if response_starts else []) + [(x0, y0, "raw")]
    for rnd in range(max_cut_rounds + 1):
        new_starts = run.homotopies(starts, rnd, stop_on_consensus=rnd == 0)
        if run.certified() or not new_starts or run.late():
            break
        starts = new_starts + starts[:2]
    if global_search and not run.late():
        full = run.needs_global_search()
        if lp.n_x <= sample_dims:  # a convex follower needs one solve per sample: a light scan
            run.sampling(x0, y0, seed, light=not full)
        if full and cuts_ok and not run.late():
            run.value_function_loop(x0, y0)
    for _ in range(3):  # a strong re-check that finds a better reply restarts the search from it
        restarts = run.final_check()
        if not restarts or run.late():
            break
        run.homotopies(restarts, rnd=-2)
    return _pick(problem, lp, p, run.candidates, run.rows, run.statuses, scheme, time.monotonic() - t0, run.cuts)


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


class _Run:
    """State of one solve: compiled pieces, candidates, cuts and the log."""

    def __init__(self, lp, p, follower, scheme, schedule, ipopt_options, deadline, cert_opts):
        self.lp, self.p, self.follower, self.scheme = lp, p, follower, scheme
        self.schedule, self.ipopt_options, self.deadline, self.cert_opts = schedule, ipopt_options, deadline, cert_opts
        self.cuts_ok = not ca.depends_on(ca.vertcat(lp.g, lp.h), lp.x)
        self.cuts: list[np.ndarray] = []
        self.candidates: list[Candidate] = []
        self.rows: list[dict] = []
        self.statuses: Counter = Counter()
        self._k = 0
        self._selection: OptimisticSelection | None = None

    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def needs_global_search(self) -> bool:
        """Global search pays off when the follower is not shown convex (its KKT points may be
        spurious and y*(x) may jump) or when no candidate has been certified yet."""
        if not self.certified():
            return True
        return not all(c.certificate.follower_convex for c in self.candidates)

    def certified(self) -> bool:
        return any(c.certificate.passed for c in self.candidates)

    def certify(self, x, y, lam=None) -> Certificate:
        self._k += 1
        convex = follower_is_convex(self.lp, x, self.p)
        opts = dict(self.cert_opts, seed=self.cert_opts["seed"] + self._k)
        return certify(self.lp, x, y, self.p, lam, self.follower, follower_convex=convex, **opts)

    def add(self, x, y, lam, mu, cert, ipopt_status, start) -> Candidate:
        upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
        c = Candidate(np.asarray(x, float), np.asarray(y, float), np.asarray(lam, float), np.asarray(mu, float),
                      upper, cert, ipopt_status, start)
        self.candidates.append(c)
        return c

    def consensus(self) -> bool:
        """Two starts agree on the best certified value and the follower is convex there."""
        ok = [c for c in self.candidates if c.certificate.passed and c.certificate.follower_convex]
        if len(ok) < 2:
            return False
        best = min(c.upper for c in ok)
        return sum(c.upper <= best + 1e-7 * (1 + abs(best)) for c in ok) >= 2

    def final_check(self, strong_starts: int = 30, grid: int = 9, max_checks: int = 4) -> list:
        """Re-certify the best certified candidates with a much larger follower multistart.

        The search certifies cheaply (a few starts); before a point is called optimal, a follower
        that is not shown convex is re-solved from many more starts (and a grid when it is small).
        A candidate that fails loses its pass and the next best is checked.
        """
        ranked = sorted((c for c in self.candidates if c.certificate.passed and not c.strong), key=lambda c: c.upper)
        if ranked:
            self.select_optimistically(ranked[0])
        restarts = []
        for c in ranked[:max_checks]:
            if c.certificate.follower_convex:
                return []
            opts = dict(self.cert_opts, n_random=max(strong_starts, 10 * self.lp.n_y), seed=self.cert_opts["seed"] + 7919)
            strong = certify(self.lp, c.x, c.y, self.p, c.lam, self.follower, grid=grid, **opts)
            c.certificate, c.strong = strong, True
            if strong.passed:
                return []
            if strong.better_y is not None:
                restarts.append((c.x, strong.better_y, "raw"))
                if self.cuts_ok and not any(np.allclose(strong.better_y, k, atol=1e-6) for k in self.cuts):
                    self.cuts.append(strong.better_y)
        for c in ranked[max_checks:]:  # not re-checked: not called optimal
            c.certificate.passed = False
            c.certificate.reasons.append("not re-certified with the strong multistart (check budget spent)")
        return restarts

    def select_optimistically(self, c: Candidate) -> None:
        """Move y within the follower's optimal set towards the leader (see OptimisticSelection)."""
        if self._selection is None:
            self._selection = OptimisticSelection(self.lp, self.ipopt_options)
        # Solve with a loose and a 10^4 times tighter value tolerance: on a genuine face of optimal
        # replies the leader's gain is the same; a gain that only exploits the tolerance (it grows
        # like sqrt(tol) for a strict minimum) shrinks, and is refused.
        loose = self._selection(c.x, self.p, c.y, c.certificate.phi, tol=1e-8)
        y = self._selection(c.x, self.p, c.y if loose is None else loose, c.certificate.phi, tol=1e-12)
        if loose is None or y is None:
            return
        gain_loose = c.upper - float(self.lp.evaluate("upper_objective", c.x, loose, self.p)[0])
        gain = c.upper - float(self.lp.evaluate("upper_objective", c.x, y, self.p)[0])
        if gain <= 1e-7 * (1 + abs(c.upper)) or gain < 0.5 * gain_loose:
            return
        fs = self.follower.solve(c.x, self.p, y)  # multipliers of the selected reply
        cert = self.certify(c.x, y, fs.lam if fs.success else None)
        if cert.passed:
            self.add(c.x, y, fs.lam if fs.success else c.lam, fs.mu if fs.success else c.mu, cert,
                     c.ipopt_status, -3)
            c.certificate.passed = False
            c.certificate.reasons.append("superseded by the optimistic choice in the follower's optimal set")

    def homotopies(self, starts, rnd: int, stop_on_consensus: bool = False) -> list:
        """One homotopy per start on the MPCC with the current cuts; returns restarts from better replies."""
        lp, p = self.lp, self.p
        chain = Chain([Bilevel2MPCC(self.cuts), MPCCRelax(self.scheme)])
        relaxed, inv = chain.apply(lp)
        hom = Homotopy(relaxed, self.schedule, self.ipopt_options)
        new_starts = []
        for k, (xs_k, ys_k, kind) in enumerate(starts):
            if self.late() and self.candidates:
                break
            if kind == "response":
                w0 = _w_start(relaxed.mpcc, lp, self.follower, xs_k, ys_k, p)
            elif kind == "kkt":
                w0 = initial_w(relaxed.mpcc, xs_k, ys_k[0], p, ys_k[1], ys_k[2])
            else:
                w0 = initial_w(relaxed.mpcc, xs_k, ys_k, p)
            h = hom.run(w0, p, start=k, deadline=self.deadline)
            self.rows += [dict(s.as_dict(), round=rnd, relaxation=self.scheme.value) for s in h.steps]
            self.statuses[h.ipopt_status] += 1
            if not h.success:
                continue
            sol = chain.invert(h.w, inv)
            cert = self.certify(sol.x, sol.y, sol.lam)
            self.add(sol.x, sol.y, sol.lam, sol.mu, cert, h.ipopt_status, k)
            if cert.better_y is not None:
                new_starts.append((sol.x, cert.better_y, "raw"))
                if self.cuts_ok and not any(np.allclose(cert.better_y, c, atol=1e-6) for c in self.cuts):
                    self.cuts.append(cert.better_y)
            if stop_on_consensus and self.consensus():
                break
        return new_starts

    def value_function_loop(self, x0, y0) -> None:
        """High-point relaxation + value-function cuts from the best point so far."""
        best = min(self.candidates, key=lambda c: (not c.certificate.passed, c.upper), default=None)
        xs, ys = (best.x, best.y) if best is not None else (x0, y0)
        found = value_function_cuts(self.lp, self.follower, self.p, xs, ys, self.cuts, self.snap_and_certify,
                                    ipopt_options=self.ipopt_options, deadline=self.deadline)
        for x, y, lam, mu, cert in found:
            self.add(x, y, lam, mu, cert, "Solve_Succeeded", -1)
            if cert.better_y is not None and not any(np.allclose(cert.better_y, c, atol=1e-8) for c in self.cuts):
                self.cuts.append(cert.better_y)
        passed = [(x, (y, lam, mu), "kkt") for x, y, lam, mu, cert in found if cert.passed]
        if passed and not self.late():  # polish on the exact KKT system (with the cuts in place)
            self.homotopies(passed[-1:], rnd=-1)

    def snap_and_certify(self, x, y):
        """Replace y by the follower's exact local reply from y (tight Ipopt), then certify."""
        fs = self.follower.solve(x, self.p, y)
        f_y = float(self.lp.evaluate("lower_objective", x, y, self.p)[0])
        if fs.success and fs.value <= f_y + 1e-9 * (1 + abs(f_y)):
            y, lam, mu = fs.y, fs.lam, fs.mu
        else:
            lam, mu = np.zeros(int(self.lp.g.numel())), np.zeros(int(self.lp.h.numel()))
        return y, lam, mu, self.certify(x, y, lam)

    def sampling(self, x0, y0, seed: int, light: bool = False) -> None:
        """Sample the reduced objective, certify the best samples and polish them with the KKT homotopy.

        ``light``: 16 samples; only a sample that beats the best certified point is refined and kept.
        """
        lo, hi = box_from_constraints(self.lp, "x")
        xs = [x0] + [c.x for c in self.candidates]
        span = 2 * (1 + np.max(np.abs(xs), axis=0))
        lo = np.where(np.isfinite(lo), lo, np.min(xs, axis=0) - span)
        hi = np.where(np.isfinite(hi), hi, np.max(xs, axis=0) + span)
        best = min((c.upper for c in self.candidates if c.certificate.passed), default=np.inf)
        margin = best - 1e-6 * (1 + abs(best)) if np.isfinite(best) else np.inf
        samples = sample_reduced_objective(self.lp, self.follower, self.p, lo, hi, y0, seed=seed,
                                           deadline=self.deadline,
                                           **(dict(n_samples=16, refine=1, refine_below=margin) if light else {}))
        feasible = [s for s in samples if s.upper_infeasibility <= 1e-7][:2]
        if light:
            feasible = [s for s in feasible if s.upper < margin]
        for s in feasible:
            cert = self.certify(s.x, s.y, s.lam)
            self.add(s.x, s.y, s.lam, s.mu, cert, "Solve_Succeeded", -2)
        if feasible and not self.late():
            self.homotopies([(s.x, (s.y, s.lam, s.mu), "kkt") for s in feasible], rnd=-1)


def _follower_convexity(problem: Any, p: np.ndarray) -> Any:
    """Whether the KKT route can be trusted globally: the follower's convexity in y (symbolic or sampled)."""
    if hasattr(problem, "_lower"):  # vectorised declarations: the certificate's numeric test covers them
        return None
    from ..analysis import follower_convexity
    return follower_convexity(problem, dict(zip(problem.parameter_symbols, p)))


def _pick(problem, lp, p, candidates, rows, statuses, scheme, elapsed, cuts) -> BilevelResult:
    base = dict(problem=problem, method="kkt", parameters=p, log=rows, relaxation=scheme.value, time_s=elapsed)
    if not candidates:
        ipopt = statuses.most_common(1)[0][0] if statuses else "not_run"
        status = {"Infeasible_Problem_Detected": "infeasible", "Diverging_Iterates": "unbounded",
                  "Maximum_CpuTime_Exceeded": "time_limit"}.get(ipopt, "solver_failed")
        return BilevelResult(status=status, ipopt_status=ipopt,
                             message=f"no start produced a solution (Ipopt statuses: {dict(statuses)})", **base)
    certified = [c for c in candidates if c.certificate.passed]
    if not certified and all(c.certificate.follower_unbounded for c in candidates):
        ipopt = candidates[0].certificate.follower_ipopt_status
        return BilevelResult(status="unbounded", ipopt_status=ipopt, message=(
            "the follower is unbounded below at every leader point tried (its re-solve ended with Ipopt "
            f"status {ipopt}): no follower-optimal response exists; bound the follower's variables"), **base)
    if certified:
        best = min(certified, key=lambda c: c.upper)
        status = "optimal"
    else:
        best = min(candidates, key=lambda c: (c.certificate.lower_infeasibility + c.certificate.upper_infeasibility > 1e-6,
                                              c.certificate.value_gap if np.isfinite(c.certificate.value_gap) else np.inf,
                                              c.upper))
        status = "not_certified"
    info = {"candidates": [(c.start, c.upper, c.certificate.passed) for c in candidates], "cuts": [c.tolist() for c in cuts],
            "follower_convexity": _follower_convexity(problem, p)}
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         ipopt_status=best.ipopt_status,
                         message="" if status == "optimal" else "; ".join(best.certificate.reasons), info=info, **base)

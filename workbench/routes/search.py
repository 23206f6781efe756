"""The search state of the KKT route: compiled pieces, candidates, cuts and the log.

Every strategy (homotopies from starts, value-function cuts, reduced-objective sampling,
optimistic selection, the strong final re-certification) adds candidates here; only the
certificate decides which of them may be called optimal.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import casadi as ca
import numpy as np

from ..certify import Certificate, certify, follower_is_convex, infeasibility, leader_box
from ..certify.certificate import FEAS_TOL
from ..certify.implement import implemented_point
from ..certify.limits import ExactValue
from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, initial_w
from ..solve import Homotopy, box_from_constraints
from .value_function import OptimisticSelection, sample_reduced_objective, value_function_cuts


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
    raw_x: np.ndarray | None = None     # the solver's x before projection onto the leader's bounds
    raw_upper: float | None = None      # F there (an infimum may be approached but not attained)
    leader_stationarity: float = float("nan")  # Ipopt's dual infeasibility of the single-level NLP
    strong: bool = False  # re-checked with the strong multistart
    demoted: str | None = None  # why a proven candidate is not offered (e.g. superseded)

    @property
    def ok(self) -> bool:
        """Proven follower-optimal and feasible, and not superseded."""
        return self.certificate.passed and self.demoted is None


def _w_start(mpcc, lp, follower, x, y0, p):
    """Start the MPCC at the follower's reply to x (a KKT point with multipliers) when possible."""
    fs = follower.solve(x, p, y0)
    if fs.success:
        return initial_w(mpcc, x, fs.y, p, fs.lam, fs.mu)
    return initial_w(mpcc, x, y0, p)


class Search:
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
        self._homotopies: dict = {}

    def add_cut(self, y: np.ndarray) -> None:
        """Keep a better follower reply for value-function cuts (valid only for an x-independent
        follower feasible set, so kept only then)."""
        if self.cuts_ok and not any(np.allclose(y, c, atol=1e-6) for c in self.cuts):
            self.cuts.append(np.asarray(y, float))

    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def needs_global_search(self) -> bool:
        """Global search pays off when the follower is not shown convex (its KKT points may be
        spurious and y*(x) may jump) or when no candidate has been certified yet."""
        if not self.certified():
            return True
        return not all(c.certificate.follower_convex for c in self.candidates)

    def certified(self) -> bool:
        return any(c.ok for c in self.candidates)

    def certify(self, x, y, lam=None, mu=None) -> Certificate:
        """Certify a candidate; a global (SCIP) proof is only attempted for a candidate that would
        improve on the best proven point, since a worse one can never be the answer."""
        self._k += 1
        convex = follower_is_convex(self.lp, x, self.p)
        opts = dict(self.cert_opts, seed=self.cert_opts["seed"] + self._k)
        best = min((c.upper for c in self.candidates if c.ok), default=np.inf)
        if np.isfinite(best):
            upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
            if upper > best + 1e-9 * (1 + abs(best)):
                opts["use_global"] = False
        if self.deadline is not None:  # a global proof must not overrun the route's time limit
            opts["global_time"] = min(opts.get("global_time", 10.0), max(self.deadline - time.monotonic(), 0.5))
        return certify(self.lp, x, y, self.p, lam, self.follower, mu=mu, follower_convex=convex, **opts)

    def add(self, x, y, lam, mu, cert, ipopt_status, start) -> Candidate:
        if cert.lam is not None:  # the multipliers the certificate checked are the ones reported
            lam, mu = cert.lam, cert.mu if cert.mu is not None else mu
        upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
        c = Candidate(np.asarray(x, float), np.asarray(y, float), np.asarray(lam, float), np.asarray(mu, float),
                      upper, cert, ipopt_status, start)
        self.candidates.append(c)
        return c

    def exact_point(self, x, y, lam=None, mu=None):
        """The implemented point: x projected onto the leader's simple bounds and, where x moved
        (or y is not exactly feasible), the follower's exact reply there, solved from y."""
        xp, ye, lame, mue, moved = implemented_point(self.lp, self.follower, x, y, self.p, lam, mu)
        if ye is not y and not np.allclose(ye, y, atol=1e-7):
            # The exact re-solve may have left an optimal face for its analytic centre; among the
            # follower's optimal replies at xp take the one best for the leader, starting from y.
            if self._selection is None:
                self._selection = OptimisticSelection(self.lp, self.ipopt_options)
            phi = float(self.lp.evaluate("lower_objective", xp, ye, self.p)[0])
            ys = self._selection(xp, self.p, y, phi, tol=1e-12)
            if ys is not None and infeasibility(self.lp, xp, ys, self.p, "lower") <= 1e-9:
                F = lambda v: float(self.lp.evaluate("upper_objective", xp, v, self.p)[0])  # noqa: E731
                if F(ys) < F(ye):
                    return xp, ys, None, None, moved
        return xp, ye, lame, mue, moved

    def add_exact(self, x, y, lam, mu, ipopt_status, start) -> Candidate:
        """Implement (see ``exact_point``), certify and keep a candidate; F is reported at the exact point."""
        raw_upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
        xp, ye, lame, mue, moved = self.exact_point(x, y, lam, mu)
        cert = self.certify(xp, ye, lame, mue)
        c = self.add(xp, ye, lame if lame is not None else lam, mue if mue is not None else mu, cert, ipopt_status, start)
        if moved:
            c.raw_x, c.raw_upper = np.asarray(x, float), raw_upper
        return c

    def evaluate_exact(self, x, y_guess) -> ExactValue | None:
        """F at the exact bilevel point for leader x (for the attainment and unboundedness probes)."""
        xp, y, lam, mu, _ = self.exact_point(x, y_guess)
        if infeasibility(self.lp, xp, y, self.p, "lower") > FEAS_TOL:
            return None
        cert = self.certify(xp, y, lam, mu)
        feasible = (cert.lower_infeasibility <= FEAS_TOL and cert.upper_infeasibility <= FEAS_TOL
                    and cert.leader_bound_violation == 0.0 and cert.better_y is None and not cert.follower_unbounded)
        upper = float(self.lp.evaluate("upper_objective", xp, y, self.p)[0])
        return ExactValue(xp, y, upper, feasible, cert.proof)

    def consensus(self) -> bool:
        """Two starts agree on the best certified value and the follower is convex there."""
        ok = [c for c in self.candidates if c.ok and c.certificate.follower_convex]
        if len(ok) < 2:
            return False
        best = min(c.upper for c in ok)
        return sum(c.upper <= best + 1e-7 * (1 + abs(best)) for c in ok) >= 2

    def final_check(self, strong_starts: int = 30, grid: int = 9, max_checks: int = 4, snap: bool = True) -> list:
        """Optimistic selection at the best proven point; for unproven ("sampled") candidates that
        beat it, a much larger follower multistart looking for a better reply to restart from.

        A sampled candidate is never called optimal; the strong multistart only serves the search.
        """
        proven = sorted((c for c in self.candidates if c.ok), key=lambda c: c.upper)
        for c in proven[:2]:
            # Leader values within 1e-8 of 0 are also tried at exactly 0, where the follower may have
            # several optimal replies (MitsosBarton2006Ex313: f ≡ 0 at x = 0 only); the certificate
            # and the optimistic selection decide, nothing is assumed.
            small = (np.abs(c.x) < 1e-8) & (c.x != 0)
            if small.any():
                snapped = self.add_exact(np.where(small, 0.0, c.x), c.y, c.lam, c.mu, c.ipopt_status, -6)
                if snapped.ok:
                    self.select_optimistically(snapped)
        if snap:
            self.snap_refuted(proven[0].upper if proven else np.inf)
        proven = sorted((c for c in self.candidates if c.ok), key=lambda c: c.upper)
        if proven:
            self.select_optimistically(proven[0])
        bar = proven[0].upper if proven else np.inf
        ranked = sorted((c for c in self.candidates if not c.certificate.passed and not c.strong
                         and c.certificate.proof == "sampled" and c.upper < bar), key=lambda c: c.upper)
        restarts = []
        for c in ranked[:max_checks]:
            if self.late():
                break
            opts = dict(self.cert_opts, n_random=max(strong_starts, 10 * self.lp.n_y), seed=self.cert_opts["seed"] + 7919)
            strong = certify(self.lp, c.x, c.y, self.p, c.lam, self.follower, grid=grid, mu=c.mu, use_global=False, **opts)
            c.certificate, c.strong = strong, True
            if strong.better_y is not None:
                restarts.append((c.x, strong.better_y, "raw"))
                self.add_cut(strong.better_y)
        return restarts

    def snap_refuted(self, bar: float, n_candidates: int = 3, decimals: tuple = (3, 2, 1, 0)) -> None:
        """Leader points rounded to a few decimals, tried where a refuted candidate beat ``bar``.

        Where the follower's reply jumps, the leader's best point can be isolated: MitsosBarton2006Ex313
        has F = -1 only at exactly x = 0 (f = 0 for every y there), F > 0 on both sides, and the KKT
        search stalls at x = -0.0017 because a tolerance separates the two replies. Rounded points are
        only candidates: each is implemented exactly and has to pass the certificate.
        """
        refuted, seen = [], set()
        for c in sorted((c for c in self.candidates if c.certificate.better_y is not None and c.upper < bar),
                        key=lambda c: c.upper):
            k = np.round(c.x, 9).tobytes()
            if k not in seen:
                seen.add(k)
                refuted.append(c)
        tried: set = set()
        for c in refuted[:n_candidates]:
            for d in decimals:
                if self.late():
                    return
                xs = np.round(c.x, d) + 0.0
                key = xs.tobytes()
                if key in tried or np.array_equal(xs, c.x):
                    continue
                tried.add(key)
                for y in (c.y, c.certificate.better_y):
                    snapped = self.add_exact(xs, y, None, None, c.ipopt_status, -7)
                    if snapped.ok:
                        break

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
        cert = self.certify(c.x, y, fs.lam if fs.success else None, fs.mu if fs.success else None)
        if cert.passed:
            self.add(c.x, y, fs.lam if fs.success else c.lam, fs.mu if fs.success else c.mu, cert,
                     c.ipopt_status, -3)
            c.demoted = "superseded by the optimistic choice in the follower's optimal set"

    def homotopies(self, starts, rnd: int, stop_on_consensus: bool = False) -> list:
        """One homotopy per start on the MPCC with the current cuts; returns restarts from better replies."""
        lp, p = self.lp, self.p
        chain, relaxed, inv, hom = self._compiled()
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
            c = self.add_exact(sol.x, sol.y, sol.lam, sol.mu, h.ipopt_status, k)
            c.leader_stationarity = h.steps[-1].leader_stationarity if h.steps else float("nan")
            cert = c.certificate
            if cert.better_y is not None:
                new_starts.append((c.x, cert.better_y, "raw"))
                self.add_cut(cert.better_y)
            if stop_on_consensus and self.consensus():
                break
        return new_starts

    def _compiled(self):
        """The chain and its two Ipopt solvers, compiled once per set of cuts (not once per call)."""
        key = tuple(c.tobytes() for c in self.cuts)
        if key not in self._homotopies:
            chain = Chain([Bilevel2MPCC(self.cuts), MPCCRelax(self.scheme)])
            relaxed, inv = chain.apply(self.lp)
            self._homotopies[key] = (chain, relaxed, inv, Homotopy(relaxed, self.schedule, self.ipopt_options))
        return self._homotopies[key]

    def value_function_loop(self, x0, y0) -> None:
        """High-point relaxation + value-function cuts from the best point so far, and from the best
        refuted point below it: where the follower's reply jumps, the cut f(x, y) <= f(x, y_better)
        moves such a point to where its reply ties with the better one (MitsosBarton2006Ex313:
        from x = -0.0017, y = 1 to x = 0, y = 1), which the optimistic follower may choose."""
        best = min(self.candidates, key=lambda c: (not c.ok, c.upper), default=None)
        starts = [(best.x, best.y) if best is not None else (x0, y0)]
        bar = best.upper if best is not None and best.ok else np.inf
        refuted = [c for c in self.candidates if c.certificate.better_y is not None and c.upper < bar]
        if refuted:
            r = min(refuted, key=lambda c: c.upper)
            starts.append((r.x, r.y))
        found = []
        for xs, ys in starts:
            if self.late():
                break
            found += value_function_cuts(self.lp, self.follower, self.p, xs, ys, self.cuts, self.snap_and_certify,
                                         ipopt_options=self.ipopt_options, deadline=self.deadline)
        for x, y, lam, mu, cert in found:
            self.add(x, y, lam, mu, cert, "Solve_Succeeded", -1)
            if cert.better_y is not None:
                self.add_cut(cert.better_y)
        passed = [(x, (y, lam, mu), "kkt") for x, y, lam, mu, cert in found if cert.passed]
        if passed and not self.late():  # polish on the exact KKT system (with the cuts in place)
            self.homotopies(passed[-1:], rnd=-1)

    def snap_and_certify(self, x, y):
        """Project x onto the leader's bounds, replace y by the follower's exact local reply from y
        (tight Ipopt), then certify."""
        lo, hi = leader_box(self.lp)
        x = np.clip(np.asarray(x, float), lo, hi)
        fs = self.follower.solve(x, self.p, y)
        f_y = float(self.lp.evaluate("lower_objective", x, y, self.p)[0])
        if fs.success and fs.value <= f_y + 1e-9 * (1 + abs(f_y)):
            y, lam, mu = fs.y, fs.lam, fs.mu
        else:
            lam, mu = np.zeros(int(self.lp.g.numel())), np.zeros(int(self.lp.h.numel()))
        return x, y, lam, mu, self.certify(x, y, lam, mu)

    def sampling(self, x0, y0, seed: int, light: bool = False) -> None:
        """Sample the reduced objective, certify the best samples and polish them with the KKT homotopy.

        ``light``: 16 samples; only a sample that beats the best certified point is refined and kept.
        """
        lo, hi = box_from_constraints(self.lp, "x")
        xs = [x0] + [c.x for c in self.candidates]
        span = 2 * (1 + np.max(np.abs(xs), axis=0))
        lo = np.where(np.isfinite(lo), lo, np.min(xs, axis=0) - span)
        hi = np.where(np.isfinite(hi), hi, np.max(xs, axis=0) + span)
        best = min((c.upper for c in self.candidates if c.ok), default=np.inf)
        margin = best - 1e-6 * (1 + abs(best)) if np.isfinite(best) else np.inf
        samples = sample_reduced_objective(self.lp, self.follower, self.p, lo, hi, y0, seed=seed,
                                           deadline=self.deadline,
                                           **(dict(n_samples=16, refine=1, refine_below=margin) if light else {}))
        feasible = [s for s in samples if s.upper_infeasibility <= 1e-7][:2]
        if light:
            feasible = [s for s in feasible if s.upper < margin]
        for s in feasible:
            cert = self.certify(s.x, s.y, s.lam, s.mu)
            self.add(s.x, s.y, s.lam, s.mu, cert, "Solve_Succeeded", -2)
        if feasible and not self.late():
            self.homotopies([(s.x, (s.y, s.lam, s.mu), "kkt") for s in feasible], rnd=-1)

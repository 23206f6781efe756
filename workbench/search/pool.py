"""The candidate pool of the KKT search: every point a strategy finds, with frozen evidence.

A :class:`Candidate` is a value: the implemented point (x inside the leader's bounds, the
follower's exact reply), F there, the certificate issued for it, where it came from
(:class:`Origin`), and its standing in the search (``status``, ``notes``). Certificates are
never edited: a strategy that learns more (a strong re-check, a better optimistic reply)
puts a new candidate in the old one's place (:meth:`CandidatePool.replace`).

The pool also holds what every strategy shares: the certifier (one follower solver, the
certificate options, a fresh seed per certificate), the value-function cuts y_k, the
homotopy log rows and the Ipopt status counts, and the deadline.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..certify import Certificate, certify, follower_is_convex, infeasibility
from ..certify.certificate import FEAS_TOL
from ..certify.implement import implemented_point
from ..certify.limits import ExactValue
from ..lower import LoweredProblem
from ..reformulate.high_point import HighPointRelaxation
from ..solve import FollowerSolver
from ..values import Point
from .selection import optimistic_reply

PROVEN, UNPROVEN, RECHECKED, SUPERSEDED = "proven", "unproven", "rechecked", "superseded"


@dataclass(frozen=True)
class Origin:
    """Where a candidate came from.

    ``start``: the homotopy start index (>= 0), or the strategy: -1 cut loop, -2 sampling,
    -3 optimistic selection, -5 infimum probe, -6 a leader value snapped to 0, -7 a rounded
    leader point. ``raw_x``/``raw_upper``: the solver's x before projection onto the leader's
    bounds and F there (an infimum may be approached there but not attained).
    """

    start: int
    solver_status: str
    leader_stationarity: float = float("nan")  # Ipopt's dual infeasibility of the single-level NLP
    raw_x: np.ndarray | None = None
    raw_upper: float | None = None


@dataclass(frozen=True)
class Candidate:
    """An implemented point with its certificate and its standing in the search.

    ``status``: "proven" (the certificate passed: offered as an answer), "unproven",
    "rechecked" (unproven after the strong multistart of the final check) or "superseded"
    (proven, but a better optimistic reply replaced it; ``notes`` say why). Unknown
    multipliers are NaN, so a residual check on them fails instead of passing with zeros.
    """

    point: Point
    upper: float
    certificate: Certificate
    origin: Origin
    status: str
    notes: tuple[str, ...] = ()

    @property
    def x(self) -> np.ndarray:
        return self.point.x

    @property
    def y(self) -> np.ndarray:
        return self.point.y

    @property
    def lam(self) -> np.ndarray:
        return self.point.lam

    @property
    def mu(self) -> np.ndarray:
        return self.point.mu

    @property
    def ok(self) -> bool:
        """Proven follower-optimal and feasible, and not superseded."""
        return self.status == PROVEN


class CandidatePool:
    """The candidates of one solve and what the strategies share (see module docstring)."""

    def __init__(self, lp: LoweredProblem, p: np.ndarray, follower: FollowerSolver, cert_opts: dict,
                 ipopt_options: dict | None = None, deadline: float | None = None):
        self.lp, self.p, self.follower = lp, p, follower
        self.cert_opts, self.ipopt_options, self.deadline = cert_opts, ipopt_options, deadline
        self.cuts_ok = HighPointRelaxation().accepts(lp)  # g, h independent of x: every y_k is a valid cut
        self.cuts: list[np.ndarray] = []
        self.candidates: list[Candidate] = []
        self.rows: list[dict] = []          # the homotopy steps: ``r.log``
        self.statuses: Counter = Counter()  # Ipopt's final status per homotopy run
        self._k = 0

    def late(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def add_cut(self, y: np.ndarray) -> None:
        """Keep a better follower reply for value-function cuts (valid only for an x-independent
        follower feasible set, so kept only then)."""
        if self.cuts_ok and not any(np.allclose(y, c, atol=1e-6) for c in self.cuts):
            self.cuts.append(np.asarray(y, float))

    # -- the pool ----------------------------------------------------------------------------
    def proven(self) -> list[Candidate]:
        """The proven candidates, best F first."""
        return sorted((c for c in self.candidates if c.ok), key=lambda c: c.upper)

    def certified(self) -> bool:
        return any(c.ok for c in self.candidates)

    def best_value(self) -> float:
        """The best proven F (inf when nothing is proven)."""
        return min((c.upper for c in self.candidates if c.ok), default=np.inf)

    def best(self) -> Candidate | None:
        """The best proven candidate, else the best unproven one."""
        return min(self.candidates, key=lambda c: (not c.ok, c.upper), default=None)

    def consensus(self) -> bool:
        """Two starts agree on the best certified value and the follower is convex there."""
        ok = [c for c in self.candidates if c.ok and c.certificate.follower_convex]
        if len(ok) < 2:
            return False
        best = min(c.upper for c in ok)
        return sum(c.upper <= best + 1e-7 * (1 + abs(best)) for c in ok) >= 2

    def needs_global_search(self) -> bool:
        """Global search pays off when the follower is not shown convex (its KKT points may be
        spurious and y*(x) may jump) or when no candidate has been certified yet."""
        if not self.certified():
            return True
        return not all(c.certificate.follower_convex for c in self.candidates)

    def replace(self, old: Candidate, new: Candidate) -> None:
        """Put ``new`` in ``old``'s place (same position: the order breaks ties)."""
        self.candidates[next(i for i, c in enumerate(self.candidates) if c is old)] = new

    # -- certify and add ---------------------------------------------------------------------
    def certify(self, x, y, lam=None, mu=None) -> Certificate:
        """Certify a candidate; a global (SCIP) proof is only attempted for a candidate that would
        improve on the best proven point, since a worse one can never be the answer."""
        self._k += 1
        convex = follower_is_convex(self.lp, x, self.p)
        opts = dict(self.cert_opts, seed=self.cert_opts["seed"] + self._k)
        best = self.best_value()
        if np.isfinite(best):
            upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
            if upper > best + 1e-9 * (1 + abs(best)):
                opts["use_global"] = False
        if self.deadline is not None:  # a global proof must not overrun the route's time limit
            opts["global_time"] = min(opts.get("global_time", 10.0), max(self.deadline - time.monotonic(), 0.5))
        return certify(self.lp, x, y, self.p, lam, self.follower, mu=mu, follower_convex=convex, **opts)

    def add(self, point: Point, cert: Certificate, origin: Origin) -> Candidate:
        """Keep a certified point; its multipliers are the ones the certificate checked."""
        lam, mu = point.lam, point.mu
        if cert.lam is not None:
            lam, mu = cert.lam, cert.mu if cert.mu is not None else mu
        upper = float(self.lp.evaluate("upper_objective", point.x, point.y, self.p)[0])
        point = Point(point.x, point.y, np.asarray(lam, float), np.asarray(mu, float))
        c = Candidate(point, upper, cert, origin, PROVEN if cert.passed else UNPROVEN)
        self.candidates.append(c)
        return c

    def exact_point(self, x, y, lam=None, mu=None):
        """The implemented point ``(x, y, lam, mu, moved)``: x projected onto the leader's simple
        bounds and, where x moved (or y is not exactly feasible), the follower's exact reply
        there, solved from y."""
        xp, ye, lame, mue, moved = implemented_point(self.lp, self.follower, x, y, self.p, lam, mu)
        if ye is not y and not np.allclose(ye, y, atol=1e-7):
            # The exact re-solve may have left an optimal face for its analytic centre; among the
            # follower's optimal replies at xp take the one best for the leader, starting from y.
            phi = float(self.lp.evaluate("lower_objective", xp, ye, self.p)[0])
            ys = optimistic_reply(self.lp, xp, self.p, y, phi, tol=1e-12, ipopt_options=self.ipopt_options)
            if ys is not None and infeasibility(self.lp, xp, ys, self.p, "lower") <= 1e-9:
                F = lambda v: float(self.lp.evaluate("upper_objective", xp, v, self.p)[0])  # noqa: E731
                if F(ys) < F(ye):
                    return xp, ys, None, None, moved
        return xp, ye, lame, mue, moved

    def add_exact(self, point: Point, start: int, solver_status: str,
                  leader_stationarity: float = float("nan")) -> Candidate:
        """Implement (see ``exact_point``), certify and keep a candidate; F is reported at the exact point."""
        x, y, lam, mu = point.x, point.y, point.lam, point.mu
        raw_upper = float(self.lp.evaluate("upper_objective", x, y, self.p)[0])
        xp, ye, lame, mue, moved = self.exact_point(x, y, lam, mu)
        cert = self.certify(xp, ye, lame, mue)
        origin = Origin(start, solver_status, leader_stationarity,
                        raw_x=x if moved else None, raw_upper=raw_upper if moved else None)
        return self.add(Point(xp, ye, lame if lame is not None else lam, mue if mue is not None else mu), cert, origin)

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

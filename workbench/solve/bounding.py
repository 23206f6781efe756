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
  phi(x_k) with its minimiser y_k, which gives the next cut f(x, y) <= f(x, y_k). A solve stopped at
  its time limit still gives a feasible y_k, and the cut needs only that (phi(x) <= f(x, y_k) for any
  y_k feasible at x); only the upper bound needs the reply proven optimal, which the certificate does.
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
        if fst not in ("optimal", "time_limit") or yk is None:
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


UBP_TIME = 2.0          # seconds per upper-bounding solve (a candidate, not a proof: 10 s each stalled Ex324)
LBP_FEASTOL = 1e-8      # SCIP's feastol in the relaxations (1e-9 stalls on cuts tight at a point)


def _dep(block: Any, v: Any) -> list[bool]:
    import casadi as ca
    return [bool(ca.depends_on(block[i], v)) for i in range(int(block.numel()))]


def round_integers(x: np.ndarray, ints: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x, float).copy()
    if ints:
        x[list(ints)] = np.round(x[list(ints)])
    return x


class HighPointBounding:
    """The scheme's subproblems for one bilevel problem, each a SCIP solve (``solve.scip``) of a program
    from ``reformulate.global_kkt``: the high-point relaxation with value-function cuts (plain where y_k
    is feasible at every x of the leader box, else disjunctive), the follower at x_k, the optimistic
    eps-optimal reply, interior follower points. What needs a later stage is injected: ``certify(x, y)``
    (the follower certificate, whose ``passed`` accepts an incumbent) and ``follower_global(x, time_limit)``
    (``certify.global_follower``). ``left()`` is the time left of the caller's budget; ``follower_tol`` the
    certificate's gap tolerance (the wider upper-bounding reply takes half of it).

    Refuses (``MethodError``) a leader without derivable finite bounds: the scheme needs a compact set.
    """

    def __init__(self, lp: Any, p: np.ndarray, ints: tuple[int, ...], names: tuple[list[str], list[str]],
                 radius: float, *, left: Callable[[], float], seed: int, gap_tol: float,
                 certify: Callable[[np.ndarray, np.ndarray], Any], follower_global: Callable[..., Any],
                 leader_box: tuple[np.ndarray, np.ndarray], follower_tol: float = 1e-9):
        from ..errors import MethodError
        from ..reformulate.global_kkt import Bilevel2HighPoint
        self.lp, self.p, self.ints, self.radius = lp, p, ints, radius
        self.xn, self.yn = names
        self.left, self.seed, self.gap_tol = left, seed, gap_tol
        self.certify, self.follower_global, self.leader_box = certify, follower_global, leader_box
        self.follower_tol = follower_tol  # the certificate's follower gap tolerance (relative to 1 + |f|)
        self.hpr0, _ = Bilevel2HighPoint(p, None, ints, leader_names=self.xn, follower_names=self.yn,
                                         radius=radius).apply(lp)
        assumed_x = [self.hpr0.names[i] for i in self.hpr0.assumed if i < lp.n_x]
        if assumed_x:
            raise MethodError(f"method='global': the bounding scheme for nonconvex followers needs a compact leader "
                              f"set, but no finite bound can be derived for {assumed_x}; add bounds on these leader "
                              "variables")
        self.xbox = (self.hpr0.lb[:lp.n_x], self.hpr0.ub[:lp.n_x])
        self.assumed_y = [self.hpr0.names[i] for i in self.hpr0.assumed if i >= lp.n_x]
        self.xrows = [j for j, d in enumerate(_dep(lp.g, lp.x)) if d]
        self.h_dep = any(_dep(lp.h, lp.x))
        self.last: dict[str, Any] = {}
        self._plain: dict[tuple, bool] = {}

    def _solve(self, prog: Any, time_limit: float, **kw: Any) -> Any:
        from .scip import solve_program
        return solve_program(prog, time_limit=time_limit, seed=self.seed, **kw)

    def plain(self, yk: np.ndarray) -> bool:
        """y_k feasible at every x of the leader box: the plain cut; else the disjunctive one."""
        key = tuple(np.round(np.asarray(yk, float), 12))
        if key not in self._plain:
            self._plain[key] = not self.xrows or self.feasible_for_every_x(yk)[0]
        return self._plain[key]

    def lower_bound(self, cuts: list[np.ndarray], upper: float) -> tuple[str, float, np.ndarray | None]:
        from ..errors import UnsupportedExpressionError
        from ..reformulate.global_kkt import Bilevel2HighPoint
        red = Bilevel2HighPoint(self.p, None, self.ints, cuts=cuts, leader_names=self.xn, follower_names=self.yn,
                                radius=self.radius, plain=[self.plain(c) for c in cuts], xrows=self.xrows)
        self.last["upper"] = upper
        cutoff = upper - 0.5 * self.gap_tol * (1 + abs(upper)) if math.isfinite(upper) else None
        try:
            prog, inv = red.apply(self.lp)
            sol = self._solve(prog, min(self.left(), max(2.0, self.left() / 3)), feastol=LBP_FEASTOL,
                              rel_gap=self.gap_tol / 4, abs_gap=self.gap_tol / 4, objlimit=cutoff)
        except UnsupportedExpressionError as exc:
            self.last["error"] = str(exc)
            return "unsupported", -math.inf, None
        self.last["sol"] = sol
        if sol.status == "infeasible" and cutoff is not None:
            return "infeasible", cutoff, None  # no point of the relaxation below the cutoff
        if sol.w is None:
            return sol.status, sol.dual, None
        x, y = red.invert(sol.w, inv)
        lo, hi = self.leader_box  # SCIP's x may sit outside its bounds by the feasibility tolerance
        x = round_integers(np.clip(x, lo, hi), self.ints)
        self.last["point"] = (x, np.asarray(y, float))  # an upper-bound candidate too (``upper_bound``)
        return sol.status, sol.dual, x

    def follower(self, x: np.ndarray) -> tuple[str, float, np.ndarray | None]:
        r = self.follower_global(x, time_limit=min(10.0, self.left()))
        if r.on_assumed_bound:
            return "on_assumed_bound", r.phi_upper, None
        return r.status, r.phi_upper, r.y

    def cut_valid(self, yk: np.ndarray) -> tuple[bool, str]:
        if self.h_dep:
            return False, "a follower equality depends on x (no valid disjunctive cut is implemented for it)"
        return True, "plain cut" if self.plain(yk) else "disjunctive cut"

    def upper_bound(self, x: np.ndarray, phi: float, yk: np.ndarray) -> tuple[float, Any] | None:
        """Certified points at x: the optimistic eps-optimal reply (eps = 1e-10 (1 + |phi|), and half the
        certificate's tolerance), y_k, and the relaxation's own y at x (where the follower is indifferent
        to within the tolerance, as at an x where f no longer depends on y, it is the best reply); at x
        rounded to 6, 3 and 2 decimals (an optimum at a point like x = 0, where the follower's reply
        jumps, is met by the relaxation only approximately); each reply also with its components within
        1e-7 of a bound of the follower's box put on that bound, and rounded to 6 decimals (a reply like
        y = -1 is returned by SCIP only to its tolerance). Every candidate is judged by the certificate
        alone, and only where its F beats the incumbent."""
        from ..errors import UnsupportedExpressionError
        from ..reformulate.global_kkt import fixed_leader_program
        lp, best = self.lp, None
        points = [(x, phi, yk)]
        for d in (6, 3, 2):
            snapped = round_integers(np.round(x, d), self.ints) + 0.0
            if any(np.array_equal(snapped, q[0]) for q in points):
                continue
            st, phi_s, y_s = self.follower(snapped)
            if st == "optimal" and y_s is not None:
                points.append((snapped, phi_s, y_s))
        own = self.last.get("point")
        for j, (xc, ph, yc) in enumerate(points):
            cands = [yc]
            if j == 0 and own is not None and np.array_equal(own[0], xc):
                cands.append(own[1])
            for eps in (1e-10 * (1 + abs(ph)), 0.5 * self.follower_tol * (1 + abs(ph))):
                try:  # any point is a candidate: the solve needs the scheme's gap only, not a proof
                    s = self._solve(fixed_leader_program(lp, self.p, xc, ph, eps, None), min(UBP_TIME, self.left()),
                                    rel_gap=self.gap_tol / 4, abs_gap=self.gap_tol / 4)
                except UnsupportedExpressionError:
                    break
                if s.w is not None:
                    cands.insert(0, s.w)
                    break  # the wider eps only where the tight one found no reply
            cands += [self._on_bounds(c) for c in list(cands)]
            cands += [np.round(c, 6) + 0.0 for c in list(cands)]
            seen: list[np.ndarray] = []
            for y in cands:
                if any(np.array_equal(y, q) for q in seen):
                    continue
                seen.append(y)
                F = float(lp.evaluate("upper_objective", xc, y, self.p)[0])
                if F >= (best[0] if best is not None else self.last.get("upper", math.inf)):
                    continue  # no better than the incumbent: not worth a certificate
                cert = self.certify(xc, y)
                if cert.passed:
                    best = (F, (xc.copy(), np.asarray(y, float).copy(), cert))
        return best

    def _on_bounds(self, y: np.ndarray) -> np.ndarray:
        """y with every component within 1e-7 (1 + |b|) of a derived bound b of the follower's box set to b."""
        n0 = self.lp.n_x
        lo = self.hpr0.derived_lb[n0:n0 + self.lp.n_y]
        hi = self.hpr0.derived_ub[n0:n0 + self.lp.n_y]
        y = np.asarray(y, float).copy()
        for b in (lo, hi):
            near = np.isfinite(b) & (np.abs(y - b) <= 1e-7 * (1 + np.abs(b)))
            y[near] = b[near]
        return y

    def extra_cuts(self, x: np.ndarray, yk: np.ndarray) -> list[np.ndarray]:
        """Where y_k sits on an x-dependent boundary (g_j(x_k, y_k) < delta), cuts at the minimisers of the
        follower with those rows tightened to g_j >= delta, delta = 1e-1, 1e-2, 1e-3: each is a valid
        follower point on a neighbourhood of x_k, so its cut bites at x_k
        (``reformulate.global_kkt.interior_follower_program``)."""
        from ..errors import UnsupportedExpressionError
        from ..reformulate.global_kkt import interior_follower_program
        if not self.xrows:
            return []
        gv = self.lp.evaluate("lower_ineq", x, yk, self.p)
        out = []
        for d in (1e-1, 1e-2, 1e-3):
            rows = [j for j in self.xrows if gv[j] < d]
            if not rows:
                continue
            try:
                s = self._solve(interior_follower_program(self.lp, self.p, x, rows, d), min(5.0, self.left()))
            except UnsupportedExpressionError:
                return out
            if s.w is not None and s.status == "optimal" and self.plain(s.w) is not None:
                out.append(s.w)
        return out

    def feasible_for_every_x(self, yk: np.ndarray) -> tuple[bool, str]:
        """Is y_k follower-feasible at every x of the leader box? min_x g_j(x, y_k) >= 0 by SCIP for each
        x-dependent row; an x-dependent equality is not checked (refused)."""
        import casadi as ca

        from ..errors import UnsupportedExpressionError
        from ..reformulate.program import SingleLevelProgram
        lp = self.lp
        if self.h_dep:
            return False, "a follower equality depends on x"
        yd = ca.DM(np.asarray(yk, float))
        for j, dep in enumerate(_dep(lp.g, lp.x)):
            if not dep:
                if float(lp.evaluate("lower_ineq", lp.x_start, yk, self.p)[j]) < -1e-9:
                    return False, f"g[{lp.g_names[j]}] < 0 at y_k"
                continue
            gj = ca.substitute(lp.g[j], lp.y, yd)
            lo, hi = self.xbox
            prog = SingleLevelProgram(w=lp.x, p=lp.p, p_value=self.p, objective=gj, eq=ca.SX(0, 1),
                                      ineq=ca.SX(0, 1), lb=lo.copy(), ub=hi.copy(), names=tuple(self.xn),
                                      integer=self.ints, derived_lb=lo.copy(), derived_ub=hi.copy())
            try:
                s = self._solve(prog, min(5.0, self.left()))
            except UnsupportedExpressionError as exc:
                return False, str(exc)
            if not (s.status == "optimal" and s.dual >= -1e-9):
                return False, f"min over the leader box of g[{lp.g_names[j]}](x, y_k) = {s.dual:.3g} < 0"
        return True, "y_k is feasible at every x of the leader box"

    def run(self, start: dict, time_limit: float) -> BoundingResult:
        """The scheme from the KKT stage's start ({"cuts", "lower", "incumbent"}: see the route)."""
        inc = start.get("incumbent")
        return bounding_scheme(self.lower_bound, self.follower, self.cut_valid, self.upper_bound,
                               extra_cuts=self.extra_cuts, cuts=start.get("cuts", []),
                               lower=start.get("lower", -math.inf), upper=inc[0] if inc else math.inf,
                               incumbent=inc[1] if inc else None, gap_tol=self.gap_tol, time_limit=time_limit)

"""What the explorer shows, computed without any widget: ``explore_data(p, x)``.

At a leader point x (and parameters) it returns plain data: the follower's reply
y*(x), multipliers, active set, certificate status, the value function
phi(x) = f(x, y*(x)), the reduced objective F(x, y*(x)), dy/dx, and the same
curves along one leader coordinate. A per-problem :class:`ExploreSession`
keeps the compiled follower solver, the last reply (warm start) and the curves
(recomputed only when another coordinate or a parameter moves), so a slider
move costs one follower solve plus a sensitivity solve.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Mapping

import numpy as np
import sympy as sp

from ..certify import certify, follower_is_convex
from ..errors import NotDifferentiable, SolverFailure, ValueInputError
from ..lower import LoweredProblem, follower_view, lower
from ..solve import FollowerSolver, box_from_constraints

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

ACTIVE_TOL = 1e-7
MAX_CURVES = 32


@dataclass
class ExploreState:
    """Everything the explorer displays for one slider position (plain numbers)."""

    x: np.ndarray
    p: np.ndarray
    coord: int
    ok: bool
    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    g: np.ndarray
    active: list[Hashable]
    phi: float
    F: float
    dy_dx: np.ndarray
    sensitivity_status: str
    certificate_passed: bool
    certificate_reasons: list[str]
    grid: np.ndarray
    curve_y: np.ndarray
    curve_lam: np.ndarray
    curve_mu: np.ndarray
    curve_phi: np.ndarray
    curve_F: np.ndarray
    message: str = ""
    timings: dict = field(default_factory=dict)

    def table(self, problem: Problem) -> list[tuple[str, str]]:
        """(label, value) rows: follower reply, multipliers with active flags, values, dy/dx."""
        rows = [(f"{s}*", f"{v:.6g}") for s, v in zip(problem.follower, self.y)]
        for c, g, lam in zip(problem.g, self.g, self.lam):
            flag = "active" if c.name in self.active else "inactive"
            rows.append((f"λ[{c.name}]", f"{lam:.6g} ({flag}, g = {g:.3g})"))
        rows += [(f"μ[{c.name}]", f"{v:.6g}") for c, v in zip(problem.h, self.mu)]
        rows += [("φ(x) = f(x, y*)", f"{self.phi:.6g}"), ("F(x, y*(x))", f"{self.F:.6g}")]
        for i, s in enumerate(problem.follower):
            for j, xs in enumerate(problem.leader):
                v = self.dy_dx[i, j]
                rows.append((f"d{s}/d{xs}", "undefined (kink)" if np.isnan(v) else f"{v:.6g}"))
        rows.append(("active set", "{" + ", ".join(map(str, self.active)) + "}" if self.active else "∅"))
        rows.append(("sensitivity", self.sensitivity_status))
        rows.append(("certificate", "passed" if self.certificate_passed else
                     "failed: " + "; ".join(self.certificate_reasons)))
        return rows


def leader_ranges(problem: Problem, ranges: Mapping[sp.Symbol, tuple[float, float]] | None = None
                  ) -> dict[sp.Symbol, tuple[float, float]]:
    """Slider ranges for leader variables (from their bounds) and parameters (around their value).

    Unbounded sides extend 5 units (plus the start's magnitude) beyond the other side or
    the start; user-given ``ranges`` win.
    """
    lp = lower(problem)
    lo, hi = box_from_constraints(lp, "x")
    out: dict[sp.Symbol, tuple[float, float]] = {}
    for i, s in enumerate(problem.leader):
        x0 = float(lp.x_start[i])
        a = lo[i] if np.isfinite(lo[i]) else (min(hi[i], x0) if np.isfinite(hi[i]) else x0) - 5 - abs(x0)
        b = hi[i] if np.isfinite(hi[i]) else max(a, x0) + 5 + abs(x0)
        out[s] = (float(a), float(b))
    for s, v in problem.parameter_values.items():
        w = max(1.0, abs(v))
        out[s] = (v - w, v + w)
    for s, (a, b) in dict(ranges or {}).items():
        if s not in out:
            raise ValueInputError(f"range given for {s}, which is neither a leader variable nor a parameter")
        if not (np.isfinite(a) and np.isfinite(b) and a < b):
            raise ValueInputError(f"range for {s} must be finite with low < high, got ({a}, {b})")
        out[s] = (float(a), float(b))
    return out


class ExploreSession:
    """Cached solver, warm start and curves for one problem (see module docstring)."""

    def __init__(self, lp: LoweredProblem):
        self.lp = lp
        self.solver = FollowerSolver(self.lp, tight=True)
        self.y_last = self.lp.y_start.copy()
        self.curves: dict[tuple, tuple] = {}
        self.convex: dict[tuple, bool] = {}

    def reply(self, x: np.ndarray, p: np.ndarray, y0: np.ndarray):
        return self.solver.solve(x, p, y0)

    def curve(self, x: np.ndarray, p: np.ndarray, coord: int, bounds: tuple[float, float], n: int) -> tuple:
        others = tuple(np.round(np.delete(x, coord), 12))
        key = (coord, others, tuple(np.round(p, 12)), bounds, n)
        if key not in self.curves:
            lp = self.lp
            grid = np.linspace(bounds[0], bounds[1], n)
            ys, lams, mus, phis, Fs = [], [], [], [], []
            y0 = self.y_last.copy()
            for t in grid:
                xt = x.copy()
                xt[coord] = t
                s = self.reply(xt, p, y0)
                if s.success:
                    y0 = s.y
                    ys.append(s.y), lams.append(s.lam), mus.append(s.mu), phis.append(s.value)
                    Fs.append(float(lp.evaluate("upper_objective", xt, s.y, p, s.lam, s.mu)[0]))
                else:
                    ys.append(np.full(lp.n_y, np.nan)), lams.append(np.full(self.solver.ng, np.nan))
                    mus.append(np.full(self.solver.nh, np.nan)), phis.append(np.nan), Fs.append(np.nan)
            if len(self.curves) >= MAX_CURVES:  # keep the most recent sets of curves only
                self.curves.pop(next(iter(self.curves)))
            self.curves[key] = (grid, np.array(ys), np.array(lams).reshape(n, -1), np.array(mus).reshape(n, -1),
                                np.array(phis), np.array(Fs))
        return self.curves[key]


def session_for(problem: Problem) -> ExploreSession:
    """The problem's one explore session, in its lowered problem's cache (dropped with it)."""
    lp = lower(problem)
    return lp.cached("explore_session", lambda: ExploreSession(lp))


def _reply(problem: Problem, sess: ExploreSession, x: np.ndarray, p: np.ndarray):
    """(y, lam, mu, active names, dy/dx, status) or None when the follower has no solution
    (polished reply and KKT sensitivities from workbench.sensitivity)."""
    from ..sensitivity import follower_response, sensitivity
    try:
        fr = follower_response(problem, x, parameters=p, start=sess.y_last)
    except SolverFailure:
        return None
    s = sensitivity(problem, x, parameters=p, response=fr)
    try:
        dydx = np.asarray(s.dy_dx, float).reshape(sess.lp.n_y, sess.lp.n_x)
    except NotDifferentiable:  # a kink: shown as undefined, never as an averaged number
        dydx = np.full((sess.lp.n_y, sess.lp.n_x), np.nan)
    return fr.y, fr.lam, fr.mu, list(fr.active_set), dydx, str(s.status)


def explore_data(problem: Problem, x: Any, parameters: Mapping | None = None, coord: int = 0,
                 ranges: Mapping | None = None, n_grid: int = 41, certify_starts: int = 2) -> ExploreState:
    """The explorer's content at leader point ``x`` (dict keyed by leader symbols, or a vector).

    ``coord`` picks the leader coordinate along which curves are drawn, over its slider range.
    """
    import time
    t0 = time.perf_counter()
    sess = session_for(problem)
    lp = sess.lp
    xv = problem.point_vector(x, "leader") if isinstance(x, Mapping) else np.asarray(x, float).reshape(-1)
    if xv.size != lp.n_x or not np.all(np.isfinite(xv)):
        raise ValueInputError(f"leader point must be {lp.n_x} finite numbers, got {x!r}")
    if not 0 <= coord < lp.n_x:
        raise ValueInputError(f"coord must index a leader variable (0..{lp.n_x - 1}), got {coord}")
    pv = problem.parameter_vector(parameters)
    bounds = leader_ranges(problem, ranges)[problem.leader[coord]]
    grid, cy, clam, cmu, cphi, cF = sess.curve(xv, pv, coord, bounds, n_grid)
    t1 = time.perf_counter()
    reply = _reply(problem, sess, xv, pv)
    timings = {"curve": t1 - t0}
    if reply is None:
        nan, ng, nh = np.full(lp.n_y, np.nan), sess.solver.ng, sess.solver.nh
        return ExploreState(xv, pv, coord, False, nan, np.full(ng, np.nan), np.full(nh, np.nan), np.full(ng, np.nan),
                            [], np.nan, np.nan, np.full((lp.n_y, lp.n_x), np.nan), "no follower solution", False,
                            ["the follower has no solution at this leader point"], grid, cy, clam, cmu, cphi, cF,
                            message="follower solve failed", timings=timings)
    y, lam, mu, active, dydx, sens_status = reply
    sess.y_last = y
    g = lp.evaluate("lower_ineq", xv, y, pv)
    phi = float(lp.evaluate("lower_objective", xv, y, pv)[0])
    F = float(lp.evaluate("upper_objective", xv, y, pv, lam, mu)[0])  # lam, mu: a leader paid in multipliers
    t3 = time.perf_counter()
    key = (tuple(xv), tuple(pv))
    if key not in sess.convex:
        sess.convex = {key: follower_is_convex(lp, xv, pv)}
    cert = certify(follower_view(lp), xv, y, pv, lam, sess.solver, n_random=certify_starts, follower_convex=sess.convex[key])
    timings.update(reply_and_sensitivity=t3 - t1, certificate=time.perf_counter() - t3,
                   total=time.perf_counter() - t0)
    return ExploreState(xv, pv, coord, True, y, lam, mu, g, active, phi, F, dydx + 0.0,
                        sens_status, cert.passed, cert.reasons, grid, cy, clam, cmu, cphi, cF, timings=timings)

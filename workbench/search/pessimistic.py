"""The pessimistic search  min_x phi_p(x),  phi_p(x) = max_{y in Y*(x)} F(x, y).

Method (a scan of the leader's box with exact inner evaluation where possible):

1. Inner problem at a leader point x (:class:`InnerEvaluator`). The follower's optimal set
   Y*(x) is probed (:class:`~workbench.analysis.uniqueness.FollowerSetProbe`: multistart,
   reduced curvature, LP face). When it consists of finitely many isolated minimisers they
   are enumerated and phi_p(x) = max_i F(x, y_i), phi_o(x) = min_i F(x, y_i). Otherwise
   Y*(x) is described through the value function phi(x):
   Y*_delta(x) = {y : g >= 0, h = 0, f(x, y) <= phi(x) + delta}, and F is maximised
   (minimised) over it by multistart Ipopt (``reformulate/pessimistic_inner.py``), started
   at every minimiser found.
2. Outer problem (:func:`scan`). The leader's box is sampled (a grid in 1-D, a Sobol set
   otherwise) and the best sample refined (bounded Brent in 1-D, Nelder-Mead otherwise) --
   for phi_p and, on the same inner solves, for phi_o (the optimistic value, so the
   optimistic-pessimistic gap is reported). Leader constraints that involve y must hold for
   every enumerated follower optimum (pessimistic) or for the chosen one (optimistic); a
   point failing them counts as +inf.
3. Attainment (:func:`attainment`). phi_p is in general not lower semicontinuous. The best
   point is probed at distances 1e-6..1e-9 and at nearby round numbers; a jump up right next
   to it means the infimum is approached at a discontinuity and not attained. The limit
   point is then located by bisection and an epsilon-optimal x returned
   (:func:`epsilon_point`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import qmc

from ..analysis.uniqueness import FollowerSetProbe, FollowerSetReport
from ..errors import MethodError
from ..lower import LoweredProblem, lower
from ..model.protocol import Problem
from ..reformulate.pessimistic_inner import PessimisticInner
from ..solve import IpoptSolver, box_from_constraints, follower_starts
from ..solve.ipopt import TIGHT_OPTIONS
from ..values import Point


@dataclass(frozen=True)
class InnerValue:
    """phi_p and phi_o at one leader point, with the follower replies attaining them
    (``pessimistic_point`` / ``optimistic_point``: (x, y), None where Y*(x) is empty)."""

    x: np.ndarray
    pessimistic: float
    optimistic: float
    pessimistic_point: Point | None
    optimistic_point: Point | None
    kind: str                 # "finite", "value_function" or "infeasible"
    report: FollowerSetReport | None


def _inner_solver(lp: LoweredProblem) -> tuple[IpoptSolver, PessimisticInner, dict]:
    """The inner NLP of reformulate/pessimistic_inner.py, compiled once per problem (tight Ipopt)."""
    def make():
        reduction = PessimisticInner()
        nlp, inv = reduction.apply(lp)
        return IpoptSolver(nlp, TIGHT_OPTIONS, name="pessimistic_inner"), reduction, inv
    return lp.cached("pessimistic_inner", make)


class InnerEvaluator:
    """phi_p / phi_o of one problem, memoised per leader point."""

    def __init__(self, problem: Problem, parameters: Mapping | None, n_starts: int, seed: int, delta: float):
        self.problem, self.lp = problem, lower(problem)
        self.probe = FollowerSetProbe(problem, parameters, n_starts=n_starts, seed=seed)
        self.p, self.delta, self.seed = self.probe.p, delta, seed
        self.cache: dict[tuple, InnerValue] = {}
        self.calls = 0

    def _F(self, x, y) -> float:
        return float(self.lp.evaluate("upper_objective", x, y, self.p)[0])

    def _leader_ok(self, x, y) -> bool:
        G = self.lp.evaluate("upper_ineq", x, y, self.p)
        H = self.lp.evaluate("upper_eq", x, y, self.p)
        return bool((G.size == 0 or G.min() >= -1e-8) and (H.size == 0 or np.abs(H).max() <= 1e-8))

    def _in_level_set(self, x, y, level: float, scale: float, tol: float = 1e-7) -> bool:
        """y follower-feasible (absolute tol) with f(x, y) <= level (to rounding)."""
        g = self.lp.evaluate("lower_ineq", x, y, self.p)
        h = self.lp.evaluate("lower_eq", x, y, self.p)
        feasible = (g.size == 0 or g.min() >= -tol) and (h.size == 0 or np.abs(h).max() <= tol)
        return bool(feasible and float(self.lp.evaluate("lower_objective", x, y, self.p)[0]) <= level + 1e-12 * scale)

    def _value_function_extremes(self, x, rep: FollowerSetReport) -> tuple:
        solver, reduction, inv = _inner_solver(self.lp)
        level = rep.value + self.delta * rep.value_scale
        starts = rep.minimizers + rep.flat_moves + follower_starts(self.lp, rep.minimizers[0], 4, self.seed)
        out = []
        for sign in (-1.0, 1.0):
            best = None
            for y0 in starts:
                r = solver.solve(y0, reduction.parameters(x, self.p, sign, level))
                if r.success and self._in_level_set(x, r.w, level, rep.value_scale):
                    y = reduction.invert(r.w, inv)
                    if best is None or sign * self._F(x, y) < sign * self._F(x, best):
                        best = y
            for y in rep.minimizers:  # the enumerated minimisers are members of Y*(x) too
                if best is None or sign * self._F(x, y) < sign * self._F(x, best):
                    best = y
            out.append(best)
        return out[0], out[1]   # (maximiser of F, minimiser of F)

    def __call__(self, x: Any) -> InnerValue:
        x = np.asarray(x, float).reshape(-1)
        key = tuple(np.round(x, 15))
        if key in self.cache:
            return self.cache[key]
        self.calls += 1
        rep = self.probe.probe(x)
        if not rep.minimizers:
            val = InnerValue(x, np.inf, np.inf, None, None, "infeasible", rep)
        else:
            if rep.finite:
                ys, kind = rep.minimizers, "finite"
                y_p = max(ys, key=lambda y: self._F(x, y))
                y_o = min(ys, key=lambda y: self._F(x, y))
            else:
                y_p, y_o = self._value_function_extremes(x, rep)
                kind = "value_function"
            robust = all(self._leader_ok(x, y) for y in rep.minimizers) and self._leader_ok(x, y_p)
            pess = self._F(x, y_p) if robust else np.inf
            opt = self._F(x, y_o) if self._leader_ok(x, y_o) else np.inf
            val = InnerValue(x, pess, opt, Point(x, y_p), Point(x, y_o), kind, rep)
        self.cache[key] = val
        return val


def leader_region(problem: Problem, lp: LoweredProblem, region: Any) -> tuple[np.ndarray, np.ndarray]:
    """The box scanned: ``region`` ({x: (lo, hi)} or an (n_x, 2) array), else the leader's simple bounds."""
    if region is not None:
        arr = np.asarray([region[s] for s in problem.leader] if isinstance(region, dict) else region, float)
        arr = arr.reshape(problem.n_x, 2)
        return arr[:, 0], arr[:, 1]
    lo, hi = box_from_constraints(lp, "x")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        bad = problem.leader[int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])]
        raise MethodError(f"the pessimistic scan needs a bounded leader box; {bad} has no finite bounds. "
                          "Add bounds to upper_constraints or pass region={x: (lo, hi)}.")
    return lo, hi


def scan(inner: InnerEvaluator, lo: np.ndarray, hi: np.ndarray, n_grid: int, which: str) -> np.ndarray:
    """Best leader point for phi_p (which="pessimistic") or phi_o: sample, then refine."""
    def val(x: np.ndarray) -> float:  # infeasible points get a huge finite value (Brent needs finite numbers)
        v = getattr(inner(np.clip(x, lo, hi)), which)
        return v if np.isfinite(v) else 1e30
    if lo.size == 1:
        grid = [np.array([v]) for v in np.linspace(lo[0], hi[0], n_grid)]
    else:
        grid = [lo + (hi - lo) * u for u in qmc.Sobol(lo.size, seed=inner.seed).random(2 ** int(np.ceil(np.log2(n_grid))))]
        grid.append((lo + hi) / 2)
    vals = [val(x) for x in grid]
    k = int(np.argmin(vals))
    best = grid[k]
    if lo.size == 1:
        h = (hi[0] - lo[0]) / (n_grid - 1)
        a, b = max(lo[0], best[0] - h), min(hi[0], best[0] + h)
        r = minimize_scalar(lambda t: val(np.array([t])), bounds=(a, b), method="bounded",
                            options={"xatol": 1e-10})
        cand = np.array([r.x])
    else:
        r = minimize(val, best, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                     options={"xatol": 1e-9, "fatol": 1e-12, "maxfev": 400})
        cand = np.clip(r.x, lo, hi)
    return cand if val(cand) < val(best) else best


def _nice_neighbours(x: np.ndarray, radius: float) -> list[np.ndarray]:
    out = []
    for d in range(0, 9):
        r = np.round(x, d)
        if np.all(np.abs(r - x) <= radius) and not any(np.array_equal(r, o) for o in out):
            out.append(r)
    return out


def attainment(inner: InnerEvaluator, x: np.ndarray, lo, hi, jump_tol: float) -> dict:
    """Probe around the best point; detect a jump (infimum approached but not attained)."""
    val = lambda z: inner(np.clip(z, lo, hi)).pessimistic
    for _ in range(2):  # move to a better nearby round/probe point if there is one
        pts = _nice_neighbours(x, 1e-5)
        pts += [x + s * t * np.eye(x.size)[i] for i in range(x.size) for s in (1, -1) for t in (1e-6, 1e-8)]
        better = [z for z in pts if val(z) < val(x) - 1e-12 * (1 + abs(val(x)))]
        if not better:
            break
        x = min(better, key=val)
    v = val(x)
    tol = jump_tol * (1 + abs(v))
    for i in range(x.size):
        for s in (1, -1):
            for t in (1e-9, 1e-8, 1e-7, 1e-6):
                z = np.clip(x + s * t * np.eye(x.size)[i], lo, hi)
                if np.array_equal(z, x) or not np.isfinite(val(z)) or val(z) <= v + tol:
                    continue  # infeasible neighbours (leader constraints) are not a jump of phi_p
                a, b = x.copy(), z  # bisection: a stays on the low side, b on the high side
                for _ in range(60):
                    m = (a + b) / 2
                    if np.array_equal(m, a) or np.array_equal(m, b):
                        break
                    if val(m) <= v + tol:
                        a = m
                    else:
                        b = m
                # The jump point: a round number next to it if there is one, else the last low point a
                # (at an irrational jump point floating point cannot tell attained from not attained).
                limit = next(iter(_nice_neighbours((a + b) / 2, 1e-6)), a)
                if val(limit) <= v + tol:
                    return {"attained": True, "x": limit if val(limit) < v else x}
                return {"attained": False, "x": x, "low_side": a, "limit_point": limit,
                        "value_at_limit": val(limit), "infimum": min(v, val(a)), "direction": s}
    return {"attained": True, "x": x}


def epsilon_point(inner: InnerEvaluator, att: dict, lo, hi, inf: float, epsilon: float) -> np.ndarray:
    """The leader point farthest from the limit (steps 10^-k) whose phi_p is within epsilon of the infimum."""
    lim, low = att["limit_point"], att["low_side"]
    d = low - lim
    d = d / np.linalg.norm(d) if np.linalg.norm(d) > 0 else d
    for k in range(1, 13):
        z = np.clip(lim + d * 10.0 ** -k, lo, hi)
        if inner(z).pessimistic <= inf + epsilon:
            return z
    return att["x"]

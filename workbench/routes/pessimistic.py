"""The pessimistic formulation  min_x  phi_p(x),  phi_p(x) = max_{y in Y*(x)} F(x, y).

Method (a scan of the leader's box with exact inner evaluation where possible):

1. Inner problem at a leader point x. The follower's optimal set Y*(x) is probed
   (:class:`~workbench.analysis.uniqueness.FollowerSetProbe`: multistart, reduced
   curvature, LP face). When it consists of finitely many isolated minimisers they
   are enumerated and phi_p(x) = max_i F(x, y_i), phi_o(x) = min_i F(x, y_i).
   Otherwise Y*(x) is described through the value function phi(x):
   Y*_delta(x) = {y : g >= 0, h = 0, f(x, y) <= phi(x) + delta}, and F is maximised
   (minimised) over it by multistart Ipopt, started at every minimiser found.
2. Outer problem. The leader's box is sampled (a grid in 1-D, a Sobol set
   otherwise) and the best sample refined (bounded Brent in 1-D, Nelder-Mead
   otherwise) -- for phi_p and, on the same inner solves, for phi_o (the optimistic
   value, so the optimistic-pessimistic gap is reported). Leader constraints that
   involve y must hold for every enumerated follower optimum (pessimistic) or for
   the chosen one (optimistic); a point failing them counts as +inf.
3. Attainment. phi_p is in general not lower semicontinuous. The best point is
   probed at distances 1e-6..1e-9 and at nearby round numbers; a jump up right
   next to it means the infimum is approached at a discontinuity and not attained.
   The limit point is then located by bisection and an epsilon-optimal x returned
   with ``info["attained"] = False`` and ``info["epsilon"]``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import casadi as ca
import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import qmc

from ..analysis.uniqueness import FollowerSetProbe, FollowerSetReport
from ..certify import certify, follower_starts
from ..errors import MethodError
from ..lower import lower
from ..result import BilevelResult
from ..solve import IpoptSolver, box_from_constraints
from ..solve.ipopt import TIGHT_OPTIONS


@dataclass
class InnerValue:
    """phi_p and phi_o at one leader point, with the follower replies attaining them."""

    x: np.ndarray
    pessimistic: float
    optimistic: float
    y_pess: np.ndarray | None
    y_opt: np.ndarray | None
    kind: str                 # "finite", "value_function" or "infeasible"
    report: FollowerSetReport | None


class InnerEvaluator:
    """phi_p / phi_o of one problem, memoised per leader point."""

    def __init__(self, problem: Any, parameters: Mapping | None, n_starts: int, seed: int, delta: float):
        self.problem, self.lp = problem, lower(problem)
        self.probe = FollowerSetProbe(problem, parameters, n_starts=n_starts, seed=seed)
        self.p, self.delta, self.seed = self.probe.p, delta, seed
        lp = self.lp
        sign, level = ca.SX.sym("sign"), ca.SX.sym("level")
        nlp = {"x": lp.y, "p": ca.vertcat(lp.x, lp.p, sign, level), "f": sign * lp.F,
               "g": ca.vertcat(lp.g, lp.h, level - lp.f)}
        self.vf_solver = IpoptSolver(nlp, TIGHT_OPTIONS, name="pessimistic_inner")
        ng, nh = int(lp.g.numel()), int(lp.h.numel())
        self.lbg = np.zeros(ng + nh + 1)
        self.ubg = np.concatenate([np.full(ng, np.inf), np.zeros(nh), [np.inf]])
        self.cache: dict[tuple, InnerValue] = {}
        self.calls = 0

    def _F(self, x, y) -> float:
        return float(self.lp.evaluate("upper_objective", x, y, self.p)[0])

    def _leader_ok(self, x, y) -> bool:
        G = self.lp.evaluate("upper_ineq", x, y, self.p)
        H = self.lp.evaluate("upper_eq", x, y, self.p)
        return bool((G.size == 0 or G.min() >= -1e-8) and (H.size == 0 or np.abs(H).max() <= 1e-8))

    def _value_function_extremes(self, x, rep: FollowerSetReport) -> tuple:
        level = rep.value + self.delta * rep.value_scale
        starts = rep.minimizers + rep.flat_moves + follower_starts(self.lp, rep.minimizers[0], 4, self.seed)
        out = []
        for sign in (-1.0, 1.0):
            best = None
            for y0 in starts:
                r = self.vf_solver.solve(y0, np.concatenate([x, self.p, [sign, level]]), lbg=self.lbg, ubg=self.ubg)
                if r.success and self.probe._feasible(x, r.w) and self.probe._f(x, r.w) <= level + 1e-12 * rep.value_scale:
                    if best is None or sign * self._F(x, r.w) < sign * self._F(x, best):
                        best = r.w
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
            val = InnerValue(x, pess, opt, y_p, y_o, kind, rep)
        self.cache[key] = val
        return val


def _box(problem: Any, lp: Any, region: Any) -> tuple[np.ndarray, np.ndarray]:
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


def _scan(inner: InnerEvaluator, lo: np.ndarray, hi: np.ndarray, n_grid: int, which: str) -> np.ndarray:
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


def _attainment(inner: InnerEvaluator, x: np.ndarray, lo, hi, jump_tol: float) -> dict:
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


def _epsilon_point(inner: InnerEvaluator, att: dict, lo, hi, inf: float, epsilon: float) -> np.ndarray:
    """The leader point farthest from the limit (steps 10^-k) whose phi_p is within epsilon of the infimum."""
    lim, low = att["limit_point"], att["low_side"]
    d = low - lim
    d = d / np.linalg.norm(d) if np.linalg.norm(d) > 0 else d
    for k in range(1, 13):
        z = np.clip(lim + d * 10.0 ** -k, lo, hi)
        if inner(z).pessimistic <= inf + epsilon:
            return z
    return att["x"]


def solve_pessimistic(problem: Any, method: str = "kkt", parameters: Mapping | None = None,
                      region: Any = None, n_grid: int = 41, n_starts: int = 8, seed: int = 0,
                      delta: float = 1e-9, epsilon: float = 1e-6, jump_tol: float = 1e-4,
                      certify_starts: int = 8) -> BilevelResult:
    """min_x max_{y in Y*(x)} F(x, y) by the scan described in the module docstring.

    ``method`` is accepted for symmetry with ``solve`` and recorded in ``info``; the
    pessimistic formulation has one solver. ``info`` reports ``pessimistic_value``,
    ``optimistic_value`` (same scan), ``pessimistic_gap``, ``attained`` and, when not
    attained, ``limit_point``, ``infimum`` and the ``epsilon`` of the returned x.
    """
    t0 = time.monotonic()
    lp = lower(problem)
    lo, hi = _box(problem, lp, region)
    inner = InnerEvaluator(problem, parameters, n_starts, seed, delta)
    x_p = _scan(inner, lo, hi, n_grid, "pessimistic")
    x_o = _scan(inner, lo, hi, n_grid, "optimistic")
    att = _attainment(inner, x_p, lo, hi, jump_tol)
    x_p = att["x"]
    at_p, at_o = inner(x_p), inner(x_o)
    base = dict(problem=problem, method="pessimistic", parameters=inner.p)
    info: dict = {"requested_method": method, "scheme": "scan + exact enumeration / value-function inner max",
                  "optimistic_value": at_o.optimistic, "optimistic_x": x_o, "optimistic_y": at_o.y_opt,
                  "inner_evaluations": inner.calls, "delta": delta}
    if not np.isfinite(at_p.pessimistic):
        return BilevelResult(status="infeasible", time_s=time.monotonic() - t0, info=info,
                             message="no sampled leader point has a feasible follower and leader", **base)
    info.update(pessimistic_value=at_p.pessimistic, attained=att["attained"], follower_set=at_p.report,
                singleton=at_p.report.singleton, inner_kind=at_p.kind)
    msg = ""
    if not att["attained"]:
        inf = att["infimum"]
        side = "below" if np.all(att["low_side"] <= att["limit_point"]) else "above"
        lim = att["limit_point"]
        show = lambda z: float(z[0]) if z.size == 1 else np.round(z, 9).tolist()
        x_p = _epsilon_point(inner, att, lo, hi, inf, epsilon)
        at_p = inner(x_p)
        msg = (f"the pessimistic infimum {inf:.6g} is not attained: phi_p(x) -> {inf:.6g} as x -> {show(lim)} "
               f"from {side}, but phi_p({show(lim)}) = {att['value_at_limit']:.6g} (there the follower has "
               f"several optimal replies and picks the worst one for the leader). Returning the "
               f"epsilon-optimal x = {show(x_p)} (phi_p = {at_p.pessimistic:.9g}, "
               f"epsilon = {max(at_p.pessimistic - inf, 0.0):.3g}).")
        info.update(infimum=inf, limit_point=lim, value_at_limit=att["value_at_limit"],
                    epsilon=max(at_p.pessimistic - inf, 0.0), pessimistic_value=inf,
                    follower_set=at_p.report, singleton=at_p.report.singleton, inner_kind=at_p.kind)
    info["pessimistic_gap"] = info["pessimistic_value"] - at_o.optimistic
    lam = None
    if at_p.report.minimizers:
        k = int(np.argmin([np.linalg.norm(m - at_p.y_pess) for m in at_p.report.minimizers]))
        lam = at_p.report.multipliers[k]
    cert = certify(lp, x_p, at_p.y_pess, inner.p, lam, n_random=certify_starts, seed=seed)
    if att["attained"]:
        status = "optimal" if cert.passed else "not_certified"
        msg = "; ".join(cert.reasons)
    else:
        status = "not_attained"
    if at_p.report.singleton is False:
        msg = (msg + " " if msg else "") + "Y*(x) is not a singleton at the solution: " + "; ".join(at_p.report.reasons)
    return BilevelResult(status=status, x=x_p, y=at_p.y_pess, lam=lam, certificate=cert,
                         time_s=time.monotonic() - t0, message=msg, info=info, **base)

"""Independent check of a bilevel point, for benchmarks: SciPy, not CasADi/Ipopt.

Feasibility is evaluated with NumPy functions made by ``sympy.lambdify`` from
the SymPy model; follower optimality by SciPy's SLSQP from many starts (and a
dense grid when the follower has one variable and a finite box). It shares no
numeric code with the solver or the certificate, so agreement means something.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy.optimize import minimize


@dataclass
class Verdict:
    feasible: bool
    follower_optimal: bool
    upper_infeasibility: float
    lower_infeasibility: float
    gap: float
    better_y: list | None


def _funcs(problem):
    x, y = list(problem.leader), list(problem.follower)
    args = (x, y)
    lam = lambda e: sp.lambdify(args, e, "numpy")  # noqa: E731
    g = [c.expr for c in problem.g] + [c.expr for c in problem.h]
    neq = len(problem.g)
    grad_f = [sp.diff(problem.f, v) for v in y]
    jac_g = [[sp.diff(e, v) for v in y] for e in g]
    return {
        "F": lam(problem.F), "f": lam(problem.f), "gf": lam(grad_f),
        "G": [lam(c.expr) for c in problem.G], "H": [lam(c.expr) for c in problem.H],
        "g": [lam(e) for e in g[:neq]], "h": [lam(e) for e in g[neq:]],
        "jg": [lam(r) for r in jac_g[:neq]], "jh": [lam(r) for r in jac_g[neq:]],
    }


def _viol(ineq, eq, x, y):
    v = [0.0]
    v += [max(-float(f(x, y)), 0.0) for f in ineq]
    v += [abs(float(f(x, y))) for f in eq]
    return max(v)


def _box(problem, y_star):
    lo, hi = np.full(len(y_star), -np.inf), np.full(len(y_star), np.inf)
    for c in problem.g:
        e = c.expr
        syms = e.free_symbols
        if len(syms) == 1 and next(iter(syms)) in problem.follower and sp.degree(e, next(iter(syms))) == 1:
            v = next(iter(syms))
            i = problem.follower.index(v)
            a = float(e.coeff(v))
            b = float(e.subs(v, 0))
            if a > 0:
                lo[i] = max(lo[i], -b / a)
            elif a < 0:
                hi[i] = min(hi[i], -b / a)
    span = 10 * (1 + np.abs(y_star))
    a = np.where(np.isfinite(lo), lo, y_star - span)
    b = np.where(np.isfinite(hi), hi, y_star + span)
    return a, b, bool(np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))


def verify_point(problem, x, y, gap_tol=1e-5, feas_tol=1e-6, n_random=30, seed=0) -> Verdict:
    """Feasibility of both levels and follower optimality of y at x, by SciPy."""
    fn = _funcs(problem)
    x, y = np.asarray(x, float), np.asarray(y, float)
    up = _viol(fn["G"], fn["H"], x, y)
    low = _viol(fn["g"], fn["h"], x, y)
    f_star = float(fn["f"](x, y))
    rng = np.random.default_rng(seed)
    a, b, bounded = _box(problem, y)
    starts = [y, np.asarray([problem.start.get(v, 0.0) for v in problem.follower]), np.zeros_like(y)]
    starts += [a + (b - a) * rng.random(y.size) for _ in range(n_random)]
    cons = [{"type": "ineq", "fun": (lambda yy, f=f: float(f(x, yy))), "jac": (lambda yy, j=j: np.asarray(j(x, yy), float))}
            for f, j in zip(fn["g"], fn["jg"])]
    cons += [{"type": "eq", "fun": (lambda yy, f=f: float(f(x, yy))), "jac": (lambda yy, j=j: np.asarray(j(x, yy), float))}
             for f, j in zip(fn["h"], fn["jh"])]
    best_val, best_y = np.inf, None
    obj = lambda yy: float(fn["f"](x, yy))  # noqa: E731
    jac = lambda yy: np.asarray(fn["gf"](x, yy), float).reshape(-1)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in starts:
            try:
                res = minimize(obj, s, jac=jac, constraints=cons, method="SLSQP",
                               options={"maxiter": 500, "ftol": 1e-12})
            except (ValueError, ArithmeticError):
                continue
            if not np.all(np.isfinite(res.x)):
                continue
            if _viol(fn["g"], fn["h"], x, res.x) <= feas_tol and res.fun < best_val:
                best_val, best_y = float(res.fun), res.x
        if y.size == 1 and bounded and not problem.h:
            grid = np.linspace(a[0], b[0], 4001)
            for t in grid:
                yy = np.array([t])
                if _viol(fn["g"], [], x, yy) <= 0 and obj(yy) < best_val:
                    best_val, best_y = obj(yy), yy
    gap = f_star - best_val if np.isfinite(best_val) else 0.0
    optimal = gap <= gap_tol * (1 + abs(f_star))
    return Verdict(feasible=up <= feas_tol * (1 + abs(float(fn["F"](x, y)))) and low <= feas_tol * (1 + abs(f_star)),
                   follower_optimal=bool(optimal), upper_infeasibility=up, lower_infeasibility=low,
                   gap=float(max(gap, 0.0)), better_y=None if optimal else np.asarray(best_y).tolist())

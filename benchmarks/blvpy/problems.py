"""The problems of the BLVPY comparison (issue 13), each written once for the workbench and once for BLVPY.

Every problem is a :class:`Case`: ``wb()`` builds the ``workbench.BilevelProblem`` (SymPy), ``blv()``
builds the ``blvpy.BilevelProblem`` (CVXPY) of the same mathematics, or is ``None`` where BLVPY cannot
express it (a non-convex follower). ``exact()`` returns the exact optimal upper value, derived
independently of both tools: by hand (the derivation is in the comment next to the case), or by a
one-dimensional reduction F(x, y*(x)) with the follower's reply y*(x) in closed form (then minimised
on a dense grid refined by Brent's method: these are scalar-leader problems, so this is a global
search), or by an enumeration over the follower's active sets / attacked targets (each piece a convex
problem). ``exact_kind`` says which ("hand", "reduction", "enumeration", "milp", "local"); "milp" is the
workbench's exact MILP route (HiGHS, big-M, a different route from the timed KKT default); "local"
marks a reference that is only a verified local optimum and is not counted as exact.

This module imports neither SymPy nor CVXPY at top level: it is imported by both virtual environments
(the workbench's and BLVPY's), and each side imports its own modelling library inside its builders.
Sources: BLVPY 0.5 tests (``tests/test_ipopt_integration.py``) and examples (``examples/gallery/*.py``)
from github.com/dxogrp/blvpy; the workbench's seed examples (``tests/test_core_seed.py``); BOLIB v2
(``workbench/data/bolib.json``, read as JSON here so that the BLVPY side needs no workbench import).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

BOLIB_JSON = Path(__file__).resolve().parents[2] / "workbench" / "data" / "bolib.json"


@dataclass(frozen=True)
class Case:
    name: str
    group: str                      # "blvpy-test", "blvpy-example", "seed", "box-qp", "bolib-linear", ...
    source: str
    wb: Callable[[], Any]
    blv: Callable[[], Any] | None
    exact: Callable[[], float]
    exact_kind: str                 # hand / reduction / enumeration / milp / local
    note: str = ""


# ----------------------------------------------------------------------------- exact-value helpers

def min_1d(phi: Callable[[float], float], lo: float, hi: float, n: int = 20001, log: bool = False) -> float:
    """Global minimum of a piecewise-smooth scalar function on [lo, hi]: dense grid, then Brent's
    method on the bracket of each of the five best grid points (so a kink or a boundary minimum is
    found as well as an interior one)."""
    from scipy.optimize import minimize_scalar
    grid = np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)
    vals = np.array([phi(float(t)) for t in grid])
    best = float(vals.min())
    for i in np.argsort(vals)[:5]:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, n - 1)]
        if b > a:
            r = minimize_scalar(phi, bounds=(float(a), float(b)), method="bounded",
                                options={"xatol": 1e-13 * max(1.0, abs(b))})
            best = min(best, float(r.fun))
    return best


def strictly_convex_qp_simplex(Q: np.ndarray, c: np.ndarray, total: float) -> np.ndarray:
    """argmin 1/2 z'Qz + c'z s.t. z >= 0, 1'z = total (Q positive definite), by enumerating the
    support S: on S the KKT system [Q_SS 1; 1' 0][z_S; -mu] = [-c_S; total] is linear; the support
    whose solution has z_S >= 0 and reduced costs (Qz + c - mu)_j >= 0 off S is the unique optimum."""
    n = len(c)
    for mask in range(1, 2 ** n):
        S = [j for j in range(n) if mask >> j & 1]
        k = len(S)
        K = np.zeros((k + 1, k + 1))
        K[:k, :k] = Q[np.ix_(S, S)]
        K[:k, k] = -1.0
        K[k, :k] = 1.0
        sol = np.linalg.solve(K, np.concatenate([-c[S], [total]]))
        z = np.zeros(n)
        z[S] = sol[:k]
        mu = sol[k]
        red = Q @ z + c - mu
        if z.min() >= -1e-12 and all(red[j] >= -1e-12 for j in range(n) if j not in S):
            return z
    raise RuntimeError("no support satisfies the KKT conditions")


def _convex_min(fun, x0, bounds, cons) -> tuple[float, np.ndarray]:
    """A convex smooth problem solved by SLSQP (local = global for convex problems). SLSQP may stop with
    "positive directional derivative" at the limit of its precision; the point is accepted when it
    satisfies every constraint and bound within 1e-8, else this raises."""
    from scipy.optimize import minimize
    r = minimize(fun, x0, method="SLSQP", bounds=bounds, constraints=cons,
                 options={"ftol": 1e-14, "maxiter": 5000})
    x = r.x
    viol = max([0.0] + [float(-np.min(np.atleast_1d(c["fun"](x)))) for c in cons]
               + [max(lo - xi, xi - hi) for xi, (lo, hi) in zip(x, bounds)])
    if not (r.success or "directional derivative" in str(r.message)) or viol > 1e-8:
        raise RuntimeError(f"reference solve failed: {r.message} (violation {viol:.2e})")
    return float(r.fun), x


# ============================================================================== BLVPY tests
# tests/test_ipopt_integration.py of BLVPY (the upper keyword is upper_constraints in 0.5).

def wb_analytic_quadratic():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y + 1) ** 2,
                             upper_constraints=[x >= -2, x <= 2], lower_objective=(y - x) ** 2 + 2 * x - 1,
                             name="analytic_quadratic")


def blv_analytic_quadratic():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x", bounds=[-2.0, 2.0])
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y - x) + 2.0 * x - 1.0), parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 1.0) + cp.square(y + 1.0)), lower)


# y*(x) = x, so F = (x-1)^2 + (x+1)^2 = 2x^2 + 2: minimum 2 at x = 0 (BLVPY's own test derives its
# eps-relaxed answer 2 - 2 sqrt(eps) + eps/2 below this).


def wb_optimistic_lp():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + (y - 1) ** 2,
                             upper_constraints=[x >= 0, x <= 1], lower_objective=0 * y,
                             lower_constraints=[y >= x, y <= 1], name="optimistic_lp")


def blv_optimistic_lp():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x", bounds=[0.0, 1.0])
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(0.0 * y), [y >= x, y <= 1.0], parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x) + cp.square(y - 1.0)), lower)


# Every y in [x, 1] is optimal; the optimistic choice y = 1, x = 0 gives F = 0 (F >= 0 everywhere).


def wb_param_socp():
    import sympy as sp
    import workbench as wb
    x, y1, y2, t = sp.symbols("x y1 y2 t", real=True)
    # SOC written the smooth way: t >= 0, t^2 - ||y||^2 >= 0.
    return wb.BilevelProblem(
        leader=[x], follower=[y1, y2, t],
        upper_objective=(x - 2) ** 2 + (y1 - 1) ** 2 + y2 ** 2 + (t - 1) ** 2,
        upper_constraints=[x >= sp.Rational(1, 4), x <= sp.Rational(3, 2), x <= 1],
        lower_objective=t + x * y1,
        lower_constraints=[t >= 0, t ** 2 - y1 ** 2 - y2 ** 2 >= 0, sp.Eq(y1, 1), sp.Eq(x * y1 + y2, 1)],
        name="param_socp")


def blv_param_socp():
    import cvxpy as cp
    import numpy as np_
    import blvpy as bp
    x = cp.Variable(name="x", bounds=[0.25, 1.5])
    y = cp.Variable(2, name="y")
    t = cp.Variable(name="t")
    lower = bp.LowerProblem(cp.Minimize(t + x * y[0]), [cp.SOC(t, y), y[0] == 1.0, x * y[0] + y[1] == 1.0],
                            parameters=[x])
    return bp.BilevelProblem(
        cp.Minimize(cp.square(x - 2.0) + cp.sum_squares(y - np_.array([1.0, 0.0])) + cp.square(t - 1.0)),
        lower, upper_constraints=[x <= 1.0])


# y1 = 1, y2 = 1 - x, t = sqrt(1 + (1-x)^2) (t is minimised). F(x) = (x-2)^2 + (1-x)^2 + (t-1)^2 is
# decreasing on [1/4, 1] (dF/dx = 2(x-2) + 2(x-1) + 2(t-1) dt/dx <= 2(x-2) < 0 there since
# dt/dx = -(1-x)/t <= 0 and t - 1 >= 0), so x = 1: y = (1, 0), t = 1, F = 1.


def wb_vector_matrix_soc():
    import sympy as sp
    import workbench as wb
    v = sp.symbols("v1:3", real=True)
    m = sp.symbols("m11 m21 m12 m22", real=True)            # column-major, as cp.vec(order="F")
    lv = sp.symbols("lv1:3", real=True)
    lm = sp.symbols("lm11 lm21 lm12 lm22", real=True)
    ve, me = sp.symbols("ve me", real=True)
    tv = (0.25, -0.5)
    tm = (0.5, 0.75, -0.25, 1.0)                            # [[0.5, -0.25], [0.75, 1.0]] column-major
    tlv = (1.25, -0.5)
    tlm = (1.5, 0.75, -0.25, 1.0)
    F = (sum((a - b) ** 2 for a, b in zip(v, tv)) + sum((a - b) ** 2 for a, b in zip(m, tm))
         + sum((a - b) ** 2 for a, b in zip(lv, tlv)) + sum((a - b) ** 2 for a, b in zip(lm, tlm))
         + (ve - 1) ** 2 + (me - 1) ** 2)
    box = [c for s in (*v, *m) for c in (s >= -2, s <= 2)]
    return wb.BilevelProblem(
        leader=[*v, *m], follower=[*lv, *lm, ve, me], upper_objective=F, upper_constraints=box,
        lower_objective=2 * (ve + me),
        lower_constraints=[ve >= 0, ve ** 2 - sum((a - b) ** 2 for a, b in zip(lv, v)) >= 0, lv[0] >= v[0] + 1,
                           me >= 0, me ** 2 - sum((a - b) ** 2 for a, b in zip(lm, m)) >= 0, lm[0] >= m[0] + 1],
        name="vector_matrix_soc")


def blv_vector_matrix_soc():
    import cvxpy as cp
    import numpy as np_
    import blvpy as bp
    vector = cp.Variable(2, name="vector", bounds=[-2.0, 2.0])
    matrix = cp.Variable((2, 2), name="matrix", bounds=[-2.0, 2.0])
    lower_vector = cp.Variable(2, name="lower_vector")
    lower_matrix = cp.Variable((2, 2), name="lower_matrix")
    ve = cp.Variable(name="vector_epigraph")
    me = cp.Variable(name="matrix_epigraph")
    w = cp.Parameter(nonneg=True, name="fixed_weight", value=2.0)
    lower = bp.LowerProblem(
        cp.Minimize(w * (ve + me)),
        [cp.SOC(ve, lower_vector - vector), lower_vector[0] >= vector[0] + 1.0,
         cp.SOC(me, cp.vec(lower_matrix - matrix, order="F")), lower_matrix[0, 0] >= matrix[0, 0] + 1.0],
        parameters=[vector, matrix])
    tv = np_.array([0.25, -0.5])
    tm = np_.array([[0.5, -0.25], [0.75, 1.0]])
    return bp.BilevelProblem(
        cp.Minimize(cp.sum_squares(vector - tv) + cp.sum_squares(matrix - tm)
                    + cp.sum_squares(lower_vector - (tv + np_.array([1.0, 0.0])))
                    + cp.sum_squares(lower_matrix - (tm + np_.array([[1.0, 0.0], [0.0, 0.0]])))
                    + cp.square(ve - 1.0) + cp.square(me - 1.0)), lower)


# The follower minimises the two distances subject to lv1 >= v1 + 1, lm11 >= m11 + 1: its reply is
# lv = v + e1, ve = 1, lm = m + E11, me = 1 for every leader point. The targets are exactly these
# values at v = tv, m = tm (inside the box), so F = 0, the least possible value.


def wb_scalar_lp():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - sp.Rational(2, 5)) ** 2
                             + (y - sp.Rational(2, 5)) ** 2, lower_objective=y + 3 * x - 2,
                             lower_constraints=[y >= x], name="scalar_lp")


def blv_scalar_lp():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(y + 3.0 * x - 2.0), [y >= x], parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 0.4) + cp.square(y - 0.4)), lower)


# y*(x) = x, F = 2 (x - 0.4)^2: F = 0 at x = 0.4.


# ============================================================================== BLVPY examples

def wb_quickstart():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y + 1) ** 2,
                             upper_constraints=[x >= -1], lower_objective=(y - x) ** 2, name="quickstart")


def blv_quickstart():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y - x)), parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 1.0) + cp.square(y + 1.0)), lower,
                             upper_constraints=[x >= -1.0])


# README quick start / examples/analytic_quadratic.py: y = x, F = 2x^2 + 2, minimum 2 at x = 0.


def wb_double_well():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x ** 2 - 1) ** 2 + sp.Rational(1, 5) * x,
                             lower_objective=(y - x) ** 2, name="double_well")


def blv_double_well():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y - x)), parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(cp.square(x) - 1.0) + 0.2 * x + 0.0 * y), lower)


def exact_double_well() -> float:
    # examples/best_of_local_optima.py: y = x, phi(x) = (x^2-1)^2 + x/5; phi'(x) = 4x^3 - 4x + 1/5 = 0.
    # The real roots are the candidates (phi is coercive); the least phi is at x = -1.024120.
    roots = np.roots([4.0, 0.0, -4.0, 0.2])
    return float(min((r.real ** 2 - 1) ** 2 + 0.2 * r.real for r in roots if abs(r.imag) < 1e-12))


_TT_H = np.array([[1.0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]])
_TT_A = np.array([1.0, 0.01, 0.01, 1.0, 0.01])
_TT_B = np.array([0.0, 5.0, 5.0, 0.0, 0.0])
_TT_Q, _TT_RHO = 6.0, 0.1


def wb_traffic_tolling():
    import sympy as sp
    import workbench as wb
    tau = sp.Symbol("tau", real=True)
    x = sp.symbols("x1:4", real=True)
    f = [sum(sp.nsimplify(_TT_H[e, j]) * x[j] for j in range(3)) for e in range(5)]
    a = [sp.nsimplify(v) for v in _TT_A]
    b = [sp.nsimplify(v) for v in _TT_B]
    lower = sum(a[e] / 2 * f[e] ** 2 + b[e] * f[e] for e in range(5)) + tau * x[2]
    upper = sum(b[e] * f[e] + a[e] * f[e] ** 2 for e in range(5)) + sp.Rational(1, 10) * tau ** 2
    return wb.BilevelProblem(leader=[tau], follower=list(x), upper_objective=upper,
                             upper_constraints=[tau >= 0, tau <= 5], lower_objective=lower,
                             lower_constraints=[*(xi >= 0 for xi in x), sp.Eq(sum(x), 6)],
                             name="traffic_tolling")


def blv_traffic_tolling():
    import cvxpy as cp
    import blvpy as bp
    tau = cp.Variable(1, bounds=[0.0, 5.0], name="tau")
    x = cp.Variable(3, nonneg=True, name="path_flow")
    f = _TT_H @ x
    lower = bp.LowerProblem(cp.Minimize(0.5 * _TT_A @ cp.square(f) + _TT_B @ f + tau[0] * x[2]),
                            [cp.sum(x) == _TT_Q], parameters=[tau])
    return bp.BilevelProblem(cp.Minimize(_TT_B @ f + _TT_A @ cp.square(f) + _TT_RHO * cp.sum_squares(tau)), lower)


def exact_traffic_tolling() -> float:
    # examples/gallery/traffic_tolling.py. The Beckmann follower is a strictly convex QP in the path
    # flows (Q = H' diag(a) H is positive definite, H has full column rank) on the simplex 1'x = 6,
    # x >= 0: its reply is found exactly by enumerating supports; then min over tau in [0, 5].
    Q = _TT_H.T @ np.diag(_TT_A) @ _TT_H

    def phi(tau: float) -> float:
        xs = strictly_convex_qp_simplex(Q, _TT_H.T @ _TT_B + np.array([0.0, 0.0, tau]), _TT_Q)
        f = _TT_H @ xs
        return float(_TT_B @ f + _TT_A @ f ** 2 + _TT_RHO * tau ** 2)
    return min_1d(phi, 0.0, 5.0, n=5001)


_CT_E = np.array([2.0, 1.5, 1.0])
_CT_C = np.array([0.20, 0.35, 0.50])
_CT_K = np.array([1.0, 1.2, 0.8])


def _ct_response(tau: float) -> np.ndarray:
    return np.clip(np.log(tau / (_CT_C * _CT_K)) / _CT_K, 0.0, _CT_E)


def wb_carbon_tax():
    import sympy as sp
    import workbench as wb
    tau = sp.Symbol("tau", real=True)
    a = sp.symbols("a1:4", real=True)
    e = [sp.nsimplify(v) for v in _CT_E]
    c = [sp.nsimplify(v) for v in _CT_C]
    k = [sp.nsimplify(v) for v in _CT_K]
    lower = sum(c[i] * (sp.exp(k[i] * a[i]) - 1) for i in range(3)) + tau * sum(e[i] - a[i] for i in range(3))
    upper = (sum(e[i] - a[i] for i in range(3)) - 2) ** 2 + sp.Rational(1, 100) * tau ** 2
    a0 = _ct_response(0.75)
    return wb.BilevelProblem(leader=[tau], follower=list(a), upper_objective=upper,
                             upper_constraints=[tau >= sp.Rational(1, 20), tau <= 3], lower_objective=lower,
                             lower_constraints=[c_ for i in range(3) for c_ in (a[i] >= 0, a[i] <= e[i])],
                             start={tau: 0.75, **{a[i]: float(a0[i]) for i in range(3)}}, name="carbon_tax")


def blv_carbon_tax():
    import cvxpy as cp
    import blvpy as bp
    tax = cp.Variable(name="carbon_tax")
    ab = cp.Variable(3, name="abatement")
    tax.value = 0.75
    ab.value = _ct_response(0.75)
    cost = cp.sum(cp.multiply(_CT_C, cp.exp(cp.multiply(_CT_K, ab)) - 1.0))
    lower = bp.LowerProblem(cp.Minimize(cost + tax * cp.sum(_CT_E - ab)), [ab >= 0.0, ab <= _CT_E],
                            parameters=[tax])
    return bp.BilevelProblem(cp.Minimize(cp.square(cp.sum(_CT_E - ab) - 2.0) + 0.01 * cp.square(tax)), lower,
                             upper_constraints=[tax >= 0.05, tax <= 3.0])


def exact_carbon_tax() -> float:
    # examples/gallery/carbon_tax_abatement.py: separable strictly convex follower; first-order
    # condition c_i k_i exp(k_i a_i) = tau, clipped to [0, e_i]; then min over tau in [0.05, 3].
    return min_1d(lambda t: float((np.sum(_CT_E - _ct_response(t)) - 2.0) ** 2 + 0.01 * t * t), 0.05, 3.0)


_CR_ALPHA = 0.35


def _cr_response(r: float) -> tuple[float, float]:
    q = (1 - _CR_ALPHA) * (12.0 - r) / (_CR_ALPHA * 6.0)
    return q ** (-(1 - _CR_ALPHA)), q ** _CR_ALPHA


def wb_clean_rebate():
    import sympy as sp
    import workbench as wb
    r, c, f = sp.symbols("r c f", real=True)
    c0, f0 = _cr_response(4.0)
    al = sp.Rational(7, 20)
    return wb.BilevelProblem(leader=[r], follower=[c, f], upper_objective=(f - sp.Rational(23, 20)) ** 2
                             + sp.Rational(1, 2000) * r ** 2, upper_constraints=[r >= 0, r <= 8],
                             lower_objective=(12 - r) * c + 6 * f,
                             lower_constraints=[c >= 0, f >= 0, c ** al * f ** (1 - al) >= 1],
                             start={r: 4.0, c: c0, f: f0}, name="clean_rebate")


def blv_clean_rebate():
    import cvxpy as cp
    import blvpy as bp
    r = cp.Variable(bounds=[0.0, 8.0], name="clean_equipment_rebate")
    c = cp.Variable(name="clean_input")
    f = cp.Variable(name="fossil_input")
    c0, f0 = _cr_response(4.0)
    r.value, c.value, f.value = 4.0, c0, f0
    lower = bp.LowerProblem(cp.Minimize((12.0 - r) * c + 6.0 * f), [cp.PowCone3D(c, f, 1.0, _CR_ALPHA)],
                            parameters=[r])
    return bp.BilevelProblem(cp.Minimize(cp.square(f - 1.15) + 0.0005 * cp.square(r)), lower)


def exact_clean_rebate() -> float:
    # examples/gallery/clean_equipment_rebate.py: Cobb-Douglas cost minimisation, f/c = q(r) =
    # (1-a)(12-r)/(6a) on c^a f^(1-a) = 1: c = q^-(1-a), f = q^a; then min over r in [0, 8].
    return min_1d(lambda r: (_cr_response(r)[1] - 1.15) ** 2 + 0.0005 * r * r, 0.0, 8.0)


def _rw_data() -> tuple[np.ndarray, np.ndarray]:
    h = np.arange(24, dtype=float)
    D = 3.5 + 1.8 * np.exp(-0.5 * ((h - 8.0) / 2.6) ** 2) + 3.0 * np.exp(-0.5 * ((h - 19.0) / 3.2) ** 2)
    L = (np.where((h >= 5) & (h <= 11), 0.8 * np.sin(np.pi * (h - 5.0) / 6.0), 0.0)
         + np.where((h >= 13) & (h <= 21), np.sin(np.pi * (h - 13.0) / 8.0), 0.0))
    return D, L


def wb_renewable():
    import sympy as sp
    import workbench as wb
    D, L = _rw_data()
    al = sp.Symbol("alpha", real=True)
    r = sp.symbols("r1:25", real=True)
    g = sp.symbols("g1:25", real=True)
    delta = sp.Rational(1, 1000)
    lower = (sp.Rational(2, 5) * sum(r) + sp.Rational(5, 2) * sum(g)
             + delta * (sum(v ** 2 for v in r) + sum(v ** 2 for v in g)))
    cons = []
    for t in range(24):
        cons += [r[t] >= 0, g[t] >= 0, r[t] <= float(L[t]) * al, r[t] + g[t] >= float(D[t])]
    return wb.BilevelProblem(leader=[al], follower=[*r, *g],
                             upper_objective=sp.Rational(2, 25) * al ** 2 + sp.Rational(3, 5) * sum(g),
                             upper_constraints=[al >= 0, al <= 12], lower_objective=lower, lower_constraints=cons,
                             start={al: 8.5}, name="renewable")


def blv_renewable():
    import cvxpy as cp
    import blvpy as bp
    D, L = _rw_data()
    alpha = cp.Variable(name="alpha")
    r = cp.Variable(24, name="r")
    g = cp.Variable(24, name="g")
    alpha.value = 8.5
    lower = bp.LowerProblem(
        cp.Minimize(0.4 * cp.sum(r) + 2.5 * cp.sum(g) + 1e-3 * (cp.sum_squares(r) + cp.sum_squares(g))),
        [r >= 0.0, g >= 0.0, r <= cp.multiply(L, alpha), r + g >= D], parameters=[alpha])
    return bp.BilevelProblem(cp.Minimize(0.08 * cp.square(alpha) + 0.6 * cp.sum(g)), lower,
                             upper_constraints=[alpha >= 0.0, alpha <= 12.0])


def exact_renewable() -> float:
    # examples/gallery/renewable_capacity_planning.py. Per hour, shifting a unit from g to r changes
    # the follower's cost by 0.4 - 2.5 + 2e-3 (r - g) < 0 (|r - g| < 1050), so r = min(D, alpha L),
    # g = D - r exactly (r > D only adds cost). F(alpha) = 0.08 alpha^2 + 0.6 sum max(D - alpha L, 0).
    D, L = _rw_data()
    return min_1d(lambda a: 0.08 * a * a + 0.6 * float(np.sum(D - np.minimum(D, a * L))), 0.0, 12.0)


def _ridge_data():
    rng = np.random.default_rng(1907)
    w_true = np.array([1.6, -1.2, 0.8, 0.0, -0.5, 0.35, 0.0, 0.6])
    Xtr = rng.normal(size=(24, 8))
    Xva = rng.normal(size=(80, 8))
    s = np.std(Xtr, axis=0)
    Xtr, Xva = Xtr / s, Xva / s
    ytr = Xtr @ w_true + rng.normal(scale=1.1, size=24)
    yva = Xva @ w_true + rng.normal(scale=0.25, size=80)
    return Xtr, Xva, ytr, yva


def wb_ridge():
    import sympy as sp
    import workbench as wb
    Xtr, Xva, ytr, yva = _ridge_data()
    lam = sp.Symbol("lam", real=True)
    w = sp.Matrix(sp.symbols("w1:9", real=True))
    rtr = sp.Matrix(Xtr) * w - sp.Matrix(ytr)
    rva = sp.Matrix(Xva) * w - sp.Matrix(yva)
    lower = sp.expand((rtr.T * rtr)[0] / 24) + lam * sum(v ** 2 for v in w)
    upper = sp.expand((rva.T * rva)[0] / 80)
    return wb.BilevelProblem(leader=[lam], follower=list(w), upper_objective=upper,
                             upper_constraints=[lam >= sp.Rational(1, 10000), lam <= 10], lower_objective=lower,
                             name="ridge")


def blv_ridge():
    import cvxpy as cp
    import blvpy as bp
    Xtr, Xva, ytr, yva = _ridge_data()
    lbd = cp.Variable(nonneg=True, bounds=[1e-4, 10.0], name="lbd")
    w = cp.Variable(8, name="w")
    lower = bp.LowerProblem(cp.Minimize(cp.sum_squares(Xtr @ w - ytr) / 24 + lbd * cp.sum_squares(w)),
                            parameters=[lbd])
    return bp.BilevelProblem(cp.Minimize(cp.sum_squares(Xva @ w - yva) / 80), lower)


def exact_ridge() -> float:
    # examples/gallery/ridge_hyperparameter.py: w(lam) = (X'X/24 + lam I)^-1 X'y/24 (strictly convex
    # follower); F(lam) = |X_val w(lam) - y_val|^2 / 80 on [1e-4, 10] (log grid).
    Xtr, Xva, ytr, yva = _ridge_data()
    G, h = Xtr.T @ Xtr / 24, Xtr.T @ ytr / 24

    def phi(lam: float) -> float:
        w = np.linalg.solve(G + lam * np.eye(8), h)
        return float(np.sum((Xva @ w - yva) ** 2) / 80)
    return min_1d(phi, 1e-4, 10.0, n=4001, log=True)


_PS_R = np.array([4.0, 3.2, 5.0, 2.6, 4.4, 3.8, 5.5, 3.0])
_PS_C = np.array([3.0, 3.5, 2.2, 2.0, 4.4, 2.8, 3.2, 4.0])
_PS_L = np.array([8.0, 5.0, 10.0, 4.0, 7.0, 6.0, 12.0, 5.0])
_PS_B, _PS_G = 2.5, 0.03


def wb_port_security():
    import sympy as sp
    import workbench as wb
    p = sp.symbols("p1:9", real=True)
    q = sp.symbols("q1:9", real=True)
    n = 8
    R = [sp.nsimplify(v) for v in _PS_R]
    C = [sp.nsimplify(v) for v in _PS_C]
    L = [sp.nsimplify(v) for v in _PS_L]
    upper = sum(L[i] * (1 - p[i]) * q[i] for i in range(n)) + sp.Rational(3, 100) * sum(v ** 2 for v in p)
    lower = -sum((R[i] - C[i] * p[i]) * q[i] for i in range(n))
    ucons = [c for v in p for c in (v >= 0, v <= 1)] + [sum(p) <= sp.Rational(5, 2)]
    return wb.BilevelProblem(leader=list(p), follower=list(q), upper_objective=upper, upper_constraints=ucons,
                             lower_objective=lower, lower_constraints=[*(v >= 0 for v in q), sp.Eq(sum(q), 1)],
                             start={v: _PS_B / n for v in p}, name="port_security")


def blv_port_security():
    import cvxpy as cp
    import blvpy as bp
    n = 8
    p = cp.Variable(n, bounds=[0.0, 1.0], name="p")
    p.value = np.full(n, _PS_B / n)
    q = cp.Variable(n, nonneg=True, name="q")
    lower = bp.LowerProblem(cp.Minimize(-(_PS_R - cp.multiply(_PS_C, p)) @ q), [cp.sum(q) == 1.0], parameters=[p])
    return bp.BilevelProblem(cp.Minimize(cp.multiply(_PS_L, 1.0 - p) @ q + _PS_G * cp.sum_squares(p)), lower,
                             upper_constraints=[cp.sum(p) <= _PS_B])


def exact_port_security() -> float:
    # examples/gallery/stackelberg_port_security.py (strong Stackelberg). The follower's optimal set
    # is the simplex face of the targets with the largest payoff r_i - c_i p_i; the upper objective is
    # linear in q, so the optimistic choice is a vertex e_i. Enumerating the attacked target i gives 8
    # convex QPs: min L_i (1 - p_i) + g |p|^2 s.t. r_i - c_i p_i >= r_j - c_j p_j (all j), 0 <= p <= 1,
    # sum p <= B. The least of their optima is the bilevel optimum.
    n, best = 8, math.inf
    for i in range(n):
        cons = [{"type": "ineq", "fun": (lambda p, j=j, i=i: (_PS_R[i] - _PS_C[i] * p[i]) - (_PS_R[j] - _PS_C[j] * p[j]))}
                for j in range(n) if j != i]
        cons.append({"type": "ineq", "fun": lambda p: _PS_B - p.sum()})
        fun = (lambda p, i=i: _PS_L[i] * (1 - p[i]) + _PS_G * float(p @ p))
        for x0 in (np.full(n, _PS_B / n), np.zeros(n), np.where(np.arange(n) == i, 1.0, 0.0)):
            try:
                val, p = _convex_min(fun, x0, [(0.0, 1.0)] * n, cons)
            except RuntimeError:
                continue
            best = min(best, val)
            break
    return best


def _dr_data() -> np.ndarray:
    h = np.arange(24, dtype=float)
    return 0.75 + 0.75 * np.exp(-0.5 * ((h - 8.0) / 1.8) ** 2) + 1.65 * np.exp(-0.5 * ((h - 19.0) / 2.1) ** 2)


def wb_demand_response():
    import sympy as sp
    import workbench as wb
    lbar = _dr_data()
    E = float(lbar.sum())
    p = sp.symbols("p1:25", real=True)
    z = sp.Symbol("z", real=True)
    ell = sp.symbols("l1:25", real=True)
    g = sp.Rational(9, 20)
    lower = sum(p[t] * ell[t] for t in range(24)) + g * sum((ell[t] - float(lbar[t])) ** 2 for t in range(24))
    upper = (z + sp.Rational(1, 40) * sum(v ** 2 for v in p)
             + sp.Rational(3, 25) * sum((p[t + 1] - p[t]) ** 2 for t in range(23)))
    ucons = [c for v in p for c in (v >= 0, v <= sp.Rational(4, 5))] + [z >= 0, z <= 4] + [v <= z for v in ell]
    lcons = [sp.Eq(sum(ell), E)] + [c for v in ell for c in (v >= sp.Rational(9, 20), v <= sp.Rational(16, 5))]
    return wb.BilevelProblem(leader=[*p, z], follower=list(ell), upper_objective=upper, upper_constraints=ucons,
                             lower_objective=lower, lower_constraints=lcons,
                             start={**{v: 0.4 for v in p}, z: 2.0}, name="demand_response")


def blv_demand_response():
    import cvxpy as cp
    import blvpy as bp
    lbar = _dr_data()
    price = cp.Variable(24, name="hourly_price")
    peak = cp.Variable(name="peak_load")
    load = cp.Variable(24, name="hourly_load")
    price.value = np.full(24, 0.4)
    peak.value = 2.0
    lower = bp.LowerProblem(cp.Minimize(price @ load + 0.45 * cp.sum_squares(load - lbar)),
                            [cp.sum(load) == float(np.sum(lbar)), load >= 0.45, load <= 3.2], parameters=[price])
    upper = peak + 0.025 * cp.sum_squares(price) + 0.12 * cp.sum_squares(price[1:] - price[:-1])
    return bp.BilevelProblem(cp.Minimize(upper), lower,
                             upper_constraints=[price >= 0.0, price <= 0.8, peak >= 0.0, peak <= 4.0, load <= peak])


def exact_demand_response() -> float:
    # examples/gallery/demand_response_pricing.py. Where no load bound is active, the follower's reply
    # is affine: l(p) = lbar - (p - mean(p)) / (2 * 0.45) (stationarity p + 0.9 (l - lbar) = mu 1 with
    # 1'l = E). With that reply the leader's problem is a convex QP in (p, z); its optimum is then
    # checked to keep every load strictly inside [0.45, 3.2]. That makes it a verified LOCAL optimum of
    # the bilevel problem (the reply is affine on a neighbourhood), not a proven global one: "local".
    lbar = _dr_data()
    n = 24
    M = np.eye(n) - np.ones((n, n)) / n

    def ell(p):
        return lbar - M @ p / 0.9

    def fun(v):
        p, z = v[:n], v[n]
        return z + 0.025 * float(p @ p) + 0.12 * float(np.sum(np.diff(p) ** 2))
    cons = [{"type": "ineq", "fun": lambda v: v[n] - ell(v[:n])}]
    val, v = _convex_min(fun, np.concatenate([np.full(n, 0.4), [2.0]]), [(0.0, 0.8)] * n + [(0.0, 4.0)], cons)
    loads = ell(v[:n])
    if not (loads.min() > 0.45 + 1e-6 and loads.max() < 3.2 - 1e-6):
        raise RuntimeError("a load bound is active at the affine-reply optimum: the reference does not hold")
    return val


def _truss_data():
    nodes = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [2.0, 1.0]])
    members = np.array([[0, 2], [1, 3], [2, 3], [0, 3], [1, 2], [2, 4], [3, 5], [4, 5], [2, 5], [3, 4]])
    B = np.zeros((10, 12))
    L = np.zeros(10)
    for k, (s, e) in enumerate(members):
        d = nodes[e] - nodes[s]
        L[k] = np.linalg.norm(d)
        d = d / L[k]
        B[k, 2 * s:2 * s + 2] = -d
        B[k, 2 * e:2 * e + 2] = d
    f = np.zeros(12)
    f[9], f[11] = -1.0, -0.25
    return B, L, f, np.array([0, 1, 2, 3]), 10.0, 0.08, 2.0, 0.65 * float(L.sum())


def wb_truss():
    import sympy as sp
    import workbench as wb
    B, L, f, F, E, amin, amax, V = _truss_data()
    a = sp.symbols("a1:11", real=True)
    u = sp.symbols("u1:13", real=True)
    el = [sum(float(B[k, j]) * u[j] for j in range(12) if B[k, j] != 0) for k in range(10)]
    energy = sum(sp.Float(E / L[k] / 2) * a[k] * el[k] ** 2 for k in range(10))
    fu = sum(float(f[j]) * u[j] for j in range(12) if f[j] != 0)
    ucons = [c for v in a for c in (v >= amin, v <= amax)] + [sum(float(L[k]) * a[k] for k in range(10)) <= V]
    return wb.BilevelProblem(leader=list(a), follower=list(u), upper_objective=fu, upper_constraints=ucons,
                             lower_objective=energy - fu, lower_constraints=[sp.Eq(u[i], 0) for i in F],
                             start={v: V / float(L.sum()) for v in a}, name="truss")


def blv_truss():
    import cvxpy as cp
    import blvpy as bp
    B, L, f, F, E, amin, amax, V = _truss_data()
    a = cp.Variable(10, nonneg=True, bounds=[amin, amax], name="a")
    u = cp.Variable(12, name="u")
    a.value = np.full(10, V / np.sum(L))
    energy = 0.5 * cp.sum(cp.multiply(cp.multiply(E / L, a), cp.square(B @ u)))
    lower = bp.LowerProblem(cp.Minimize(energy - f @ u), [u[F] == 0.0], parameters=[a])
    return bp.BilevelProblem(cp.Minimize(f @ u), lower, upper_constraints=[L @ a <= V])


def exact_truss() -> float:
    # examples/gallery/planar_truss_sizing.py. The follower's reply is u_free = K_ff(a)^-1 f_free
    # (K(a) = B' diag(E a / L) B is positive definite on the free dofs for a >= 0.08), so the leader's
    # problem is the minimum-compliance problem min_a f' K(a)^-1 f, which is convex in a (a matrix-
    # fractional function of an affine K(a)); gradient -E/L_e (b_e'u)^2. Convex: SLSQP's optimum is global.
    from scipy.optimize import minimize
    B, L, f, F, E, amin, amax, V = _truss_data()
    free = np.setdiff1d(np.arange(12), F)

    def phi(a):
        K = B.T @ np.diag(E * a / L) @ B
        u = np.zeros(12)
        u[free] = np.linalg.solve(K[np.ix_(free, free)], f[free])
        return float(f @ u), -(E / L) * (B @ u) ** 2
    r = minimize(phi, np.full(10, V / L.sum()), jac=True, method="SLSQP", bounds=[(amin, amax)] * 10,
                 constraints=[{"type": "ineq", "fun": lambda a: V - L @ a, "jac": lambda a: -L}],
                 options={"ftol": 1e-15, "maxiter": 1000})
    if not r.success:
        raise RuntimeError(r.message)
    return float(r.fun)


_DC_N = 24


def _dc_model():
    J, b, Kt, Ke, Li, R, dt = 0.01, 0.01, 0.1, 0.1, 0.5, 1.0, 0.05
    A = np.eye(2) + dt * np.array([[-b / J, Kt / J], [-Ke / Li, -R / Li]])
    Bm = dt * np.array([0.0, 1.0 / Li])
    return A, Bm


def _dc_reply(delta: float, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """The MPC follower's reply by one linear solve: the states are eliminated (x = G u from x(0) = 0),
    the cost is a strictly convex quadratic in u; valid where no bound is active, which is checked."""
    A, Bm = _dc_model()
    N = _DC_N
    G = np.zeros((2 * (N + 1), N))
    for t in range(1, N + 1):
        for s_ in range(t):
            G[2 * t:2 * t + 2, s_] = np.linalg.matrix_power(A, t - 1 - s_) @ Bm
    Q = np.zeros((2 * (N + 1), 2 * (N + 1)))
    q = np.zeros(2 * (N + 1))
    for t in range(1, N + 1):
        Q[2 * t, 2 * t] += 1.0
        q[2 * t] -= 1.0
        Q[2 * t + 1, 2 * t + 1] += 0.04
        q[2 * t + 1] -= 0.04 * 0.1
    Q[2 * N, 2 * N] += 5.0
    q[2 * N] -= 5.0
    D = np.eye(N) - np.eye(N, k=-1)
    u = np.linalg.solve(G.T @ Q @ G + delta * np.eye(N) + eta * D.T @ D, -(G.T @ q - 0.2 * delta * np.ones(N)))
    x = (G @ u).reshape(N + 1, 2).T
    if not (np.abs(u).max() < 2 and np.abs(x[1]).max() < 0.5 and x[0].min() > -0.05 and x[0].max() < 1.25):
        raise RuntimeError("a bound is active: the linear-solve reply does not hold")
    return x, u


def wb_dc_motor():
    import sympy as sp
    import workbench as wb
    A, Bm = _dc_model()
    N = _DC_N
    xh, uh = _dc_reply(0.035, 0.16)
    x0, u0 = _dc_reply(0.5, 0.5)
    d, e = sp.symbols("delta eta", real=True)
    w = sp.symbols(f"w0:{N + 1}", real=True)
    i = sp.symbols(f"i0:{N + 1}", real=True)
    u = sp.symbols(f"u0:{N}", real=True)
    uprev = [0, *u[:-1]]
    cost = (sum((w[t] - 1) ** 2 for t in range(1, N + 1)) + sp.Rational(1, 25) * sum((i[t] - sp.Rational(1, 10)) ** 2
            for t in range(1, N + 1)) + d * sum((v - sp.Rational(1, 5)) ** 2 for v in u)
            + e * sum((u[t] - uprev[t]) ** 2 for t in range(N)) + 5 * (w[N] - 1) ** 2)
    cons = [sp.Eq(w[0], 0), sp.Eq(i[0], 0)]
    for t in range(N):
        cons += [sp.Eq(w[t + 1], float(A[0, 0]) * w[t] + float(A[0, 1]) * i[t] + float(Bm[0]) * u[t]),
                 sp.Eq(i[t + 1], float(A[1, 0]) * w[t] + float(A[1, 1]) * i[t] + float(Bm[1]) * u[t]),
                 u[t] <= 2, u[t] >= -2]
    for t in range(N + 1):
        cons += [i[t] <= sp.Rational(1, 2), i[t] >= -sp.Rational(1, 2), w[t] >= -sp.Rational(1, 20), w[t] <= sp.Rational(5, 4)]
    loss = (sum((w[t] - float(xh[0, t])) ** 2 + (i[t] - float(xh[1, t])) ** 2 for t in range(N + 1))
            + sp.Rational(1, 10) * sum((u[t] - float(uh[t])) ** 2 for t in range(N)))
    start = {d: 0.5, e: 0.5, **{w[t]: float(x0[0, t]) for t in range(N + 1)},
             **{i[t]: float(x0[1, t]) for t in range(N + 1)}, **{u[t]: float(u0[t]) for t in range(N)}}
    return wb.BilevelProblem(leader=[d, e], follower=[*w, *i, *u], upper_objective=loss,
                             upper_constraints=[d >= sp.Rational(1, 100), d <= 1, e >= sp.Rational(1, 100), e <= 1],
                             lower_objective=cost, lower_constraints=cons, start=start, name="dc_motor")


def blv_dc_motor():
    import cvxpy as cp
    import blvpy as bp
    A, Bm = _dc_model()
    N = _DC_N
    xh, uh = _dc_reply(0.035, 0.16)
    x0, u0 = _dc_reply(0.5, 0.5)
    delta = cp.Variable(nonneg=True, bounds=[0.01, 1.0], name="delta")
    eta = cp.Variable(nonneg=True, bounds=[0.01, 1.0], name="eta")
    x = cp.Variable((2, N + 1), name="x")
    u = cp.Variable(N, name="u")
    delta.value, eta.value, x.value, u.value = 0.5, 0.5, x0, u0
    du = cp.diff(cp.hstack([0.0, u]))
    cost = (cp.sum_squares(x[0, 1:] - 1.0) + 0.04 * cp.sum_squares(x[1, 1:] - 0.1) + delta * cp.sum_squares(u - 0.2)
            + eta * cp.sum_squares(du) + 5.0 * cp.square(x[0, -1] - 1.0))
    lower = bp.LowerProblem(cp.Minimize(cost), [x[:, 0] == np.zeros(2), x[:, 1:] == A @ x[:, :-1] + cp.outer(Bm, u),
                                                cp.abs(u) <= 2.0, cp.abs(x[1, :]) <= 0.5, x[0, :] >= -0.05,
                                                x[0, :] <= 1.25], parameters=[delta, eta])
    return bp.BilevelProblem(cp.Minimize(cp.sum_squares(x - xh) + 0.1 * cp.sum_squares(u - uh)), lower)


# dc_motor (examples/gallery/dc_motor_mpc_tuning.py): the expert trajectory is the follower's reply at
# (delta, eta) = (0.035, 0.16), inside the leader's box, and the follower is strictly convex (delta > 0),
# so the imitation loss reaches its least possible value F* = 0 there.


# ============================================================================== workbench seeds
# tests/test_core_seed.py (answers derived there by hand; repeated here).

def wb_seed_substitution():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                             upper_constraints=[x >= 0, x <= 1], lower_objective=(y - x) ** 2 / 2,
                             name="seed_substitution")


def blv_seed_substitution():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y - x) / 2), parameters=[x])
    return bp.BilevelProblem(cp.Minimize(x + y), lower, upper_constraints=[x >= 0, x <= 1])


# y = x, F = 2x on [0, 1]: F = 0 at x = 0.


def wb_seed_kkt():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 1) ** 2,
                             upper_constraints=[x >= -2, x <= 2], lower_objective=y ** 2 / 2 + x * y,
                             lower_constraints=[y - x - 1 >= 0, y >= 0], name="seed_kkt")


def blv_seed_kkt():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y) / 2 + x * y), [y - x - 1 >= 0, y >= 0], parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 1) + cp.square(y - 1)), lower,
                             upper_constraints=[x >= -2, x <= 2])


# y*(x) = -x for x <= -1/2, x + 1 for x >= -1/2; F = (x-1)^2 + x^2 on x >= -1/2 is minimal at x = 1/2
# (F = 1/2); on x <= -1/2, F = (x-1)^2 + (x+1)^2 >= 2.5. F* = 1/2.


def wb_seed_spurious():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                             upper_constraints=[x >= -1, x <= 1],
                             lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2,
                             name="seed_spurious")


# Non-convex follower (BLVPY cannot express it). f'(y) = y (6y^4 - 7/2 y^2 + 1/4): global minimisers
# y = +-1/sqrt 2 (f = -1/32); F = x^2 + 1/2, F* = 1/2 at x = 0.


def wb_seed_equality_bounds():
    import sympy as sp
    import workbench as wb
    x, y1, y2 = sp.symbols("x y1 y2", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y1, y2], upper_objective=(x - 3) ** 2 + (y2 - 1) ** 2,
                             upper_constraints=[x >= 0, x <= 4], lower_objective=(y1 - 2) ** 2 + y2 ** 2,
                             lower_constraints={"budget": sp.Eq(y1 + y2, x), "floor": y1 >= 0, "cap": y1 <= 1},
                             name="seed_equality_bounds")


def blv_seed_equality_bounds():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y1 = cp.Variable(name="y1")
    y2 = cp.Variable(name="y2")
    lower = bp.LowerProblem(cp.Minimize(cp.square(y1 - 2) + cp.square(y2)), [y1 + y2 == x, y1 >= 0, y1 <= 1],
                            parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 3) + cp.square(y2 - 1)), lower,
                             upper_constraints=[x >= 0, x <= 4])


# With y2 = x - y1 the follower's minimiser is y1 = (2 + x)/2 clipped to [0, 1]: y1 = 1 for x >= 0,
# y2 = x - 1; F = (x-3)^2 + (x-2)^2 -> x = 2.5, F* = 1/2.


def wb_seed_maximizing():
    import sympy as sp
    import workbench as wb
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 3) ** 2 + (y - 2) ** 2,
                             upper_constraints=[x >= 0, x <= 5], lower_objective=wb.Maximize(x * y - y ** 2),
                             lower_constraints=[y >= 0], name="seed_maximizing")


def blv_seed_maximizing():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(name="x")
    y = cp.Variable(name="y")
    lower = bp.LowerProblem(cp.Maximize(x * y - cp.square(y)), [y >= 0], parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x - 3) + cp.square(y - 2)), lower,
                             upper_constraints=[x >= 0, x <= 5])


# y*(x) = x/2 on x >= 0; F = (x-3)^2 + (x/2-2)^2, dF/dx = 2.5x - 8 = 0 -> x = 3.2, F* = 0.04 + 0.16 = 0.2.


# ============================================================================== box QP

def wb_box_qp():
    import sympy as sp
    import workbench as wb
    x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2", real=True)
    return wb.BilevelProblem(
        leader=[x1, x2], follower=[y1, y2],
        upper_objective=(x1 - 2) ** 2 + (x2 + 1) ** 2 + (y1 - sp.Rational(3, 2)) ** 2 + (y2 - sp.Rational(1, 2)) ** 2,
        upper_constraints=[x1 >= -2, x1 <= 2, x2 >= -2, x2 <= 2],
        lower_objective=((y1 - x1) ** 2 + (y2 - x2) ** 2) / 2,
        lower_constraints=[y1 >= 0, y1 <= 1, y2 >= 0, y2 <= 1], name="box_qp")


def blv_box_qp():
    import cvxpy as cp
    import blvpy as bp
    x = cp.Variable(2, name="x", bounds=[-2.0, 2.0])
    y = cp.Variable(2, name="y")
    lower = bp.LowerProblem(cp.Minimize(cp.sum_squares(y - x) / 2), [y >= 0, y <= 1], parameters=[x])
    return bp.BilevelProblem(cp.Minimize(cp.square(x[0] - 2) + cp.square(x[1] + 1) + cp.square(y[0] - 1.5)
                                         + cp.square(y[1] - 0.5)), lower)


# y = clip(x, 0, 1) (projection onto the box), separable. Coordinate 1: (x1-2)^2 + (clip(x1)-3/2)^2 is
# 1/4 at x1 = 2 (y1 = 1) and >= 5/4 for x1 <= 1. Coordinate 2: (x2+1)^2 + (clip(x2)-1/2)^2 is 1/4 at
# x2 = -1 (y2 = 0) and >= 5/4 for x2 >= 0. F* = 1/2 with one bound of the box active in each coordinate.


# ============================================================================== BOLIB
# The workbench side is workbench.bolib.load(name) (BOLIB's start point included); the BLVPY side
# evaluates the same BOLIB strings with CVXPY scalar variables (x1.., y1..), the lower problem
# parametrised by the leader variables, the start point set as .value. Every chosen problem has a
# follower that is convex in y with x entering as DPP parameters (BLVPY can express it).

def _bolib_record(name: str) -> dict:
    return next(r for r in json.loads(BOLIB_JSON.read_text()) if r["name"] == name)


def _wb_bolib(name: str):
    def build():
        from workbench import bolib
        return bolib.load(name)
    return build


def _blv_bolib(name: str):
    def build():
        import cvxpy as cp
        import blvpy as bp
        r = _bolib_record(name)
        xs = [cp.Variable(name=f"x{i + 1}") for i in range(r["nx"])]
        ys = [cp.Variable(name=f"y{i + 1}") for i in range(r["ny"])]
        for v, val in zip([*xs, *ys], [*r["x0"], *r["y0"]]):
            v.value = float(val)
        env = {f"x{i + 1}": v for i, v in enumerate(xs)} | {f"y{i + 1}": v for i, v in enumerate(ys)}

        def ev(s):  # BOLIB's data strings: polynomials in x, y (trusted package data)
            e = eval(s, {"__builtins__": {}}, env)  # noqa: S307
            if isinstance(e, (int, float)):
                e = cp.Constant(e)
            return e
        lower_obj = ev(r["f"])
        lower_cons = [ev(g) >= 0 for g in r["g"]]
        used = {v.id for e in (lower_obj, *lower_cons) for v in e.variables()}
        if not any(v.id in {u.id for u in lower_obj.variables()} for v in ys):
            lower_obj = lower_obj + 0.0 * ys[0]
        # only leader variables that occur in the follower are its parameters (BLVPY's rule)
        lower = bp.LowerProblem(cp.Minimize(lower_obj), lower_cons, parameters=[x for x in xs if x.id in used])
        return bp.BilevelProblem(cp.Minimize(ev(r["F"])), lower, upper_constraints=[ev(g) >= 0 for g in r["G"]])
    return build


def _milp_exact(name: str):
    def exact():
        from workbench import bolib
        res = bolib.load(name).solve(method="milp")
        if str(res.status) != "optimal" or res.optimality != "global":
            raise RuntimeError(f"MILP reference for {name}: {res.status}")
        return float(res.upper_value)
    return exact


def _const(v: float) -> Callable[[], float]:
    return lambda: float(v)


def _bolib_case(name: str, group: str, exact, kind: str, note: str) -> Case:
    return Case(name, group, f"BOLIB v2 {name}", _wb_bolib(name), _blv_bolib(name), exact, kind, note)


def exact_bard1988ex1() -> float:
    # Bard1988Ex1: x >= 0; follower min (y-1)^2 - 3xy/2 on y in [max(0, 2x-8), min(3x-3, 7-x)] (non-empty
    # for 1 <= x <= 5), so y*(x) = clip(1 + 3x/4, lo, hi); F = (x-5)^2 + (2y+1)^2. (By hand: on
    # [1, 16/9] y = 3x - 3 and F' = 74x - 70 > 0, so x = 1, y = 0, F = 17; elsewhere F > 17.)
    def phi(x):
        lo, hi = max(0.0, 2 * x - 8), min(3 * x - 3, 7 - x)
        y = min(max(1 + 0.75 * x, lo), hi)
        return (x - 5) ** 2 + (2 * y + 1) ** 2
    return min_1d(phi, 1.0, 5.0)


def exact_clarkwesterberg1990a() -> float:
    # ClarkWesterberg1990a: x in [0, 8]; follower min (y-5)^2 on [(x+2)/2, min(2x+1, (14-x)/2)] (non-empty
    # for 0 <= x <= 6): y = clip(5, lo, hi); F = (x-3)^2 + (y-2)^2. By hand: on [0, 2] y = 2x + 1,
    # F = (x-3)^2 + (2x-1)^2, F' = 10x - 10 -> x = 1, y = 3, F = 5; on [2, 4] F >= 9; on [4, 6] F >= 10.
    def phi(x):
        lo, hi = (x + 2) / 2, min(2 * x + 1, (14 - x) / 2)
        y = min(max(5.0, lo), hi)
        return (x - 3) ** 2 + (y - 2) ** 2
    return min_1d(phi, 0.0, 6.0)


def exact_ls2017ex35() -> float:
    # LamparielloSagratella2017Ex35: follower max y on [0, min(1, 2 - 2x)] -> y = min(1, 2 - 2x) (x <= 1).
    # F = x^2 + y^2: on [-1, 1/2] y = 1, F >= 1; on [1/2, 1] F = x^2 + (2-2x)^2, F' = 10x - 8 -> x = 0.8,
    # y = 0.4, F = 0.8.
    return min_1d(lambda x: x * x + min(1.0, 2 - 2 * x) ** 2, -1.0, 1.0)


# ============================================================================== the table

CASES: list[Case] = [
    # --- BLVPY 0.5 tests (tests/test_ipopt_integration.py)
    Case("blv_analytic_quadratic", "blvpy-test", "BLVPY tests: test_analytic_quadratic_reaches_target...",
         wb_analytic_quadratic, blv_analytic_quadratic, _const(2.0), "hand"),
    Case("blv_optimistic_lp", "blvpy-test", "BLVPY tests: test_optimistic_lp_selects_upper_preferred...",
         wb_optimistic_lp, blv_optimistic_lp, _const(0.0), "hand"),
    Case("blv_param_socp", "blvpy-test", "BLVPY tests/examples: parameter_dependent_socp (SOC written t>=0, t^2-|y|^2>=0)",
         wb_param_socp, blv_param_socp, _const(1.0), "hand"),
    Case("blv_vector_matrix_soc", "blvpy-test", "BLVPY tests: test_vector_matrix_links_multiple_soc_blocks... (two SOCs, smooth)",
         wb_vector_matrix_soc, blv_vector_matrix_soc, _const(0.0), "hand"),
    Case("blv_scalar_lp", "blvpy-test", "BLVPY tests: test_scalar_lp_returns_hand_derived_kkt_point...",
         wb_scalar_lp, blv_scalar_lp, _const(0.0), "hand"),
    # --- BLVPY 0.5 examples (examples/gallery)
    Case("blv_quickstart", "blvpy-example", "BLVPY README quick start / analytic_quadratic.py",
         wb_quickstart, blv_quickstart, _const(2.0), "hand"),
    Case("blv_double_well", "blvpy-example", "BLVPY examples: best_of_local_optima.py (default solve, no best_of)",
         wb_double_well, blv_double_well, exact_double_well, "hand"),
    Case("blv_traffic_tolling", "blvpy-example", "BLVPY examples: traffic_tolling.py (Braess network)",
         wb_traffic_tolling, blv_traffic_tolling, exact_traffic_tolling, "reduction"),
    Case("blv_carbon_tax", "blvpy-example", "BLVPY examples: carbon_tax_abatement.py (exp follower)",
         wb_carbon_tax, blv_carbon_tax, exact_carbon_tax, "reduction"),
    Case("blv_clean_rebate", "blvpy-example", "BLVPY examples: clean_equipment_rebate.py (power cone as c^0.35 f^0.65 >= 1)",
         wb_clean_rebate, blv_clean_rebate, exact_clean_rebate, "reduction"),
    Case("blv_renewable", "blvpy-example", "BLVPY examples: renewable_capacity_planning.py (48 follower variables)",
         wb_renewable, blv_renewable, exact_renewable, "reduction"),
    Case("blv_ridge", "blvpy-example", "BLVPY examples: ridge_hyperparameter.py (8 weights)",
         wb_ridge, blv_ridge, exact_ridge, "reduction"),
    Case("blv_port_security", "blvpy-example", "BLVPY examples: stackelberg_port_security.py (8 + 8, LP follower)",
         wb_port_security, blv_port_security, exact_port_security, "enumeration"),
    Case("blv_demand_response", "blvpy-example", "BLVPY examples: demand_response_pricing.py (25 + 24)",
         wb_demand_response, blv_demand_response, exact_demand_response, "local",
         "reference is a verified local optimum (affine-reply region), not counted as exact"),
    Case("blv_truss", "blvpy-example", "BLVPY examples: planar_truss_sizing.py (10 + 12, minimum compliance)",
         wb_truss, blv_truss, exact_truss, "reduction"),
    Case("blv_dc_motor", "blvpy-example", "BLVPY examples: dc_motor_mpc_tuning.py (2 + 74, 148 bounds)",
         wb_dc_motor, blv_dc_motor, _const(0.0), "hand"),
    # --- the workbench's seed examples
    Case("seed_substitution", "seed", "workbench tests/test_core_seed.py", wb_seed_substitution, blv_seed_substitution,
         _const(0.0), "hand"),
    Case("seed_kkt", "seed", "workbench tests/test_core_seed.py", wb_seed_kkt, blv_seed_kkt, _const(0.5), "hand"),
    Case("seed_spurious", "seed", "workbench tests/test_core_seed.py (non-convex follower)", wb_seed_spurious, None,
         _const(0.5), "hand", "BLVPY cannot express a non-convex follower"),
    Case("seed_equality_bounds", "seed", "workbench tests/test_core_seed.py", wb_seed_equality_bounds,
         blv_seed_equality_bounds, _const(0.5), "hand"),
    Case("seed_maximizing", "seed", "workbench tests/test_core_seed.py", wb_seed_maximizing, blv_seed_maximizing,
         _const(0.2), "hand"),
    Case("box_qp", "box-qp", "box-constrained QP follower (projection)", wb_box_qp, blv_box_qp, _const(0.5), "hand"),
    # --- BOLIB, convex followers
    _bolib_case("Bard1984a", "bolib-linear", _milp_exact("Bard1984a"), "milp", "BOLIB best 3.1111"),
    _bolib_case("BenAyedBlair1990a", "bolib-linear", _milp_exact("BenAyedBlair1990a"), "milp", "BOLIB best -2.5"),
    _bolib_case("HuHuangZhang2009", "bolib-linear", _milp_exact("HuHuangZhang2009"), "milp",
               "BOLIB best -8.4444 is not optimal (by hand: y2 = 0, y1 = min(25/9 - x, 8/9); F = -3x - 25/9 "
               "on [17/9, 2], so x = 2, F = -79/9)"),
    _bolib_case("TuyEtal1994", "bolib-linear", _milp_exact("TuyEtal1994"), "milp", "BOLIB best 6"),
    _bolib_case("Bard1988Ex1", "bolib-nonlinear", exact_bard1988ex1, "reduction", "BOLIB best 17"),
    _bolib_case("ClarkWesterberg1990a", "bolib-nonlinear", exact_clarkwesterberg1990a, "reduction", "BOLIB best 5"),
    # DeSilva1978: y = clip(x, 1/2, 3/2) per coordinate; (x-1)^2 + clip(x)^2 is 1/2 at x = 1/2 and >= 1/2
    # elsewhere, so F* = 1/2 + 1/2 - 2 = -1.
    _bolib_case("DeSilva1978", "bolib-nonlinear", _const(-1.0), "hand", "BOLIB best -1"),
    # FalkLiu1995: y = clip(x, 1/2, 3/2); (x-3/2)^2 + x^2 on [1/2, 3/2] is 9/8 at x = 3/4 (for x < 1/2
    # it is (x-3/2)^2 + 1/4 > 5/4), so F* = 9/8 + 9/8 - 9/2 = -9/4 (BOLIB lists -2.1962, not optimal).
    _bolib_case("FalkLiu1995", "bolib-nonlinear", _const(-2.25), "hand", "BOLIB best -2.1962 is not optimal"),
    _bolib_case("LamparielloSagratella2017Ex35", "bolib-nonlinear", exact_ls2017ex35, "reduction", "BOLIB best 0.8"),
    # FrankeEtal2018Ex511: y1 >= |y2|, the LP follower's optimal set is {(t, -t, 0): t >= 0}; the
    # optimistic leader takes t = 1: F = 1/2 + 2 + 1/2 = 3.
    _bolib_case("FrankeEtal2018Ex511", "bolib-simple", _const(3.0), "hand", "BOLIB best 3"),
    # FrankeEtal2018Ex53: y1 = 1 (closest to 2 in [0, 1]), y2 in [0, 1] free: optimistic y2 = 0, F = 1.
    _bolib_case("FrankeEtal2018Ex53", "bolib-simple", _const(1.0), "hand", "BOLIB best 1"),
    # MitsosBarton2006Ex31: the follower maximises y on [-1, 1]: y = 1, F = 1.
    _bolib_case("MitsosBarton2006Ex31", "bolib-simple", _const(1.0), "hand", "BOLIB best 1"),
]

BY_NAME = {c.name: c for c in CASES}


def data_fingerprint() -> str:
    """A digest of the generated data, compared between the two environments (same RNG streams)."""
    import hashlib
    parts = [*_ridge_data(), *_rw_data(), _dr_data(), _ct_response(0.75), *_dc_reply(0.035, 0.16),
             *_dc_reply(0.5, 0.5), *_truss_data()[:3]]
    return hashlib.sha256(b"".join(np.round(a, 12).tobytes() for a in parts)).hexdigest()[:16]

"""Feasibility and KKT residuals of a follower point, with absolute tolerances.

For the follower  min_y f(x, y)  s.t.  g(x, y) >= 0,  h(x, y) = 0  and multipliers
(lam, mu) in the sign convention L = f - lam^T g - mu^T h:

    stationarity     r = grad_y f - J_g^T lam - J_h^T mu          (max |r_j|)
    sign             max(0, -min lam)
    complementarity  max |lam_i g_i|
    feasibility      max(max(0, -g_i), |h_k|)

Why absolute: a tolerance relative to |f| lets a constraint violated by 4.5 pass when f
carries an offset of 1e7. Each residual is compared with its own tolerance; the
stationarity tolerance is relative to the size of the gradient terms it balances
(1 + max |grad_y f|), which does not change when a constant is added to f.

A convex follower (f convex, g concave, h affine in y) at a point with these residuals
zero is globally optimal: for any feasible y', f(y') - f(y) >= sum_i lam_i (g_i(y') -
g_i(y)) + r^T (y' - y) >= -sum_i lam_i g_i(y) + r^T (y' - y).
"""
from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..reformulate.bilevel2mpcc import lagrangian


@dataclass(frozen=True)
class KKTResiduals:
    """Residuals of the follower's KKT conditions at (x, y, lam, mu)."""

    stationarity: float
    sign: float
    complementarity: float
    gradient_scale: float       # 1 + max |grad_y f|, the stationarity's natural scale

    def holds(self, tol: float) -> bool:
        return (self.stationarity <= tol * self.gradient_scale and self.sign <= tol
                and self.complementarity <= tol * self.gradient_scale)


def _kkt_function(lp: LoweredProblem) -> ca.Function:
    key = "certificate_kkt_residuals"

    def make() -> ca.Function:
        sym = type(lp.y)
        ng, nh = int(lp.g.numel()), int(lp.h.numel())
        lam, mu = sym.sym("lam", ng), sym.sym("mu", nh)
        grad_f = ca.gradient(lp.f, lp.y)
        r = ca.gradient(lagrangian(lp, lam, mu), lp.y)
        return ca.Function(key, [lp.x, lp.y, lp.p, lam, mu], [r, grad_f, lp.g],
                           ["x", "y", "p", "lam", "mu"], ["r", "grad_f", "g"])
    return lp.cached(key, make)


def kkt_residuals(lp: LoweredProblem, x, y, p, lam, mu) -> KKTResiduals:
    """The follower's KKT residuals (see module docstring)."""
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    lam = np.zeros(ng) if lam is None else np.asarray(lam, float).reshape(-1)
    mu = np.zeros(nh) if mu is None else np.asarray(mu, float).reshape(-1)
    r, grad_f, g = (np.asarray(v, float).reshape(-1) for v in _kkt_function(lp)(x, y, p, lam, mu))
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(lam)) and np.all(np.isfinite(mu))):
        return KKTResiduals(np.inf, np.inf, np.inf, 1.0)
    return KKTResiduals(
        stationarity=float(np.max(np.abs(r), initial=0.0)),
        sign=float(max(0.0, -np.min(lam, initial=0.0))),
        complementarity=float(np.max(np.abs(lam * g), initial=0.0)),
        gradient_scale=1.0 + float(np.max(np.abs(grad_f), initial=0.0)),
    )


def infeasibility(lp: LoweredProblem, x, y, p, level: str) -> float:
    """Largest absolute violation of one level's constraints (0 when feasible)."""
    ineq = lp.evaluate("lower_ineq" if level == "lower" else "upper_ineq", x, y, p)
    eq = lp.evaluate("lower_eq" if level == "lower" else "upper_eq", x, y, p)
    v = [0.0]
    if ineq.size:
        v.append(float(np.max(np.maximum(-ineq, 0.0))))
    if eq.size:
        v.append(float(np.max(np.abs(eq))))
    return max(v)


def leader_bound_violation(x, lo, hi) -> float:
    """How far x lies outside the leader's simple bounds (must be exactly 0 for "optimal")."""
    x = np.asarray(x, float)
    return float(max(np.max(np.maximum(lo - x, 0.0), initial=0.0), np.max(np.maximum(x - hi, 0.0), initial=0.0)))

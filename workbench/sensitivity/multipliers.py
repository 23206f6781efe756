"""Hypergradient of a leader objective that uses follower multipliers.

With F = F(z, y*(z), nu*(z)) (z = [x; p], nu = [lam; mu] the follower's multipliers,
``wb.multiplier``), the chain rule adds the multiplier term to the usual one:

    dF/dz = F_z + (dy*/dz)^T F_y + (dnu*/dz)^T F_nu,

where dnu*/dz is ``Sensitivity.dlam_dx`` (rows: inequalities, then equalities — the order of
nu). The adjoint shortcut (one transposed solve with [F_y; 0]) would drop the last term, so
for such an F the forward derivatives are used.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from .kkt_matrix import z_symbols

KEY = "sensitivity_upper_gradient_nu"


def upper_gradients_nu(lp: LoweredProblem, x, y, p, lam, mu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_z F, grad_y F, grad_nu F) at (x, y, p, lam, mu)."""
    z = z_symbols(lp)
    fn = lp.cached(KEY, lambda: ca.Function(
        KEY, [lp.x, lp.y, lp.p, lp.lam_sym, lp.mu_sym],
        [ca.gradient(lp.F, z), ca.gradient(lp.F, lp.y), ca.gradient(lp.F, lp.nu_sym)]))
    outs = fn(x, y, p, lam, mu)
    return tuple(np.asarray(o, float).reshape(-1) for o in outs)


def chain_rule(Fz: np.ndarray, Fy: np.ndarray, Fnu: np.ndarray, dy: np.ndarray, dnu: np.ndarray) -> np.ndarray:
    """F_z + dy^T F_y + dnu^T F_nu (NaN where a derivative is undefined propagates)."""
    return Fz + dy.T @ Fy + dnu.T @ Fnu

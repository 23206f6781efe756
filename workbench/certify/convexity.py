"""A rigorous (sufficient) convexity test of the follower at a given leader point.

If f is quadratic in y with a positive semidefinite Hessian at (x, p) and every
g, h is affine in y, the follower is a convex QP at that x: its KKT points are
global minimisers and the certificate is exact. Anything else is "not shown
convex" (which is not the same as nonconvex).
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..lower import LoweredProblem


def _structure(lp: LoweredProblem) -> bool:
    if not ca.is_quadratic(lp.f, lp.y):
        return False
    for block in (lp.g, lp.h):
        if block.numel() and not ca.is_linear(block, lp.y):
            return False
    return True


def follower_is_convex(lp: LoweredProblem, x: np.ndarray, p: np.ndarray) -> bool:
    """True when the follower is provably a convex QP at (x, p)."""
    if not _structure(lp):
        return False
    key = "follower_hessian"
    if key not in lp.functions:
        lp.functions[key] = ca.Function(key, [lp.x, lp.y, lp.p], [ca.hessian(lp.f, lp.y)[0]],
                                        ["x", "y", "p"], ["hess_yy_f"])
    H = np.asarray(lp.functions[key](x, np.zeros(lp.n_y), p), float)
    H = (H + H.T) / 2
    return bool(np.min(np.linalg.eigvalsh(H)) >= -1e-10 * max(1.0, np.abs(H).max()))

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


def _psd_sparse(H: ca.DM, tol: float) -> bool:
    """No eigenvalue below -tol: the inertia of an LDL^T factorisation of H + tol*I
    (Sylvester's law of inertia), sparse and without forming H densely."""
    shifted = H + tol * ca.DM.eye(H.size1())
    solver = ca.Linsol("follower_inertia", "ldl", shifted.sparsity())
    solver.sfact(shifted)
    solver.nfact(shifted)
    return int(solver.neig(shifted)) == 0


def follower_is_convex(lp: LoweredProblem, x: np.ndarray, p: np.ndarray) -> bool:
    """True when the follower is provably a convex QP at (x, p)."""
    structure = getattr(lp, "_follower_qp_structure", None)
    if structure is None:
        structure = lp._follower_qp_structure = _structure(lp)
    if not structure:
        return False
    key = "follower_hessian"
    if key not in lp.functions:
        lp.functions[key] = ca.Function(key, [lp.x, lp.y, lp.p], [ca.hessian(lp.f, lp.y)[0]],
                                        ["x", "y", "p"], ["hess_yy_f"])
    Hs = lp.functions[key](x, np.zeros(lp.n_y), p)
    if lp.n_y > 200:  # large followers: sparse inertia instead of a dense O(n^3) eigensolve
        Hs = (Hs + Hs.T) / 2
        scale = float(np.max(np.abs(Hs.nonzeros()))) if Hs.nnz() else 0.0
        return _psd_sparse(Hs, 1e-10 * max(1.0, scale))
    H = np.asarray(Hs, float)
    H = (H + H.T) / 2
    return bool(np.min(np.linalg.eigvalsh(H)) >= -1e-10 * max(1.0, np.abs(H).max()))

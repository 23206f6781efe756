"""A rigorous (sufficient) convexity test of the follower at a given leader point.

The follower is convex at x when f is a quadratic in y with a positive semidefinite
Hessian, every h is affine in y and every g (g >= 0) is affine or a quadratic in y with a
negative semidefinite Hessian (a concave g gives a convex feasible set), or one sheet of a
second-order cone (``curvature.second_order_cone_row``). Quadratics in y
have Hessians that do not depend on y, so one evaluation at (x, p) decides. Followers that
are not quadratic are tested by the DCP composition rules (``curvature.py``). Then its KKT
points are global minimisers and the certificate is exact. Anything else is "not shown
convex" (which is not the same as nonconvex).
"""
from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np

from ..lower import LoweredProblem


def _structure(lp: LoweredProblem) -> list[int] | None:
    """Indices of the quadratic (non-affine) rows of g, or None when the structure rules convexity out."""
    if not ca.is_quadratic(lp.f, lp.y):
        return None
    if lp.h.numel() and not ca.is_linear(lp.h, lp.y):
        return None
    if not lp.g.numel() or ca.is_linear(lp.g, lp.y):  # one pass over the block: O(size), not O(rows * n_y)
        return []
    quad = []
    for i in range(int(lp.g.numel())):
        gi = lp.g[i]
        if ca.is_linear(gi, lp.y):
            continue
        if not ca.is_quadratic(gi, lp.y):
            return None
        quad.append(i)
    return quad


def _is_psd(H: ca.DM, tol: float = 1e-10) -> bool:
    """PSD test that stays sparse: Gershgorin first (cheap, sufficient), then eigenvalues."""
    S = H.sparse()
    S = (S + S.T) / 2
    if S.shape[0] == 0:
        return True
    scale = max(1.0, float(abs(S).max()))
    diag = S.diagonal()
    off = np.asarray(abs(S).sum(axis=1)).reshape(-1) - np.abs(diag)
    if np.all(diag - off >= -tol * scale):
        return True
    if S.shape[0] <= 400:
        return float(np.min(np.linalg.eigvalsh(S.toarray()))) >= -tol * scale
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh
    try:
        smallest = eigsh(S.tocsc(), k=1, which="SA", return_eigenvectors=False, tol=1e-8)[0]
    except ArpackNoConvergence:  # undecided means "not shown convex": the certificate then multistarts
        return False
    return float(smallest) >= -1e-8 * scale


def follower_is_convex(lp: LoweredProblem, x: np.ndarray, p: np.ndarray) -> bool:
    """True when the follower is provably convex at (x, p) (see module docstring); the verdict is
    cached per leader point (a search certifies many candidates at the same x)."""
    x = np.asarray(x, float).reshape(-1)
    p = np.asarray(p, float).reshape(-1)
    memo = lp.cached("follower_convexity_at", dict)
    k = (x.tobytes(), p.tobytes())
    if k not in memo:
        if len(memo) >= 256:
            memo.pop(next(iter(memo)))
        memo[k] = _follower_is_convex(lp, x, p)
    return memo[k]


def _follower_is_convex(lp: LoweredProblem, x: np.ndarray, p: np.ndarray) -> bool:
    def make() -> tuple[Any, Any]:
        quad = _structure(lp)
        if quad is None:
            return None, None
        hessians = [ca.hessian(lp.f, lp.y)[0]] + [-ca.hessian(lp.g[i], lp.y)[0] for i in quad]
        return quad, ca.Function("follower_convexity", [lp.x, lp.y, lp.p], hessians)
    quad, fn = lp.cached("follower_convexity", make)
    if fn is None:  # not quadratic: the DCP composition rules may still show convexity
        from .curvature import follower_is_dcp_convex
        return follower_is_dcp_convex(lp, x, p)
    out = fn(x, np.zeros(lp.n_y), p)
    out = out if isinstance(out, (list, tuple)) else [out]
    if not _is_psd(out[0]):
        return False
    from .curvature import second_order_cone_row  # a non-concave quadratic row may still be a cone
    return all(_is_psd(H) or second_order_cone_row(lp, i, x, p) for i, H in zip(quad, out[1:]))

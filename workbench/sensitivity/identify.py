"""Which follower inequalities are active at an Ipopt reply: one exact QP step.

Why: an interior-point solver stops with g_i * lam_i ~ its barrier parameter, so next to
a degenerate point (a row with g_i = 0 and lam_i = 0 at a nearby leader point) both g_i
and lam_i are small and the rule "active when lam_i > g_i" can pick the wrong side. At a
leader point x0 + h d with h = 1e-6 the true g_i and lam_i are themselves O(h), while
Ipopt leaves errors of 1e-7 to 1e-4 in them (seen: lam_i = 1.2e-4 on a row that is
inactive with g_i = 4.5e-7), so no threshold separates them. Polishing on a wrong active
set then gives a reply that violates a constraint by ~1e-7 (or is rejected), and one-sided
differences of re-solved replies are off by O(1).

A complementarity solver does not have this problem. From the Ipopt point (y, lam, mu),
take one SQP step in which the rows that are clearly active (lam_i >= 1e-3, g_i small) are
equalities E, the rows that are clearly inactive (g_i > 1e-3) are dropped, and the
ambiguous rest W are inequalities:

    min_dy  1/2 dy' H dy + grad_y f' dy
    s.t.    g_E + J_E dy = 0,  h + J_h dy = 0,  g_W + J_W dy >= 0,    H = grad^2_yy L.

With the KKT matrix K_E of E (one sparse LU), dy = dy0 + Y eta is affine in the W
multipliers eta >= 0, and the W values are w = q + M eta with M = J_W Y positive
semidefinite: the small monotone LCP of ``lcp.py`` (HiGHS, then exact on its support).
For a QP follower the step is exact, so the rows with eta_i > w_i are the active set of
the reply; for a nonlinear one it is the SQP prediction, right close to a solution with
the second-order condition. The thresholds only decide how much is left to the LCP: the
caller polishes on the returned set and keeps it only if the polished point is primal and
dual feasible. None when the step cannot be taken (singular K_E, LCP not solved).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from ..errors import MethodError
from ..lower import LoweredProblem
from .kkt_matrix import KKTPieces
from .lcp import solve_lcp

CLEAR = 1e-3  # far above Ipopt's error in g and lam, far below the values of clearly (in)active rows


def qp_active_set(lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                  lam: np.ndarray, mu: np.ndarray) -> np.ndarray | None:
    """Bool per inequality: active after the SQP step above; None if it could not be taken."""
    k = KKTPieces(lp, x, y, p, lam, mu)
    n = lp.n_y
    near = k.g <= CLEAR * max(1.0, float(np.max(np.abs(y), initial=0.0)))
    E = near & (lam >= CLEAR * max(1.0, float(np.max(np.abs(lam), initial=0.0))))
    W = near & ~E
    if not W.any():
        return E
    grad_f = k.grad + k.Jg_y.T @ lam + k.Jh_y.T @ mu  # grad_y L + J' multipliers = grad_y f
    try:
        lu = spla.splu(k.matrix(E), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError:  # E's gradients dependent (LICQ fails): leave it to the other guesses
        return None
    # K_E [dy; -nu] = [-grad_f + J_W' eta; -g_E; -h]
    x0 = lu.solve(np.concatenate([-grad_f, -k.g[E], -k.h]))
    J_W = k.Jg_y.tocsr()[np.flatnonzero(W)]
    rhs = sps.vstack([J_W.T, sps.csr_matrix((x0.size - n, J_W.shape[0]))]).toarray()
    Y = lu.solve(rhs)[:n]
    q = k.g[W] + J_W @ x0[:n]
    M = J_W @ Y
    try:
        eta = solve_lcp((M + M.T) / 2, q, {})
    except MethodError:
        return None
    active = E.copy()
    active[np.flatnonzero(W)] = eta > q + M @ eta
    return active


__all__ = ["qp_active_set"]

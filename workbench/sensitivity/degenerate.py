"""Honest answers at degenerate points: constraint-qualification and curvature checks and
non-unique multipliers (one-sided derivatives: ``directional.py``).

Dense linear algebra is used here on purpose: these checks are for small and
moderate systems; large regular systems never reach the dense branches.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..errors import MethodError
from .kkt_matrix import KKTPieces

DENSE_LIMIT = 400  # above this the dense checks are skipped and recorded as not done
MIN_NORM_LIMIT = 4000
LICQ_TOL = 1e-9


def _svd(k: KKTPieces, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and right singular vectors of the active Jacobian (cached on ``k``)."""
    cache = k.__dict__.setdefault("_svd_cache", {})
    key = np.asarray(rows, dtype=bool).tobytes()
    if key not in cache:
        J, _ = k.constraint_rows(rows)
        _, s, Vt = np.linalg.svd(J.toarray(), full_matrices=True)
        cache[key] = (s, Vt)
    return cache[key]


def full_row_rank(J: np.ndarray, tol: float = LICQ_TOL) -> bool:
    """sigma_min > tol * max(1, sigma_max) for a dense Jacobian (the LICQ test of both paths).

    Rows with disjoint supports (bounds: one variable per constraint) are orthogonal, so
    their singular values are the row norms and no SVD is needed.
    """
    if J.shape[0] == 0:
        return True
    if J.shape[0] > J.shape[1]:
        return False
    if np.count_nonzero(J, axis=0).max() <= 1:
        s = np.sqrt(np.einsum("ij,ij->i", J, J))
    else:
        s = np.linalg.svd(J, compute_uv=False)
    return bool(s.min() > tol * max(1.0, s.max()))


def licq_holds(k: KKTPieces, rows: np.ndarray, tol: float = LICQ_TOL) -> bool | None:
    """Full row rank of the Jacobian of the constraints in ``rows`` (plus equalities); None if too big."""
    J, _ = k.constraint_rows(rows)
    if J.shape[0] > J.shape[1]:
        return False
    if J.shape[0] and J.shape[1] > DENSE_LIMIT:
        return None
    return full_row_rank(J.toarray(), tol)


def reduced_hessian_min_eig(k: KKTPieces, rows: np.ndarray, tol: float = 0.0) -> float | None:
    """Smallest eigenvalue of Z^T H Z on the null space of the active Jacobian; None if too big.

    When a Cholesky factorisation of Z^T H Z - tol I succeeds the answer is only known to
    exceed ``tol``, and ``tol`` is not returned: +inf stands for "positive definite beyond tol".
    """
    n = k.n
    if n > DENSE_LIMIT:
        return None
    J, _ = k.constraint_rows(rows)
    Hd = k.H.toarray()
    if J.shape[0]:
        s, Vt = _svd(k, rows)
        rank = int(np.sum(s > 1e-10 * max(1.0, s[0]))) if s.size else 0
        Z = Vt[rank:].T
        if Z.shape[1] == 0:
            return np.inf
        Hr = Z.T @ Hd @ Z
    else:
        Hr = Hd
    try:
        np.linalg.cholesky(Hr - tol * np.eye(Hr.shape[0]))
        return np.inf
    except np.linalg.LinAlgError:
        return float(np.linalg.eigvalsh(Hr)[0])


def min_norm_solve(K, R):
    """Minimum-norm solution of a singular KKT system and a basis of its null space."""
    if K.shape[0] > MIN_NORM_LIMIT:
        raise MethodError(f"the KKT matrix ({K.shape[0]} rows) is singular (LICQ fails) and too large for the "
                          f"dense minimum-norm solve (limit {MIN_NORM_LIMIT}); remove redundant follower constraints")
    Kd = K.toarray()
    Rd = R.toarray() if hasattr(R, "toarray") else np.asarray(R)
    X = sla.lstsq(Kd, Rd)[0]
    N = sla.null_space(Kd, rcond=1e-10)
    return X, N

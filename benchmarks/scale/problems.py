"""The two scaling families of benchmarks/scale, declared with ``VectorBilevelProblem.from_arrays``.

ridge(n):   leader picks one ridge weight 0 <= lam_i <= 10 per feature to minimise the validation
            loss ½‖X_val w − t_val‖² + 0.005‖lam‖² (a weak prior on the weights: without it and with
            lam <= 1e3, Ipopt needed 555 iterations at n = 10³ and hit its 3000-iteration limit
            at 10⁴, the leader being nearly flat where lam_i is large); follower fits w = argmin ½‖X w − t‖² + ½ Σ lam_i w_i².
            X, X_val are sparse (5 nonzeros per row inside a sliding window of 8 features, 2n
            training and n validation rows), so XᵀX is banded with O(n) nonzeros. n_x = n_y = n; no follower inequalities.
box_qp(n):  follower min ½ yᵀQy + (c + C x)ᵀy over 0 <= y <= 1 (Q banded, diagonally
            dominant: tridiagonal plus 3 random couplings per row within 8 neighbours); leader x in [-5, 5]^10 tracks a
            target: min ½‖y − y_t‖² + 0.005‖x‖². n_y = n, 2n complementarity pairs.
Data are seeded, so every run sees the same instances.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sps

from workbench.model.vector import VectorBilevelProblem


def _sparse_rows(rows: int, cols: int, per_row: int, rng: np.random.Generator, window: int = 8) -> sps.csr_matrix:
    """Row i touches ``per_row`` features inside a sliding window (a local, convolution-like
    design): XᵀX is then banded, so its sparse factorisation has bounded fill. (Random
    columns make XᵀX an expander graph whose Cholesky factor fills in almost completely.)"""
    first = np.minimum((np.arange(rows) * cols) // rows, cols - window)
    j = np.concatenate([f + rng.choice(window, per_row, replace=False) for f in first])
    i = np.repeat(np.arange(rows), per_row)
    return sps.csr_matrix((rng.normal(size=i.size), (i, j)), shape=(rows, cols))


def ridge(n: int, seed: int = 0) -> VectorBilevelProblem:
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=n) * (rng.random(n) < 0.3)  # sparse truth: strong shrinkage pays
    X, Xv = _sparse_rows(2 * n, n, 5, rng), _sparse_rows(n, n, 5, rng)
    t = X @ w_true + 0.5 * rng.normal(size=2 * n)
    tv = Xv @ w_true + 0.5 * rng.normal(size=n)
    return VectorBilevelProblem.from_arrays(
        (X.T @ X).tocsc(), -(X.T @ t), n_x=n, E=sps.identity(n, format="csc"),
        M=Xv, m=tv, P=0.01 * sps.identity(n, format="csc"), x_bounds=(0.0, 10.0), x_start=np.ones(n),
        name=f"ridge_{n}",
        leader_name="lam", follower_name="w")


def box_qp(n: int, n_x: int = 10, seed: int = 0) -> VectorBilevelProblem:
    rng = np.random.default_rng(seed)
    R = _sparse_rows(n, n, 3, rng) * 0.2
    Q = sps.diags([np.full(n - 1, -1.0), np.full(n, 4.0), np.full(n - 1, -1.0)], [-1, 0, 1]) + R + R.T
    Q = Q + sps.diags(np.asarray(abs(R + R.T).sum(axis=1)).ravel())  # keeps Q diagonally dominant
    C = sps.random(n, n_x, density=0.3, random_state=seed, format="csc")
    c = rng.normal(size=n)
    y_t = rng.random(n)
    return VectorBilevelProblem.from_arrays(
        Q.tocsc(), c, n_x=n_x, C=C, y_bounds=(0.0, 1.0), M=sps.identity(n, format="csc"), m=y_t,
        P=0.01 * sps.identity(n_x, format="csc"), x_bounds=(-5.0, 5.0), name=f"box_qp_{n}")


FAMILIES = {"ridge": ridge, "box_qp": box_qp}

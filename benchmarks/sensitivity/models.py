"""Large structured followers built directly in CasADi (no SymPy): each model is an object
with ``_lower()`` returning a :class:`~workbench.lower.LoweredProblem`, which is all the
sensitivity stage reads.
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import scipy.sparse as sps

from workbench.lower import LoweredProblem


def _dm(m: sps.spmatrix) -> ca.DM:
    m = sps.csc_matrix(m)
    m.sort_indices()
    return ca.DM(m)


def _banded_design(rng: np.random.Generator, rows: int, cols: int, width: int) -> sps.csr_matrix:
    """Each sample touches ``width`` consecutive features (a blur/deconvolution design)."""
    r, c = [], []
    for k in range(width):
        i = np.arange(rows)
        j = (i * cols) // rows + k
        keep = j < cols
        r.append(i[keep])
        c.append(j[keep])
    r, c = np.concatenate(r), np.concatenate(c)
    return sps.csr_matrix((rng.normal(size=r.size), (r, c)), shape=(rows, cols))


class Model:
    """A hand-lowered bilevel problem (the lowering is the model)."""

    def __init__(self, lp: LoweredProblem, x0: np.ndarray, info: dict):
        self.lp, self.x0, self.info = lp, x0, info
        self.name = lp.name

    def _lower(self) -> LoweredProblem:
        return self.lp


def _lowered(name, x, y, F, f, g, g_names, n_x, n_y, y_start):
    p = ca.SX.sym("p", 0)
    empty = ca.SX(0, 1)
    return LoweredProblem(x=x, y=y, p=p, F=F, G=empty, H=empty, f=f, g=g, h=empty, g_names=g_names,
                          h_names=[], G_names=[], H_names=[], p_default=np.zeros(0),
                          x_start=np.zeros(n_x), y_start=y_start, name=name)


def ridge(n: int, seed: int = 0) -> Model:
    """Ridge regression with one regularisation weight per feature:
    follower min_w 1/2 |A w - t|^2 + 1/2 sum_i x_i w_i^2, leader F = 1/2 |A_val w - t_val|^2."""
    rng = np.random.default_rng(seed)
    A = _banded_design(rng, 2 * n, n, 5)
    Av = _banded_design(rng, n, n, 5)
    w_true = rng.normal(size=n)
    t = A @ w_true + 0.3 * rng.normal(size=2 * n)
    tv = Av @ w_true + 0.3 * rng.normal(size=n)
    x, y = ca.SX.sym("x", n), ca.SX.sym("y", n)
    f = 0.5 * ca.sumsqr(ca.mtimes(_dm(A), y) - t) + 0.5 * ca.dot(x, y * y)
    F = 0.5 * ca.sumsqr(ca.mtimes(_dm(Av), y) - tv)
    lp = _lowered(f"ridge_{n}", x, y, F, f, ca.SX(0, 1), [], n, n, np.zeros(n))
    return Model(lp, rng.uniform(0.5, 2.0, n), {"n_y": n, "n_x": n, "n_g": 0})


def tridiagonal_box_qp(n: int, n_x: int = 10, seed: int = 0) -> Model:
    """follower min_y 1/2 y^T Q y + (c + B x)^T y s.t. y + 1 >= 0, 1 - y >= 0 (Q tridiagonal SPD),
    leader F = 1/2 |y - y_ref|^2 + 1/200 |x|^2."""
    rng = np.random.default_rng(seed)
    Q = sps.diags([-np.ones(n - 1), 2.1 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    B = rng.normal(size=(n, n_x)) / np.sqrt(n_x)
    c = 3.0 * rng.normal(size=n)
    x, y = ca.SX.sym("x", n_x), ca.SX.sym("y", n)
    f = 0.5 * ca.dot(y, ca.mtimes(_dm(Q), y)) + ca.dot(c + ca.mtimes(ca.DM(B), x), y)
    g = ca.vertcat(y + 1, 1 - y)
    names = [f"lb[{i}]" for i in range(n)] + [f"ub[{i}]" for i in range(n)]
    F = 0.5 * ca.sumsqr(y - rng.uniform(-0.5, 0.5, n)) + 0.005 * ca.sumsqr(x)
    lp = _lowered(f"tridiag_box_{n}", x, y, F, f, g, names, n_x, n, np.zeros(n))
    return Model(lp, 0.5 * rng.normal(size=n_x), {"n_y": n, "n_x": n_x, "n_g": 2 * n})


def degenerate_box_qp(n: int, n_weak: int = 6, n_x: int = 10, seed: int = 0) -> Model:
    """The tridiagonal box QP with a planted degenerate reply at x0: n_weak upper bounds weakly active
    (y_i = 1, lam_i = 0), n/10 strongly active (y_i = 1, lam_i = 1), the rest interior (|y_i| <= 0.9).
    c is chosen so that Q y* + c + B x0 + lam_ub - lam_lb = 0 holds exactly."""
    rng = np.random.default_rng(seed)
    Q = sps.diags([-np.ones(n - 1), 2.1 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tocsr()
    B = rng.normal(size=(n, n_x)) / np.sqrt(n_x)
    x0 = 0.5 * rng.normal(size=n_x)
    ystar = rng.uniform(-0.9, 0.9, n)
    rows = rng.permutation(n)
    weak, strong = rows[:n_weak], rows[n_weak: n_weak + n // 10]
    ystar[weak] = ystar[strong] = 1.0
    lam_ub = np.zeros(n)
    lam_ub[strong] = 1.0
    c = -(Q @ ystar) - B @ x0 - lam_ub
    x, y = ca.SX.sym("x", n_x), ca.SX.sym("y", n)
    f = 0.5 * ca.dot(y, ca.mtimes(_dm(Q), y)) + ca.dot(c + ca.mtimes(ca.DM(B), x), y)
    g = ca.vertcat(y + 1, 1 - y)
    names = [f"lb[{i}]" for i in range(n)] + [f"ub[{i}]" for i in range(n)]
    F = 0.5 * ca.sumsqr(y - rng.uniform(-0.5, 0.5, n)) + 0.005 * ca.sumsqr(x)
    lp = _lowered(f"degenerate_box_{n}", x, y, F, f, g, names, n_x, n, np.zeros(n))
    return Model(lp, x0, {"n_y": n, "n_x": n_x, "n_g": 2 * n, "n_weak": n_weak})

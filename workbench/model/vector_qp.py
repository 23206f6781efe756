"""The parametric sparse QP family behind ``VectorBilevelProblem.from_arrays``.

    follower  min_y ½ yᵀQy + ½ Σ_i (E x)_i y_i² + (c + C x)ᵀy
              s.t.  A y <= b + B x,  Aeq y = beq + Beq x,  y_lb <= y <= y_ub
    leader    min_x ½ xᵀPx + qᵀx + ½‖M y − m‖² + dᵀy   s.t. x_lb <= x <= x_ub

Also the data checks shared with :mod:`workbench.model.vector` (sparse matrices, bound pairs).
The blocks are small data classes holding SciPy/NumPy data (so the declaration pickles with
the standard library) that build CasADi expressions with sparse ``mtimes`` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
import scipy.sparse as sps

from ..errors import ModelError, ValueInputError
from .problem import finite_vector


def sparse_dm(data: Any, shape: tuple[int, int], what: str) -> ca.DM:
    """NumPy/SciPy data as a sparse CasADi matrix, checked for shape and finiteness."""
    try:
        m = sps.csc_matrix(data, dtype=float)
    except (TypeError, ValueError):
        raise ValueInputError(f"{what} must be a NumPy array or SciPy sparse matrix, got {type(data).__name__}") from None
    if m.shape != tuple(shape):
        raise ValueInputError(f"{what} has shape {m.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(m.data)):
        raise ValueInputError(f"{what} contains NaN or infinity; data must be finite")
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()  # CasADi wants canonical compressed-column storage
    return ca.DM(m)


def bounds_pair(bounds: Any, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A (lower, upper) pair of scalars/arrays/None as two checked length-n arrays."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ValueInputError(f"{what} must be a pair (lower, upper) of arrays or scalars") from None
    out = []
    for side, v, default in (("lower", lo, -np.inf), ("upper", hi, np.inf)):
        try:
            arr = np.asarray(default if v is None else v, dtype=float)
        except (TypeError, ValueError):
            raise ValueInputError(f"{what} {side} bound must be numbers, got {v!r}") from None
        arr = np.full(n, float(arr)) if arr.ndim == 0 else arr.reshape(-1).copy()
        if arr.size != n:
            raise ValueInputError(f"{what} {side} bound has {arr.size} entries, expected {n}")
        if np.isnan(arr).any():
            raise ValueInputError(f"{what} {side} bound entry {int(np.flatnonzero(np.isnan(arr))[0])} is NaN")
        out.append(arr)
    if np.any(out[0] > out[1]):
        i = int(np.flatnonzero(out[0] > out[1])[0])
        raise ValueInputError(f"{what}: lower bound {out[0][i]} exceeds upper bound {out[1][i]} at entry {i}")
    return out[0], out[1]


def qp_from_arrays(cls: Any, Q: Any, c: Any = None, *, n_x: int, C: Any = None, E: Any = None,
                A: Any = None, b: Any = None, B: Any = None, Aeq: Any = None, beq: Any = None,
                Beq: Any = None, y_bounds: Any = None, P: Any = None, q: Any = None, M: Any = None,
                m: Any = None, d: Any = None, x_bounds: Any = None, **kwargs: Any) -> Any:
    """The parametric sparse QP family of the module docstring, from NumPy/SciPy data."""
    try:
        n_y = int(sps.csc_matrix(Q).shape[0])
    except (TypeError, ValueError):
        raise ValueInputError(f"Q must be a square NumPy array or SciPy sparse matrix, got {type(Q).__name__}") from None
    n_x = int(n_x)
    if n_x < 1:
        raise ModelError(f"n_x must be a positive integer, got {n_x}")
    mat = lambda v, shape, what: None if v is None else _checked(v, shape, what)  # noqa: E731
    vec = lambda v, n, what: np.zeros(n) if v is None else finite_vector(v, n, what)  # noqa: E731
    Qm = _checked(Q, (n_y, n_y), "Q")
    follower = _FollowerQP((Qm + Qm.T) / 2, vec(c, n_y, "c"), mat(C, (n_y, n_x), "C"), mat(E, (n_y, n_x), "E"))
    if M is not None and m is None:
        raise ValueInputError("M is given without m: the leader term is ½‖M y − m‖²; pass m")
    Mm = None if M is None else _checked(M, (sps.csc_matrix(M).shape[0], n_y), "M")
    leader = _LeaderQP(mat(P, (n_x, n_x), "P"), vec(q, n_x, "q"), Mm,
                       None if Mm is None else vec(m, Mm.shape[0], "m"), vec(d, n_y, "d"))
    ineq, eq = {}, {}
    for store, key, A_, b_, B_ in ((ineq, "A", A, b, B), (eq, "Aeq", Aeq, beq, Beq)):
        if A_ is None:
            if b_ is not None or B_ is not None:
                raise ValueInputError(f"{key} is missing but its right-hand side is given")
            continue
        Am = _checked(A_, (sps.csc_matrix(A_).shape[0], n_y), key)
        r = Am.shape[0]
        store[key] = _AffineRows(Am, vec(b_, r, f"right-hand side of {key}"), mat(B_, (r, n_x), f"{key}'s B"))
    return cls(n_x, n_y, leader, follower, lower_ineq=ineq, lower_eq=eq, x_bounds=x_bounds,
               y_bounds=y_bounds, **kwargs)




def _checked(data: Any, shape: tuple[int, int], what: str) -> sps.csc_matrix:
    """Sparse copy of user data after the shape/finiteness checks of :func:`sparse_dm`."""
    sparse_dm(data, shape, what)
    m = sps.csc_matrix(data, dtype=float)
    m.sum_duplicates()
    m.sort_indices()
    return m


def _dm(m: Any) -> Any:
    if sps.issparse(m):
        m = sps.csc_matrix(m)
        m.sum_duplicates()
        m.sort_indices()
        return ca.DM(m)
    return ca.DM(np.asarray(m, float))


@dataclass
class _FollowerQP:
    """f = ½ yᵀQy + ½ Σ_i (E x)_i y_i² + (c + C x)ᵀy (picklable: plain SciPy/NumPy data)."""

    Q: Any
    c: np.ndarray
    C: Any = None
    E: Any = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        f = 0.5 * ca.dot(y, ca.mtimes(_dm(self.Q), y)) + ca.dot(_dm(self.c), y)
        if self.C is not None:
            f += ca.dot(ca.mtimes(_dm(self.C), x), y)
        if self.E is not None:
            f += 0.5 * ca.dot(ca.mtimes(_dm(self.E), x), y * y)
        return f

    # NumPy/SciPy derivatives (the protocol of workbench.solve.smooth_follower.numeric_blocks;
    # Q is symmetric: qp_from_arrays stores (Q + Qᵀ)/2)
    def numeric(self, x: Any, y: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """(f, ∇_x f, ∇_y f): ∇_y f = Qy + (Ex) ⊙ y + c + Cx, ∇_x f = ½ Eᵀ(y ⊙ y) + Cᵀy."""
        x, y = np.asarray(x, float).reshape(-1), np.asarray(y, float).reshape(-1)
        Qy = self.Q @ y
        lin = self.c + (0.0 if self.C is None else self.C @ x)
        ex = 0.0 if self.E is None else self.E @ x
        val = 0.5 * y @ Qy + lin @ y + (0.0 if self.E is None else 0.5 * ex @ (y * y))
        gx = np.zeros(x.size)
        if self.C is not None:
            gx = gx + self.C.T @ y
        if self.E is not None:
            gx = gx + 0.5 * (self.E.T @ (y * y))
        return float(val), np.asarray(gx).reshape(-1), np.asarray(Qy + ex * y + lin).reshape(-1)

    def hessian_vector(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """(Q + diag(E x)) v."""
        v = np.asarray(v, float).reshape(-1)
        ex = 0.0 if self.E is None else self.E @ np.asarray(x, float).reshape(-1)
        return np.asarray(self.Q @ v + ex * v).reshape(-1)

    def mixed(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """∇_x(∇_y f · v) = Eᵀ(y ⊙ v) + Cᵀv."""
        y, v = np.asarray(y, float).reshape(-1), np.asarray(v, float).reshape(-1)
        out = np.zeros(np.size(x))
        if self.C is not None:
            out = out + self.C.T @ v
        if self.E is not None:
            out = out + self.E.T @ (y * v)
        return np.asarray(out).reshape(-1)


@dataclass
class _LeaderQP:
    """F = ½ xᵀPx + qᵀx + ½‖M y − m‖² + dᵀy."""

    P: Any
    q: np.ndarray
    M: Any
    m: Any
    d: np.ndarray

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        F = ca.dot(_dm(self.q), x) + ca.dot(_dm(self.d), y)
        if self.P is not None:
            F += 0.5 * ca.dot(x, ca.mtimes(_dm(self.P), x))
        if self.M is not None:
            F += 0.5 * ca.sumsqr(ca.mtimes(_dm(self.M), y) - _dm(self.m))
        return F

    def numeric(self, x: Any, y: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """(F, ∇_x F, ∇_y F): ∇_x F = ½(P + Pᵀ)x + q, ∇_y F = Mᵀ(My − m) + d."""
        x, y = np.asarray(x, float).reshape(-1), np.asarray(y, float).reshape(-1)
        val, gx, gy = self.q @ x + self.d @ y, self.q.copy(), self.d.copy()
        if self.P is not None:
            Px, PTx = self.P @ x, self.P.T @ x
            val, gx = val + 0.5 * x @ Px, gx + 0.5 * (Px + PTx)
        if self.M is not None:
            r = self.M @ y - self.m
            val, gy = val + 0.5 * r @ r, gy + self.M.T @ r
        return float(val), np.asarray(gx).reshape(-1), np.asarray(gy).reshape(-1)


@dataclass
class _AffineRows:
    """Rows b + B x − A y (>= 0 for A y <= b + B x; == 0 for equalities)."""

    A: Any
    b: np.ndarray
    B: Any = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        r = _dm(self.b) - ca.mtimes(_dm(self.A), y)
        if self.B is not None:
            r += ca.mtimes(_dm(self.B), x)
        return r

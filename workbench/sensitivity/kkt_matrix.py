"""CasADi pieces of the follower's KKT sensitivity system, built once per problem.

With L = f - lam^T g - mu^T h and the active constraints c_A = [g_A; h] (multipliers
nu = [lam_A; mu]), differentiating grad_y L = 0 and c_A = 0 in a leader/parameter
direction z gives

    [H    J^T] [ dy/dz    ]     [ L_yz  ]
    [J    0  ] [ -dnu/dz  ] = - [ c_z   ]      H = grad^2_yy L, J = grad_y c_A,

a symmetric system (the sign of the multiplier block is folded into the unknown).
The derivative matrices come from exact CasADi second derivatives, sparse.
"""
from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np
import scipy.sparse as sps

from ..lower import LoweredProblem
from ..reformulate.bilevel2mpcc import lagrangian
from .threads import per_thread

KEY = "sensitivity_kkt"
UPPER_KEY = "sensitivity_upper_gradient"


def z_symbols(lp: LoweredProblem) -> Any:
    """The variables we differentiate with respect to: leader x, then parameters p."""
    return ca.vertcat(lp.x, lp.p)


def kkt_function(lp: LoweredProblem) -> ca.Function:
    """Function (x, y, p, lam, mu) -> (grad_y L, H, L_yz, g, Jg_y, Jg_z, h, Jh_y, Jh_z), cached on lp."""
    def make() -> ca.Function:
        lam = ca.SX.sym("lam", lp.g.numel()) if isinstance(lp.y, ca.SX) else ca.MX.sym("lam", lp.g.numel())
        mu = ca.SX.sym("mu", lp.h.numel()) if isinstance(lp.y, ca.SX) else ca.MX.sym("mu", lp.h.numel())
        z = z_symbols(lp)
        L = lagrangian(lp, lam, mu)
        grad = ca.gradient(L, lp.y)
        H = ca.jacobian(grad, lp.y)
        outs = [grad, H, ca.jacobian(grad, z), lp.g, ca.jacobian(lp.g, lp.y), ca.jacobian(lp.g, z),
                lp.h, ca.jacobian(lp.h, lp.y), ca.jacobian(lp.h, z)]
        names = ["grad", "H", "L_yz", "g", "Jg_y", "Jg_z", "h", "Jh_y", "Jh_z"]
        return ca.Function(KEY, [lp.x, lp.y, lp.p, lam, mu], outs, ["x", "y", "p", "lam", "mu"], names)
    return lp.cached(KEY, make)


def upper_gradient_function(lp: LoweredProblem) -> ca.Function:
    """Function (x, y, p) -> (grad_z F, grad_y F) for the hypergradient, cached on lp."""
    z = z_symbols(lp)
    return lp.cached(UPPER_KEY, lambda: ca.Function(
        UPPER_KEY, [lp.x, lp.y, lp.p], [ca.gradient(lp.F, z), ca.gradient(lp.F, lp.y)], ["x", "y", "p"], ["F_z", "F_y"]))


def to_csc(m: Any) -> sps.csc_matrix:
    """A CasADi DM (sparse) as a SciPy CSC matrix without densifying."""
    m = ca.DM(m)
    sp_ = m.sparsity()
    colind, row = sp_.get_ccs()
    return sps.csc_matrix((np.asarray(m.nonzeros(), dtype=float), np.asarray(row, dtype=np.int64),
                           np.asarray(colind, dtype=np.int64)), shape=(m.size1(), m.size2()))


class _Evaluator:
    """Numeric evaluation of a CasADi Function straight into NumPy buffers (no DM round trip)."""

    def __init__(self, f: ca.Function):
        self.f = f
        self.buf, self.run = f.buffer()
        self.res = []
        self.pattern = []
        for j in range(f.n_out()):
            sp_ = f.sparsity_out(j)
            colind, row = sp_.get_ccs()
            self.pattern.append((np.asarray(row, dtype=np.int64), np.asarray(colind, dtype=np.int64),
                                 (sp_.size1(), sp_.size2())))
            r = np.zeros(sp_.nnz())
            self.res.append(r)
            self.buf.set_res(j, memoryview(r))
        self.args = [np.zeros(f.sparsity_in(i).nnz()) for i in range(f.n_in())]
        for i, a in enumerate(self.args):
            self.buf.set_arg(i, memoryview(a))

    def __call__(self, *args: np.ndarray) -> list[np.ndarray]:
        for a, v in zip(self.args, args):
            a[:] = np.asarray(v, dtype=float).reshape(-1)
        self.run()
        if self.buf.ret() != 0:  # e.g. a Cholesky inside the Function met a non-positive pivot
            raise RuntimeError(f"evaluating CasADi Function {self.f.name()!r} failed (return code {self.buf.ret()})")
        return self.res

    def csc(self, j: int) -> sps.csc_matrix:
        row, colind, shape = self.pattern[j]
        return sps.csc_matrix((self.res[j].copy(), row, colind), shape=shape)

    def dense(self, j: int) -> np.ndarray:
        return self.csc(j).toarray().reshape(-1) if self.res[j].size != np.prod(self.pattern[j][2]) \
            else self.res[j].copy()


def kkt_evaluator(lp: LoweredProblem) -> _Evaluator:
    """One buffer-based evaluator of :func:`kkt_function` per lowered problem and thread
    (its NumPy buffers are the Function's input/output memory: never shared between threads)."""
    return per_thread(lp, "kkt_evaluator", lambda: _Evaluator(kkt_function(lp)))


def upper_gradient_evaluator(lp: LoweredProblem) -> _Evaluator:
    """Buffer-based evaluator of :func:`upper_gradient_function` (per lowered problem and thread)."""
    return per_thread(lp, "upper_evaluator", lambda: _Evaluator(upper_gradient_function(lp)))


class KKTPieces:
    """Numeric KKT pieces at one point, plus the KKT matrix and right-hand side of an active set.

    The matrices are kept as coordinate triplets straight from CasADi's compressed columns;
    the KKT matrix and right-hand side are assembled with one COO -> CSC conversion each
    (SciPy's block helpers cost more than the arithmetic at small and moderate sizes).
    SciPy views (``H``, ``Jg_y``, ...) are built on first use.
    """

    _NAMES = {"H": 1, "L_yz": 2, "Jg_y": 4, "Jg_z": 5, "Jh_y": 7, "Jh_z": 8}

    def __init__(self, lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                 lam: np.ndarray, mu: np.ndarray):
        ev = kkt_evaluator(lp)
        ev(x, y, p, lam, mu)
        self.grad = ev.dense(0)
        self.g = ev.dense(3)
        self.h = ev.dense(6)
        self._coo = {}
        for name, j in self._NAMES.items():
            row, colind, shape = ev.pattern[j]
            col = np.repeat(np.arange(shape[1]), np.diff(colind))
            self._coo[name] = (row, col, ev.res[j].copy(), shape)
        self._views: dict[str, sps.csc_matrix] = {}
        self._rows_key: bytes | None = None
        self._rows: tuple = ()

    def _view(self, name: str) -> sps.csc_matrix:
        if name not in self._views:
            r, c, v, shape = self._coo[name]
            self._views[name] = sps.csc_matrix((v, (r, c)), shape=shape)
        return self._views[name]

    H = property(lambda self: self._view("H"))
    L_yz = property(lambda self: self._view("L_yz"))
    Jg_y = property(lambda self: self._view("Jg_y"))
    Jg_z = property(lambda self: self._view("Jg_z"))
    Jh_y = property(lambda self: self._view("Jh_y"))
    Jh_z = property(lambda self: self._view("Jh_z"))

    def values(self, name: str) -> np.ndarray:
        """The stored non-zeros of one matrix (e.g. to take a norm without building it)."""
        return self._coo[name][2]

    @property
    def n(self) -> int:
        return self._coo["H"][3][0]

    def _active_triplets(self, active: np.ndarray, which: str):
        """Rows of the active g block then the h block, renumbered from 0: (row, col, val, m)."""
        key = np.asarray(active, dtype=bool)
        new_row = np.full(key.size, -1)
        idx = np.flatnonzero(key)
        new_row[idx] = np.arange(idx.size)
        r, c, v, _ = self._coo["Jg_" + which]
        keep = new_row[r] >= 0 if r.size else np.zeros(0, dtype=bool)
        rh, ch, vh, shape_h = self._coo["Jh_" + which]
        rows = np.concatenate([new_row[r[keep]], rh + idx.size])
        return rows, np.concatenate([c[keep], ch]), np.concatenate([v[keep], vh]), idx.size + shape_h[0]

    def constraint_rows(self, active: np.ndarray) -> tuple[sps.csr_matrix, sps.csr_matrix]:
        """(J, c_z) of the constraints treated as equalities: active g rows, then all h rows."""
        key = np.asarray(active, dtype=bool).tobytes()
        if self._rows_key != key:
            ry, cy, vy, m = self._active_triplets(active, "y")
            rz, cz, vz, _ = self._active_triplets(active, "z")
            nz = self._coo["L_yz"][3][1]
            J = sps.csr_matrix((vy, (ry, cy)), shape=(m, self.n))
            Cz = sps.csr_matrix((vz, (rz, cz)), shape=(m, nz))
            self._rows_key, self._rows = key, (J, Cz)
        return self._rows

    def matrix(self, active: np.ndarray) -> sps.csc_matrix:
        """The symmetric KKT matrix [[H, J^T], [J, 0]] of an active set."""
        n = self.n
        rH, cH, vH, _ = self._coo["H"]
        rJ, cJ, vJ, m = self._active_triplets(active, "y")
        rows = np.concatenate([rH, rJ + n, cJ])
        cols = np.concatenate([cH, cJ, rJ + n])
        vals = np.concatenate([vH, vJ, vJ])
        return sps.csc_matrix((vals, (rows, cols)), shape=(n + m, n + m))

    def rhs(self, active: np.ndarray, columns: np.ndarray) -> sps.csc_matrix:
        """Right-hand side -[L_yz; c_z] restricted to the chosen z columns (in that order)."""
        n = self.n
        rL, cL, vL, shape = self._coo["L_yz"]
        rC, cC, vC, m = self._active_triplets(active, "z")
        new_col = np.full(shape[1], -1)
        new_col[columns] = np.arange(columns.size)
        rows = np.concatenate([rL, rC + n])
        cols = new_col[np.concatenate([cL, cC])]
        vals = -np.concatenate([vL, vC])
        keep = cols >= 0
        return sps.csc_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n + m, columns.size))

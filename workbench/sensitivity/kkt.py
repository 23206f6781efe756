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

KEY = "sensitivity_kkt"
UPPER_KEY = "sensitivity_upper_gradient"


def z_symbols(lp: LoweredProblem) -> Any:
    """The variables we differentiate with respect to: leader x, then parameters p."""
    return ca.vertcat(lp.x, lp.p)


def kkt_function(lp: LoweredProblem) -> ca.Function:
    """Function (x, y, p, lam, mu) -> (grad_y L, H, L_yz, g, Jg_y, Jg_z, h, Jh_y, Jh_z), cached in lp.functions."""
    if KEY not in lp.functions:
        lam = ca.SX.sym("lam", lp.g.numel()) if isinstance(lp.y, ca.SX) else ca.MX.sym("lam", lp.g.numel())
        mu = ca.SX.sym("mu", lp.h.numel()) if isinstance(lp.y, ca.SX) else ca.MX.sym("mu", lp.h.numel())
        z = z_symbols(lp)
        L = lp.f - ca.dot(lam, lp.g) - ca.dot(mu, lp.h)
        grad = ca.gradient(L, lp.y)
        H = ca.jacobian(grad, lp.y)
        outs = [grad, H, ca.jacobian(grad, z), lp.g, ca.jacobian(lp.g, lp.y), ca.jacobian(lp.g, z),
                lp.h, ca.jacobian(lp.h, lp.y), ca.jacobian(lp.h, z)]
        names = ["grad", "H", "L_yz", "g", "Jg_y", "Jg_z", "h", "Jh_y", "Jh_z"]
        lp.functions[KEY] = ca.Function(KEY, [lp.x, lp.y, lp.p, lam, mu], outs,
                                        ["x", "y", "p", "lam", "mu"], names)
    return lp.functions[KEY]


def upper_gradient_function(lp: LoweredProblem) -> ca.Function:
    """Function (x, y, p) -> (grad_z F, grad_y F) for the hypergradient, cached in lp.functions."""
    if UPPER_KEY not in lp.functions:
        z = z_symbols(lp)
        lp.functions[UPPER_KEY] = ca.Function(
            UPPER_KEY, [lp.x, lp.y, lp.p], [ca.gradient(lp.F, z), ca.gradient(lp.F, lp.y)],
            ["x", "y", "p"], ["F_z", "F_y"])
    return lp.functions[UPPER_KEY]


def to_csc(m: Any) -> sps.csc_matrix:
    """A CasADi DM (sparse) as a SciPy CSC matrix without densifying."""
    m = ca.DM(m)
    sp_ = m.sparsity()
    colind, row = sp_.get_ccs()
    return sps.csc_matrix((np.asarray(m.nonzeros(), dtype=float), np.asarray(row, dtype=np.int64),
                           np.asarray(colind, dtype=np.int64)), shape=(m.size1(), m.size2()))


class KKTPieces:
    """Numeric KKT pieces at one point (sparse matrices), plus slicing by active set."""

    def __init__(self, lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                 lam: np.ndarray, mu: np.ndarray):
        out = kkt_function(lp)(x, y, p, lam, mu)
        self.grad = np.asarray(out[0], dtype=float).reshape(-1)
        self.H = to_csc(out[1])
        self.L_yz = to_csc(out[2])
        self.g = np.asarray(out[3], dtype=float).reshape(-1)
        self.Jg_y, self.Jg_z = to_csc(out[4]), to_csc(out[5])
        self.h = np.asarray(out[6], dtype=float).reshape(-1)
        self.Jh_y, self.Jh_z = to_csc(out[7]), to_csc(out[8])

    def constraint_rows(self, active: np.ndarray) -> tuple[sps.csr_matrix, sps.csr_matrix]:
        """(J, c_z) of the constraints treated as equalities: active g rows, then all h rows."""
        idx = np.flatnonzero(active)
        J = sps.vstack([self.Jg_y.tocsr()[idx], self.Jh_y.tocsr()], format="csr")
        Cz = sps.vstack([self.Jg_z.tocsr()[idx], self.Jh_z.tocsr()], format="csr")
        return J, Cz

    def matrix(self, active: np.ndarray) -> sps.csc_matrix:
        """The symmetric KKT matrix [[H, J^T], [J, 0]] of an active set."""
        J, _ = self.constraint_rows(active)
        m = J.shape[0]
        return sps.bmat([[self.H, J.T], [J, sps.csc_matrix((m, m))]], format="csc")

    def rhs(self, active: np.ndarray, columns: np.ndarray) -> sps.csc_matrix:
        """Right-hand side -[L_yz; c_z] restricted to the chosen z columns."""
        _, Cz = self.constraint_rows(active)
        return -sps.vstack([self.L_yz.tocsc()[:, columns], Cz.tocsc()[:, columns]], format="csc")

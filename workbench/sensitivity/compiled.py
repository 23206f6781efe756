"""The regular case in one compiled CasADi call: assemble, factorise, solve, check.

At a regular point (no weakly active constraint, a positive definite Hessian) the
whole sensitivity computation is arithmetic that CasADi can do without Python in
between. The active set enters as a 0/1 mask ``a`` instead of as a row selection,
so the KKT matrix keeps one sparsity pattern for every active set,

    [ H          Jg^T D_a   Jh^T ] [ dy    ]      [ L_yz      ]
    [ D_a Jg    -(I - D_a)  0    ] [ -dlam ] = -  [ D_a Jg_z  ]
    [ Jh         0          0    ] [ -dmu  ]      [ Jh_z      ]

(an inactive row reads dlam_i = 0), its symbolic factorisation is done once per
problem and every call is one numeric sparse factorisation (CasADi's ``qr``, or its
``ldl`` when there are no constraints and K = H is positive definite).

The Hessian test is exact in the direction that matters: if H - tau*I has a Cholesky
factorisation then Z^T H Z > tau on every null space, so SOSC holds with margin and
a non-singular KKT matrix then also proves LICQ. A failed Cholesky (nonconvex
follower) or an inaccurate solve sends the caller back to the dense checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from .degenerate import DENSE_LIMIT
from .kkt_matrix import _Evaluator, kkt_function, upper_gradient_function
from .threads import per_thread

SOSC_TOL = 1e-9
DENSE_JACOBIAN_MAX = 200_000  # entries of the dense constraint Jacobian handed out for the LICQ test


class CompiledKKT:
    """Per-problem compiled pieces (built on first use, dropped with the lowered problem).

    The CasADi Functions are shared by every thread (a call checks out its own work memory);
    only their buffer-based evaluators are kept one per thread.
    """

    def __init__(self, lp: LoweredProblem):
        self.lp = lp
        ng, nh, n = int(lp.g.numel()), int(lp.h.numel()), lp.n_y
        self.ng, self.nh, self.n = ng, nh, n
        names = ["x", "y", "p", "lam", "mu", "a"]
        sizes = [lp.n_x, n, lp.n_p, ng, nh, ng]
        # The exact derivatives come from the Functions the general path and the polish already
        # use (differentiated once per problem); calling them on SX symbols inlines their graphs,
        # so the masked system is one flat SX Function again (MX when the model is MX).
        sym = ca.SX if isinstance(lp.y, ca.SX) else ca.MX
        x, y, p, lam, mu, a = (sym.sym(nm, k) for nm, k in zip(names, sizes))
        d = kkt_function(lp)(x=x, y=y, p=p, lam=lam, mu=mu)
        up = upper_gradient_function(lp)(x=x, y=y, p=p)
        Da = ca.diag(a)
        K = ca.blockcat([[d["H"], ca.mtimes(d["Jg_y"].T, Da), d["Jh_y"].T],
                         [ca.mtimes(Da, d["Jg_y"]), -ca.diag(1 - a), sym(ng, nh)],
                         [d["Jh_y"], sym(nh, ng), sym(nh, nh)]])
        R = -ca.vertcat(d["L_yz"], ca.mtimes(Da, d["Jg_z"]), d["Jh_z"])
        self.assemble = ca.Function("kkt_masked", [x, y, p, lam, mu, a], [K, R, up["F_z"], up["F_y"], d["H"]],
                                    names, ["K", "R", "F_z", "F_y", "H"])
        self._inputs = [ca.MX.sym(nm, k) for nm, k in zip(names, sizes)]
        self.K_sparsity = self.assemble.sparsity_out(0)
        # Without constraints K = H, which the Cholesky test proves positive definite: CasADi's
        # sparse LDL (no pivoting needed) is then ~3x faster than QR; saddle-point systems use QR.
        self.linear_solver = "ldl" if ng + nh == 0 else "qr"
        self._functions: dict[bytes, ca.Function] = {}

    def function(self, columns: np.ndarray) -> _Evaluator:
        """Evaluator of (x, y, p, lam, mu, a) -> (hypergradient over all z, relative residual,
        min diag(H - tau*I), Cholesky probe, X[, dense constraint Jacobian]).

        X = [dy; -dlam; -dmu] for ``columns`` (none: adjoint mode only). The hypergradient's
        right-hand side and the columns are solved together: one factorisation for all of them.
        """
        key = np.asarray(columns, dtype=np.int64).tobytes()

        def make() -> _Evaluator:  # runs under BUILD_LOCK (per_thread)
            if key not in self._functions:
                self._functions[key] = self._build([int(c) for c in columns])
            return _Evaluator(self._functions[key])
        return per_thread(self, ("compiled_evaluator", key), make)

    def _build(self, columns: list[int]) -> ca.Function:
        K, R, Fz, Fy, H = self.assemble(*self._inputs)
        tau = SOSC_TOL * ca.fmax(1.0, ca.mmax(ca.fabs(H)))
        Hs = H - tau * ca.MX.eye(self.n)
        # CasADi turns a solve with a diagonal matrix into a division (no Cholesky, no failure):
        # the smallest diagonal entry is returned and checked as well (sufficient when H is diagonal).
        chol = ca.solve(Hs, ca.MX.ones(self.n, 1), "csparsecholesky")
        B = ca.horzcat(ca.vertcat(Fy, ca.MX(self.ng + self.nh, 1)), ca.densify(R[:, columns]))
        W = ca.solve(K, B, self.linear_solver)  # K is symmetric: the adjoint column needs no transpose
        resid = ca.mmax(ca.fabs(ca.mtimes(K, W) - B)) / ca.fmax(1.0, ca.mmax(ca.fabs(B)))
        outs = [ca.densify(Fz + ca.mtimes(R.T, W[:, 0])), resid, ca.mmin(ca.diag(Hs)), ca.mmin(chol),
                W[:, 1:]]
        if self.n <= DENSE_LIMIT and 0 < (self.ng + self.nh) * self.n <= DENSE_JACOBIAN_MAX:  # LICQ test
            outs.append(ca.densify(K[self.n:, : self.n]))
        return ca.Function("sensitivity_compiled", self._inputs, outs)

    def factor_nonzeros(self) -> int:
        """Non-zeros of the sparse factors of the masked KKT matrix (the memory the solve uses)."""
        if self.linear_solver == "ldl":
            return int(self.K_sparsity.ldl()[0].nnz() + self.n)
        V, Rf, _, _ = self.K_sparsity.qr_sparse()
        return int(V.nnz() + Rf.nnz())


def compiled_kkt(lp: LoweredProblem) -> CompiledKKT:
    """One :class:`CompiledKKT` per lowered problem, in its cache (evaluators: one per thread)."""
    return lp.cached("compiled_kkt", lambda: CompiledKKT(lp))


@dataclass
class RegularSolution:
    """What one compiled call gives at a point whose Hessian passed the Cholesky test."""

    hypergradient: np.ndarray       # over all z = [x; p]
    residual: float                 # relative residual of the KKT solve
    X: np.ndarray                   # [dy; -dlam; -dmu] for the requested columns (maybe 0 of them)
    J: np.ndarray | None            # dense [D_a Jg; Jh] for the LICQ test (small n only)


def regular_solve(c: CompiledKKT, args: list[np.ndarray], columns: np.ndarray) -> RegularSolution | None:
    """One compiled call; None if H - tau*I is not proved positive definite."""
    try:
        res = c.function(columns)(*args)
    except RuntimeError:  # Cholesky of H - tau*I failed: not provably SOSC from H alone
        return None
    if not res[2][0] > 0.0:  # min diag(H - tau*I) <= 0: not positive definite either
        return None
    X = res[4].reshape((c.n + c.ng + c.nh, len(columns)), order="F").copy()
    J = res[5].reshape((c.ng + c.nh, c.n), order="F") if len(res) > 5 else None
    return RegularSolution(res[0].copy(), float(res[1][0]), X, J)


def compiled_args(r: Any) -> list[np.ndarray]:
    """Inputs of the compiled functions from a follower response (the mask is the strong active set)."""
    return [r.x, r.y, r.p, r.lam, r.mu, np.asarray(r.active, dtype=float)]


__all__ = ["CompiledKKT", "RegularSolution", "compiled_args", "compiled_kkt", "regular_solve"]

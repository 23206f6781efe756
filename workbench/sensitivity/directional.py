"""Directional derivatives of the follower's reply at any point (regular or not).

Theory (Jittorntrum 1984; Ralph & Dempe 1995). At a KKT point with multipliers
(lam, mu), let A be the rows with g_i = 0. Under MFCQ, CRCQ and the strong
second-order condition, y*(x) has a directional derivative along every d, and
dy is the unique solution of the directional QP

    min_dy  1/2 dy' H dy + dy' L_yz d
    s.t.    grad g_i dy + g_iz d  = 0   for i in S = {i in A : lam_i > 0}  (strongly active)
            grad g_i dy + g_iz d >= 0   for i in W = A \\ S               (weakly active)
            grad h   dy + h_z  d  = 0,

with H, L_yz taken at a multiplier that solves the linear program
max {grad_z L(lam, mu) d : (lam, mu) in the multiplier set} (Ralph & Dempe). When
LICQ holds that set is one point and the LP is skipped; otherwise SciPy's HiGHS
solves it (dual simplex, so S is the support of a vertex and its gradients are
independent).

How it is solved. With the KKT matrix K_S of S (one sparse LU), every QP
stationary point is affine in the multipliers eta >= 0 of the W rows:
dy = dy0 + Y eta, and the W slacks are w = q + M eta with M = J_W Y (positive
semidefinite under SSOSC). The QP's optimality conditions are then the small
convex QP  min_eta 1/2 eta' M eta + q' eta, eta >= 0, which HiGHS solves
(``lcp.py``: through CasADi's ``conic``, then an exact re-solve on the support found). The
QP's multipliers are dlam (eta for W, the K_S solve for S); dF = F_z d + F_y dy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Iterator

import numpy as np
import scipy.sparse.linalg as spla
from scipy.optimize import linprog

from ..errors import MethodError, NotDifferentiable
from .compiled import SOSC_TOL
from .degenerate import licq_holds, reduced_hessian_min_eig
from .kkt_matrix import KKTPieces, upper_gradient_evaluator
from .lcp import solve_lcp


@dataclass(frozen=True)
class DirectionalDerivative:
    """dy, dlam, dmu and dF of the follower's reply along the leader/parameter direction ``d``.

    ``strongly``/``weakly``: names of the rows of S and W used; ``released``: rows of A that
    become inactive along d (their linearised value grows); ``multiplier``: the (lam, mu)
    the QP was built at (the Ralph-Dempe LP's choice when multipliers are not unique);
    ``ssosc``: True if checked and holds, None if the point was too large for the dense check.
    Unpacks as ``dy, dlam_full = ...`` (dlam_full = [dlam; dmu]) like the older tuple API.
    """

    d: np.ndarray
    dy: np.ndarray
    dlam: np.ndarray
    dmu: np.ndarray
    dF: float
    strongly: list[Hashable]
    weakly: list[Hashable]
    released: list[Hashable]
    multiplier: tuple[np.ndarray, np.ndarray]
    ssosc: bool | None
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.dy, np.concatenate([self.dlam, self.dmu])))


class DirectionalSolver:
    """Directional derivatives at one follower reply; caches LUs per strongly active set."""

    def __init__(self, response: Any, kkt: KKTPieces | None = None):
        self.r, self.lp = response, response.lp
        self.k = kkt if kkt is not None else KKTPieces(self.lp, response.x, response.y, response.p,
                                                        response.lam, response.mu)
        self.A = response.active | response.weakly
        self.licq = licq_holds(self.k, self.A)
        self.ng, self.nh, self.n = int(self.lp.g.numel()), int(self.lp.h.numel()), self.lp.n_y
        self._lu: dict[bytes, Any] = {}
        self._pieces: dict[bytes, KKTPieces] = {}
        self._ssosc: dict[bytes, bool | None] = {}
        self.F_nu = None
        if self.lp.multiplier_dependent:  # F uses multipliers: dF gets F_nu . [dlam; dmu] (multipliers.py)
            from .multipliers import upper_gradients_nu
            self.F_z, self.F_y, self.F_nu = upper_gradients_nu(self.lp, response.x, response.y, response.p,
                                                               response.lam, response.mu)
        else:
            ev = upper_gradient_evaluator(self.lp)
            ev(response.x, response.y, response.p)
            self.F_z, self.F_y = ev.dense(0), ev.dense(1)

    # -- the multiplier (Ralph-Dempe LP) ------------------------------------------------
    def multiplier(self, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray, KKTPieces]:
        r, k = self.r, self.k
        if self.licq is not False:  # unique multipliers (or too large to tell): use the reply's own
            return r.lam, r.mu, k
        idx = np.flatnonzero(self.A)
        Jg, Jh = k.Jg_y.tocsr()[idx].toarray(), k.Jh_y.toarray()
        grad_f = k.grad + k.Jg_y.T @ r.lam + k.Jh_y.T @ r.mu
        c = np.concatenate([k.Jg_z.tocsr()[idx] @ dz, k.Jh_z @ dz])  # min -grad_z L d = max ...
        bounds = [(0, None)] * idx.size + [(None, None)] * self.nh
        lp = linprog(c, A_eq=np.hstack([Jg.T, Jh.T]), b_eq=grad_f, bounds=bounds, method="highs-ds",
                     options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
        if lp.status == 3:
            raise MethodError("the follower's multiplier set is unbounded at this point (MFCQ fails for "
                              f"constraints {[self.lp.g_names[i] for i in idx]}); directional derivatives "
                              "are not defined by this theory; remove the redundant constraints")
        if lp.status != 0:
            return r.lam, r.mu, k
        lam = np.zeros(self.ng)
        lam[idx] = lp.x[: idx.size]
        mu = lp.x[idx.size:]
        key = np.concatenate([lam, mu]).round(12).tobytes()
        if key not in self._pieces:
            self._pieces[key] = KKTPieces(self.lp, r.x, r.y, r.p, lam, mu)
        return lam, mu, self._pieces[key]

    # -- one direction ---------------------------------------------------------------------
    def _factor(self, k: KKTPieces, S: np.ndarray) -> Any:
        key = S.tobytes() + str(id(k)).encode()
        if key not in self._lu:
            hnorm = max(1.0, float(np.max(np.abs(k.values("H")), initial=0.0)))
            eig = reduced_hessian_min_eig(k, S, SOSC_TOL * hnorm)
            self._ssosc[key] = None if eig is None else bool(eig > SOSC_TOL * hnorm)
            if self._ssosc[key] is False:
                names = [self.lp.g_names[i] for i in np.flatnonzero(S)]
                raise NotDifferentiable(
                    "the strong second-order condition fails (the Hessian of the follower's Lagrangian is "
                    f"not positive definite on the tangent space of the strongly active constraints {names}, "
                    f"smallest eigenvalue {eig:.3g}): the reply need not be a function of the leader here; "
                    "check the follower's curvature (s.checks) or move the leader point", constraints=names)
            try:
                self._lu[key] = spla.splu(k.matrix(S), permc_spec="MMD_AT_PLUS_A")
            except RuntimeError:
                raise MethodError("the KKT matrix of the strongly active follower constraints "
                                  f"{[self.lp.g_names[i] for i in np.flatnonzero(S)]} is singular (their "
                                  "gradients, with the equalities', are dependent); remove redundant "
                                  "follower constraints") from None
        return self._lu[key], self._ssosc[key]

    def __call__(self, d: np.ndarray, columns: np.ndarray) -> DirectionalDerivative:
        r, n = self.r, self.n
        d = np.asarray(d, dtype=float).reshape(-1)
        if d.size != columns.size or not np.all(np.isfinite(d)):
            raise MethodError(f"the direction must be {columns.size} finite numbers (one per wrt variable), got {d!r}")
        dz = np.zeros(self.lp.n_x + self.lp.n_p)
        dz[columns] = d
        lam, mu, k = self.multiplier(dz)
        tol = r.tol
        S = r.active.copy() if k is self.k else self.A & (lam > tol)
        W = self.A & ~S
        lu, ssosc = self._factor(k, S)
        J_S, C_S = k.constraint_rows(S)
        widx = np.flatnonzero(W)
        Jg, Jgz = k.Jg_y.tocsr(), k.Jg_z.tocsr()
        J_W = Jg[widx]
        rhs0 = -np.concatenate([k.L_yz @ dz, C_S @ dz])
        X0 = lu.solve(rhs0)
        eta = np.zeros(widx.size)
        info: dict[str, Any] = {"qp": "none (no weakly active row)"}
        if widx.size:
            B = np.zeros((X0.size, widx.size))
            B[:n] = J_W.T.toarray()
            XY = lu.solve(B)
            q = J_W @ X0[:n] + Jgz[widx] @ dz
            M = J_W @ XY[:n]
            M = (M + M.T) / 2
            eta = solve_lcp(M, q, info)
            X = X0 + XY @ eta
        else:
            X = X0
        dy = X[:n]
        nu = -X[n:]
        ns = int(S.sum())
        dlam = np.zeros(self.ng)
        dlam[S] = nu[:ns]
        dlam[widx] = eta
        dmu = nu[ns:]
        lin = Jg @ dy + Jgz @ dz
        scale = max(1.0, float(np.max(np.abs(d))))
        released = [self.lp.g_names[i] for i in np.flatnonzero(self.A) if lin[i] > 1e-9 * scale]
        dF = float(self.F_z @ dz + self.F_y @ dy)
        if self.F_nu is not None:
            dF += float(self.F_nu @ np.concatenate([dlam, dmu]))
        names = self.lp.g_names
        return DirectionalDerivative(d=d.copy(), dy=dy, dlam=dlam, dmu=dmu, dF=dF,
                                     strongly=[names[i] for i in np.flatnonzero(S)],
                                     weakly=[names[i] for i in widx], released=released,
                                     multiplier=(lam.copy(), mu.copy()), ssosc=ssosc, info=info)


__all__ = ["DirectionalDerivative", "DirectionalSolver"]

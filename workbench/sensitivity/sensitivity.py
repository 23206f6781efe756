"""``Sensitivity``: dy/dz, dlam/dz and the hypergradient at one leader point.

The invariant is the follower's KKT system; differentiating it in z gives K X = R
(``kkt_matrix.py``), and everything here is a function of one factorisation of K, in the
shape of JAXopt's ``root_jvp`` / ``root_vjp``: ``jvp(d)`` = X d (one solve), ``vjp(w)`` =
R^T K^{-1} w (one solve: K is symmetric), ``jacobian()`` = X, each with an injectable
``solve(K, B) -> X`` (default: the SuperLU factors of K; :func:`minimum_norm` for singular K).
``sensitivity()`` classifies the point and factorises once; ``status`` never changes after
that (an inaccurate solve is recorded in ``checks`` and gives NaN, it does not flip the status).

Two paths give the same numbers. At a regular point whose Hessian is positive
definite, one compiled CasADi call (``compiled.py``) assembles, proves the
conditions, factorises once and solves the hypergradient together with up to
``EAGER_COLUMNS`` columns of dy/dz. Everywhere else the general path assembles in
SciPy, runs the dense degeneracy checks and factorises with SuperLU; its
forward (``dy_dx``) and adjoint (``hypergradient``) solves share that one
factorisation and are computed on first access. At degenerate points the status
says what failed and only what is well defined is given as a number (the rest is
NaN, never a silently chosen branch).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Hashable

import casadi as ca
import numpy as np
import scipy.sparse.linalg as spla
import sympy as sp

from ..errors import MethodError, NotDifferentiable, ValueInputError
from ..printing import LatexPrintable, aligned, joined, text
from ..reformulate.symbolic import (SensitivitySystem, SymbolicSensitivity, is_symbolic, kkt_system, require_sympy,
                                    sensitivity_system, symbolic_sensitivity)
from . import export
from .columns import resolve_wrt
from .compiled import SOSC_TOL, CompiledKKT, RegularSolution, compiled_args, compiled_kkt, regular_solve
from .degenerate import full_row_rank, licq_holds, min_norm_solve, reduced_hessian_min_eig
from .directional import DirectionalDerivative, DirectionalSolver
from .kkt_matrix import KKTPieces, upper_gradient_evaluator
from .response import FollowerResponse, follower_response, response_at

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


RESIDUAL_TOL = 1e-8
EAGER_COLUMNS = 32  # up to this many columns dy/dz is solved together with the hypergradient
LATEX_MAX_SIZE = 12  # larger matrices print as their shape
Solve = Callable[[Any, np.ndarray], np.ndarray]  # solve(K, B) -> X with K X = B


def minimum_norm(K: Any, B: np.ndarray) -> np.ndarray:
    """The minimum-norm least-squares solution of K X = B (dense; for a singular K)."""
    return min_norm_solve(K, B)[0]


class Sensitivity(LatexPrintable):
    """Derivatives of the follower's reply; see module docstring. Build with :func:`sensitivity`."""

    def __init__(self, response: FollowerResponse, columns: np.ndarray, names: list[Hashable],
                 compiled: bool = True):
        self.response = response
        self.problem, self.lp = response.problem, response.lp
        self.columns, self.wrt_names = columns, names
        self.timings: dict[str, float] = {}
        self.checks: dict[str, Any] = {}
        self._one_sided: dict[str, np.ndarray] | None = None
        self._one_sided_multipliers: dict[str, np.ndarray] | None = None
        self._multiplier_directions: np.ndarray | None = None
        self._one_sided_dd: dict[str, list[DirectionalDerivative]] | None = None
        self._kink: NotDifferentiable | None = None
        self._dsolver: DirectionalSolver | None = None
        self._dy = self._dlam = self._hyper = None
        self._kkt = self._K = self._R = self._lu = None
        self.rows = response.active.copy()          # strongly active inequalities
        self.compiled: CompiledKKT | None = None
        t0 = time.perf_counter()
        if compiled and not self.lp.multiplier_dependent and self._try_compiled():
            self.timings["compiled"] = time.perf_counter() - t0
            return
        self.timings["compiled_attempt"] = time.perf_counter() - t0
        self._general_init()

    def _try_compiled(self) -> bool:
        """The regular case in one compiled call (see compiled.py); False if a dense check is needed.

        With few columns, dy/dz is solved in the same call as the hypergradient (one factorisation).
        """
        r, lp = self.response, self.lp
        m = int(r.active.sum()) + int(lp.h.numel())
        if r.weakly.any() or m > lp.n_y:
            return False
        c = compiled_kkt(lp)
        self._args = compiled_args(r)
        eager = self.columns if self.columns.size <= EAGER_COLUMNS else self.columns[:0]
        sol = regular_solve(c, self._args, eager)
        if sol is None or not self._solution_ok(sol):
            return False
        licq: bool | None = True if m == 0 else None
        if sol.J is not None and m:
            licq = full_row_rank(sol.J[np.concatenate([np.flatnonzero(r.active), c.ng + np.arange(c.nh)])])
            if not licq:
                return False
        self.compiled, self.status = c, "regular"
        self._hyper = sol.hypergradient[self.columns]
        if eager.size:
            self._set_forward(sol.X)
        self.checks.update(licq=licq, weakly_active=[], sosc=True, solve_residual=sol.residual,
                           hessian="positive definite (Cholesky of H - tau I)")
        return True

    @staticmethod
    def _solution_ok(sol: RegularSolution) -> bool:
        return bool(np.isfinite(sol.residual) and sol.residual <= RESIDUAL_TOL
                    and np.all(np.isfinite(sol.hypergradient)) and np.all(np.isfinite(sol.X)))

    def _set_forward(self, X: np.ndarray) -> None:
        n = self.lp.n_y
        X[n: n + self.kkt_ng][~self.rows] = 0.0  # inactive rows read dlam_i = 0 exactly
        self._dy, self._dlam = X[:n], -X[n:]

    def _general_init(self) -> None:
        """Assembly in SciPy, the dense degeneracy checks, one sparse LU (any status)."""
        r = self.response
        t0 = time.perf_counter()
        self._kkt = KKTPieces(self.lp, r.x, r.y, r.p, r.lam, r.mu)
        self._K = self._kkt.matrix(self.rows)
        self._R = self._kkt.rhs(self.rows, self.columns)
        self.timings["assembly"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.status = self._classify()
        self.timings["checks"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.status in ("regular", "weakly_active"):
            try:
                self._lu = spla.splu(self.K, permc_spec="MMD_AT_PLUS_A")
            except RuntimeError:
                self.status = "singular"
                self.checks["kkt_matrix"] = "exactly singular"
        if self.status == "regular":  # classify once: a numerically singular K is known now, not at a read
            b = self.K @ np.ones(self.K.shape[0])
            res = self._residual(self._lu.solve(b), b)
            self.checks["factor_residual"] = res
            if not res <= RESIDUAL_TOL:
                self.status = "singular"
                self.checks["kkt_matrix"] = f"numerically singular (relative residual {res:.1e})"
        self.timings["factor"] = time.perf_counter() - t0

    # -- the SciPy view of the system (built on demand after the compiled path) -----------
    @property
    def kkt(self) -> KKTPieces:
        if self._kkt is None:
            r = self.response
            self._kkt = KKTPieces(self.lp, r.x, r.y, r.p, r.lam, r.mu)
        return self._kkt

    @property
    def K(self) -> Any:
        """The active-set KKT matrix [[H, J^T], [J, 0]] (SciPy CSC)."""
        if self._K is None:
            self._K = self.kkt.matrix(self.rows)
        return self._K

    @property
    def R(self) -> Any:
        """Right-hand side -[L_yz; c_z] of the chosen columns (SciPy CSC)."""
        if self._R is None:
            self._R = self.kkt.rhs(self.rows, self.columns)
        return self._R

    @property
    def lu(self) -> Any:
        """SuperLU factors of ``K`` (None unless the point is regular or weakly active)."""
        if self._lu is None and self.status == "regular":
            self._lu = spla.splu(self.K, permc_spec="MMD_AT_PLUS_A")
        return self._lu

    # -- classification --------------------------------------------------------
    def _classify(self) -> str:
        r, k = self.response, self.kkt
        all_rows = r.active | r.weakly
        licq = licq_holds(k, all_rows)
        hnorm = max(1.0, float(np.max(np.abs(k.values("H")), initial=0.0)))
        eig = reduced_hessian_min_eig(k, self.rows, SOSC_TOL * hnorm)
        self.checks.update(licq=licq, weakly_active=r.weakly_active,
                           sosc="not checked (large: relies on a nonsingular KKT matrix)" if eig is None
                           else bool(eig > SOSC_TOL * hnorm))
        if eig is not None and np.isfinite(eig):
            self.checks["reduced_hessian_min_eig"] = eig
        if eig is not None and eig <= SOSC_TOL * hnorm:
            return "sosc_fails"
        if r.weakly.any():  # before LICQ: a kink among weakly active rows must not read as licq_fails
            return "weakly_active"
        if licq is False:
            return "licq_fails"
        return "regular"

    # -- shapes and names -----------------------------------------------------
    @property
    def multiplier_names(self) -> list[Hashable]:
        """Row names of ``dlam_dx``: follower inequalities, then equalities."""
        return list(self.lp.g_names) + list(self.lp.h_names)

    @property
    def n_constraints(self) -> int:
        return len(self.multiplier_names)

    @property
    def kkt_ng(self) -> int:
        return int(self.lp.g.numel())

    def _expand(self, dnu: np.ndarray, rows: np.ndarray) -> np.ndarray:
        ng = self.kkt_ng
        idx = np.flatnonzero(rows)
        out = np.zeros((self.n_constraints,) + dnu.shape[1:])
        out[idx] = dnu[: idx.size]
        out[ng:] = dnu[idx.size:]
        return out

    # -- forward mode -------------------------------------------------------------
    def _forward(self) -> None:
        n, t0 = self.lp.n_y, time.perf_counter()
        ncol = self.columns.size
        if self.status == "regular" and self.compiled is not None:
            sol = regular_solve(self.compiled, self._args, self.columns)
            if sol is None or not self._solution_ok(sol):  # cannot happen after the same check passed
                self.checks["inaccurate_solve"] = "the compiled solve failed on re-evaluation"
                self._dy = np.full((n, ncol), np.nan)
                self._dlam = np.full((self.n_constraints, ncol), np.nan)
            else:
                self._set_forward(sol.X)
        elif self.status == "regular":
            Rd = self.R.toarray()
            X = self.lu.solve(Rd)
            if not self._accurate(X, Rd):
                X = np.full_like(X, np.nan)
            self._dy, self._dlam = X[:n], self._expand(-X[n:], self.rows)
        elif self.status in ("weakly_active", "licq_fails"):
            self._compute_one_sided()
            if self._kink is None and self.checks.get("licq") is False:
                self._min_norm_multipliers()
        else:
            self._dy = np.full((n, ncol), np.nan)
            self._dlam = np.full((self.n_constraints, ncol), np.nan)
        self.timings["solve_forward"] = time.perf_counter() - t0

    def _residual(self, X: np.ndarray, B: np.ndarray) -> float:
        """max |K X - B| / max(1, max |B|) (inf when not finite)."""
        res = float(np.max(np.abs(self.K @ X - B), initial=0.0)) / max(1.0, float(np.max(np.abs(B), initial=0.0)))
        return res if np.isfinite(res) else np.inf

    def _accurate(self, X: np.ndarray, B: np.ndarray) -> bool:
        """Residual check of a solve: recorded in ``checks`` (the status is final and stays)."""
        res = self._residual(X, B)
        self.checks["solve_residual"] = res
        if res > RESIDUAL_TOL:
            self.checks["inaccurate_solve"] = f"relative residual {res:.1e} > {RESIDUAL_TOL:g}: the result is NaN"
            return False
        return True

    def _min_norm_multipliers(self) -> None:
        """LICQ fails but y* is differentiable: dlam is a set; minimum-norm element + directions.

        The minimum-norm solve is accepted only if it solves the system (residual check): an
        inconsistent system means there is no two-sided derivative at all.
        """
        n = self.lp.n_y
        X, N = min_norm_solve(self.K, self.R)
        Rd = self.R.toarray()
        res = float(np.max(np.abs(self.K @ X - Rd), initial=0.0)) / max(1.0, float(np.max(np.abs(Rd), initial=0.0)))
        self.checks["min_norm_residual"] = res
        if res > RESIDUAL_TOL:
            self._dlam = np.full_like(self._dlam, np.nan)
            self.checks["dlam"] = f"not determined (the KKT system of the active rows is inconsistent, residual {res:.1e})"
            return
        self._dlam = self._expand(-X[n:], self.rows)
        self._multiplier_directions = self._expand(N[n:], self.rows) if N.size else np.zeros((self.n_constraints, 0))
        self.checks["dy_unique"] = True
        self.checks["dlam"] = "non-unique: minimum-norm element + span(multiplier_directions)"

    def _compute_one_sided(self) -> None:
        """Directional derivatives along +-e_j; a two-sided derivative only where they are linear.

        y* is differentiable at such a point iff no active row is released along any +-e_j
        (a released row along e_j would be violated along -e_j if the map were linear) and
        dy(+e_j) = -dy(-e_j); with two or more columns one mixed direction is checked as well.
        """
        ncol = self.columns.size
        plus = [self.directional(np.eye(ncol)[j]) for j in range(ncol)]
        minus = [self.directional(-np.eye(ncol)[j]) for j in range(ncol)]
        self._one_sided_dd = {"+": plus, "-": minus}
        P = np.column_stack([dd.dy for dd in plus])
        Mn = 0.0 - np.column_stack([dd.dy for dd in minus])  # derivative from the left = -(along -e_j)
        lP = np.column_stack([np.concatenate([dd.dlam, dd.dmu]) for dd in plus])
        lM = 0.0 - np.column_stack([np.concatenate([dd.dlam, dd.dmu]) for dd in minus])
        self._one_sided = {"+": P, "-": Mn}
        self._one_sided_multipliers = {"+": lP, "-": lM}
        switching: list[Hashable] = []
        for dd in plus + minus:
            switching += [c for c in dd.released if c not in switching]
        close = lambda a, b: bool(np.allclose(a, b, rtol=1e-9, atol=1e-10))
        agree = close(P, Mn)
        lam_agree = self.checks.get("licq") is False or close(lP, lM)
        if agree and not switching and ncol >= 2:  # linearity along a mixed direction
            d = np.linspace(1.0, -0.5, ncol)
            agree = close(self.directional(d).dy, P @ d)
        if not lam_agree and not switching:
            switching = [c for c, w in zip(self.lp.g_names, self.response.weakly) if w]
        self.checks["one_sided_agree"] = agree and lam_agree
        self.checks["switching_constraints"] = switching
        if agree and lam_agree and not switching:
            self._dy, self._dlam = P, lP
            return
        self._dy = np.full_like(P, np.nan)
        self._dlam = np.full_like(lP, np.nan)
        self._kink = self._kink_error(switching, P, Mn)

    def _kink_error(self, names: list[Hashable], P: np.ndarray, Mn: np.ndarray) -> NotDifferentiable:
        hg = self.one_sided_hypergradient
        msg = (f"the follower's reply y*(x) has a kink at this point: follower constraint(s) {names} switch "
               "activity (active on one side, inactive on the other), so no two-sided derivative exists. "
               "Use s.directional(d) for the derivative along a direction d (dy, dlam, dF); s.one_sided "
               "holds the derivatives along +-e_j.")
        if self.columns.size == 1:
            msg += (f" Right derivative dy/dx = {np.array2string(P[:, 0], precision=8)}, left "
                    f"{np.array2string(Mn[:, 0], precision=8)}; hypergradient right {hg['+'][0]:.8g}, "
                    f"left {hg['-'][0]:.8g}.")
        return NotDifferentiable(msg, constraints=names, one_sided={"+": P, "-": Mn},
                                 one_sided_hypergradient=hg)

    @property
    def differentiable(self) -> bool:
        """True when y*(z) has a two-sided derivative here (False at kinks and where SOSC fails)."""
        if self.status == "regular":
            return True
        if self.status not in ("weakly_active", "licq_fails"):
            return False
        if self._dy is None:
            self._forward()
        return self._kink is None

    def _raise_at_kink(self) -> None:
        if self._dy is None:
            self._forward()
        if self._kink is not None:
            raise self._kink

    @property
    def one_sided(self) -> dict[str, np.ndarray] | None:
        """At a weakly active point: {"+": right derivatives, "-": left derivatives} (n_y, n_wrt); else None."""
        if self._dy is None:
            self._forward()
        return self._one_sided

    @property
    def one_sided_multipliers(self) -> dict[str, np.ndarray] | None:
        """One-sided dlam/dz at a weakly active point, like :attr:`one_sided`."""
        if self._dy is None:
            self._forward()
        return self._one_sided_multipliers

    @property
    def multiplier_directions(self) -> np.ndarray | None:
        """When LICQ fails: columns spanning the directions in which dlam/dz is not determined."""
        if self._dy is None:
            self._forward()
        return self._multiplier_directions

    @property
    def dy_dx(self) -> np.ndarray:
        """(n_y, n_wrt). Raises :class:`NotDifferentiable` at a kink; NaN when SOSC fails (no theory)."""
        self._raise_at_kink()
        return self._dy

    @property
    def dlam_dx(self) -> np.ndarray:
        """(n_constraints, n_wrt), rows in ``multiplier_names`` order (minimum-norm if non-unique).

        Raises :class:`NotDifferentiable` at a kink.
        """
        self._raise_at_kink()
        return self._dlam

    def directional(self, d: Any) -> DirectionalDerivative:
        """dy, dlam, dmu and dF along a direction d of the wrt variables, at any point.

        At a regular point this is dy_dx @ d (one solve); at weakly active or LICQ-failing
        points it is the directional QP of Ralph & Dempe (see ``directional.py``), which also
        says which rows are released along d. Raises :class:`NotDifferentiable` if the strong
        second-order condition fails. Unpacks as ``dy, dlam = s.directional(d)``.
        """
        if self._dsolver is None:
            self._dsolver = DirectionalSolver(self.response, self.kkt)
        return self._dsolver(d, self.columns)

    # -- pure functions of the one factorisation (JAXopt's root_jvp / root_vjp shape) -------
    def _factor_solve(self, K: Any, B: np.ndarray) -> np.ndarray:
        """The default ``solve``: SuperLU factors of K, computed once (K is symmetric)."""
        return self.lu.solve(np.asarray(B, float))

    def _linear(self, solve: Solve | None) -> Solve:
        if self.status != "regular":
            raise MethodError(f"jvp/vjp/jacobian solve the KKT system at a regular point; status is {self.status!r} "
                              "(use s.directional(d) or s.one_sided at degenerate points)")
        return solve or self._factor_solve

    def _solved(self, X: np.ndarray, B: np.ndarray) -> np.ndarray:
        return X if self._accurate(X, B) else np.full_like(X, np.nan)

    def jvp(self, d: Any, solve: Solve | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dlam) along a direction d of the wrt variables: X d from one solve K X = R d.

        Rows of dlam are ``multiplier_names``; inactive inequalities read 0.
        """
        d = np.asarray(d, float).reshape(-1)
        if d.size != self.columns.size:
            raise ValueInputError(f"jvp needs a direction with {self.columns.size} entries (wrt={self.wrt_names}), "
                                  f"got {d.size}")
        b = self.R @ d
        X = self._solved(np.asarray(self._linear(solve)(self.K, b), float).reshape(-1), b)
        n = self.lp.n_y
        return X[:n], self._expand(-X[n:], self.rows)

    def vjp(self, w: Any, w_lam: Any = None, solve: Solve | None = None) -> np.ndarray:
        """w^T dy/dz (+ w_lam^T dlam/dz): one solve K u = [w; -w_lam_A] (K symmetric), then R^T u."""
        n = self.lp.n_y
        w = np.asarray(w, float).reshape(-1)
        if w.size != n:
            raise ValueInputError(f"vjp needs a cotangent on y with {n} entries, got {w.size}")
        wl = np.zeros(self.n_constraints) if w_lam is None else np.asarray(w_lam, float).reshape(-1)
        if wl.size != self.n_constraints:
            raise ValueInputError(f"vjp's w_lam needs {self.n_constraints} entries ({self.multiplier_names}), "
                                  f"got {wl.size}")
        ng = self.kkt_ng
        b = np.concatenate([w, -wl[:ng][self.rows], -wl[ng:]])
        u = self._solved(np.asarray(self._linear(solve)(self.K, b), float).reshape(-1), b)
        return np.asarray(self.R.T @ u).reshape(-1)

    def jacobian(self, solve: Solve | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(dy/dz, dlam/dz) for every wrt column from one solve K X = R."""
        B = self.R.toarray()
        X = self._solved(np.asarray(self._linear(solve)(self.K, B), float).reshape(B.shape), B)
        n = self.lp.n_y
        return X[:n], self._expand(-X[n:], self.rows)

    # -- adjoint mode ---------------------------------------------------------------
    def upper_gradients(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.response
        if self.lp.multiplier_dependent:
            from .multipliers import upper_gradients_nu
            Fz, Fy, _ = upper_gradients_nu(self.lp, r.x, r.y, r.p, r.lam, r.mu)
            return Fz[self.columns], Fy
        ev = upper_gradient_evaluator(self.lp)
        ev(r.x, r.y, r.p)
        return ev.dense(0)[self.columns], ev.dense(1)

    @property
    def hypergradient(self) -> np.ndarray:
        """dF(x, y*(x))/dz: one transposed solve K w = [F_y; 0] when regular; raises at a kink."""
        if self._hyper is None:
            if self.status != "regular":
                self._raise_at_kink()
            t0 = time.perf_counter()
            Fz, Fy = self.upper_gradients()
            if self.lp.multiplier_dependent:  # F uses multipliers: the dlam/dz term too (multipliers.py)
                self._hyper = self._multiplier_chain(Fz, Fy, self.dy_dx, self.dlam_dx)
            elif self.status == "regular":
                self._hyper = Fz + self.vjp(Fy)
            else:
                self._hyper = Fz + self.dy_dx.T @ Fy
            self.timings["solve_adjoint"] = time.perf_counter() - t0
        return self._hyper

    @property
    def one_sided_hypergradient(self) -> dict[str, np.ndarray] | None:
        """{"+": right, "-": left} derivatives of F(z, y*(z)) along each wrt variable (degenerate points)."""
        if self.one_sided is None:
            return None
        Fz, Fy = self.upper_gradients()
        if self.lp.multiplier_dependent:
            lams = self.one_sided_multipliers
            return {k: self._multiplier_chain(Fz, Fy, v, lams[k]) for k, v in self.one_sided.items()}
        return {k: Fz + v.T @ Fy for k, v in self.one_sided.items()}

    def _multiplier_chain(self, Fz: np.ndarray, Fy: np.ndarray, dy: np.ndarray, dnu: np.ndarray) -> np.ndarray:
        from .multipliers import chain_rule, upper_gradients_nu
        r = self.response
        Fnu = upper_gradients_nu(self.lp, r.x, r.y, r.p, r.lam, r.mu)[2]
        return chain_rule(Fz, Fy, Fnu, dy, dnu)

    # -- other views --------------------------------------------------------------
    def check(self, h: float = 1e-6, tol: float = 1e-4) -> dict[str, Any]:
        """Finite differences by re-solving the follower: central and one-sided quotients.

        ``passed`` is False when the right and left quotients disagree (a kink) or the
        derivatives disagree with them (relative ``tol``); see ``checks.py``.
        """
        from .checks import finite_difference_check
        return finite_difference_check(self, h, tol)

    @property
    def active_names(self) -> list[Hashable]:
        """Names of the strongly active follower inequalities (the rows of the system)."""
        return [n for n, a in zip(self.lp.g_names, self.rows) if a]

    def symbolic(self) -> SymbolicSensitivity:
        """SymPy dy/dz, dlam/dz on the current active set, with the region where it holds.

        Its symbols are those of ``wb.display.kkt_system(problem)``: the expressions combine.
        """
        if self.status in ("sosc_fails", "licq_fails", "singular"):
            raise MethodError(f"no symbolic dy/dx on this active set: status is {self.status!r}, so the KKT matrix "
                              "is singular and the implicit-function theorem does not apply (see s.checks)")
        p, r = require_sympy(self.problem), self.response
        near = dict(zip(list(p.leader) + list(p.parameter_symbols), np.concatenate([r.x, r.p])))
        near.update(zip(p.follower, r.y))
        near.update(zip(kkt_system(p).multipliers, np.concatenate([r.lam, r.mu])))
        return symbolic_sensitivity(p, self.active_names, self.wrt_names, near)

    def system(self) -> SensitivitySystem:
        """The KKT sensitivity system of the current active set (SymPy, renders as LaTeX);
        at this point its matrix is :attr:`K`."""
        return sensitivity_system(require_sympy(self.problem), active=self.active_names, wrt=self.wrt_names)

    def map_function(self, name: str = "sensitivity_map") -> Any:
        """CasADi Function (x, p, y, lam) -> (dy_dz, dlam_dz) for the current active set."""
        return export.map_function(self, name)

    def to_casadi(self) -> Any:
        """CasADi Function (x, p) -> (y, lam, dy_dz, dlam_dz) including the follower solve."""
        return export.to_casadi(self)

    def codegen(self, directory: str, name: str = "sensitivity_map") -> str:
        """Write the sensitivity map as C code (CasADi codegen); returns the .c path."""
        return export.codegen(self, directory, name)

    def _latex(self, printer: Any) -> str:
        """The block system of the active set (SymPy declarations), then the numbers and the status."""
        def show(a: np.ndarray, name: str) -> str:
            if max(a.shape, default=0) > LATEX_MAX_SIZE:
                return name + rf" &\in \mathbb{{R}}^{{{a.shape[0]} \times {a.shape[1]}}}"
            m = sp.Matrix(a.shape[0], a.shape[1], lambda i, j: sp.Float(a[i, j], 6) if np.isfinite(a[i, j])
                          else sp.Symbol(r"\text{undefined}"))
            return name + " &= " + printer._print(m)
        lines = []
        if is_symbolic(self.problem) and self.lp.n_y <= LATEX_MAX_SIZE:
            lines.append(printer._print(self.system()))
        wrt = joined(printer, self.wrt_names)
        try:
            dy, dlam, kink = np.asarray(self.dy_dx, float), np.asarray(self.dlam_dx, float), ""
        except NotDifferentiable as why:  # a kink: no two-sided derivative, say so and give the sides
            dy = np.full((self.lp.n_y, self.columns.size), np.nan)
            dlam = np.full((self.n_constraints, self.columns.size), np.nan)
            kink = f"; kink at {why.constraints}"
        lines.append(show(dy, r"\frac{\partial y^*}{\partial (" + wrt + ")}") + r" \quad "
                     + text(f"(status: {self.status}{kink})"))
        if self.n_constraints:
            lines.append(show(dlam, r"\frac{\partial \lambda^*}{\partial (" + wrt + ")}"))
        if kink and self.one_sided is not None:
            lines.append(show(self.one_sided["+"], r"\partial_+ y^*"))
            lines.append(show(self.one_sided["-"], r"\partial_- y^*"))
        return aligned(lines)

    def __repr__(self) -> str:
        head = f"Sensitivity(status={self.status!r}, wrt={self.wrt_names}, active_set={self.response.active_set},\n"
        if not self.differentiable and self.one_sided is not None:
            return head + (f"  not differentiable (kink): right dy={np.array2string(self.one_sided['+'], precision=6)},"
                           f" left dy={np.array2string(self.one_sided['-'], precision=6)})")
        return head + (f"  dy_dx={np.array2string(self.dy_dx, precision=6)},\n"
                       f"  dlam_dx={np.array2string(self.dlam_dx, precision=6)})")


def sensitivity(problem: Problem, leader: Any, parameters: Any = None, wrt: Any = "leader",
                response: FollowerResponse | None = None, compiled: bool = True,
                at: tuple[Any, Any, Any] | None = None, **options: Any) -> Sensitivity:
    """Sensitivities of the follower's reply at ``leader`` (options go to :func:`follower_response`).

    ``at=(y, lam, mu)`` differentiates that reply (e.g. a bilevel result's own point; lam/mu
    may be None) after a Newton polish on its active set, with no follower solve: a nonconvex
    follower has several local replies and a fresh solve may find another one.
    ``compiled=False`` skips the one-call compiled path and always uses the general one (SciPy
    assembly, dense checks, SuperLU): the same numbers, for cross-checking.
    """
    t0 = time.perf_counter()
    if response is not None:
        fr = response
    elif at is not None:
        y, lam, mu = at
        fr = response_at(problem, leader, y, lam, mu, parameters=parameters,
                         **{k: v for k, v in options.items() if k in ("tol", "polish")})
    else:
        fr = follower_response(problem, leader, parameters=parameters, **options)
    t_solve = time.perf_counter() - t0
    cols, names = resolve_wrt(problem, fr.lp, wrt)
    s = Sensitivity(fr, cols, names, compiled=compiled)
    s.timings["follower_solve"] = t_solve
    return s


def export_function(problem: Problem, leader: Any, parameters: Any = None, wrt: Any = "leader",
                    **options: Any) -> ca.Function:
    """Shortcut: the sensitivity map at a leader point as a CasADi Function (see :meth:`Sensitivity.to_casadi`)."""
    return sensitivity(problem, leader, parameters=parameters, wrt=wrt, **options).to_casadi()

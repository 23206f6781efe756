"""Engine 1 of the hypergradient route: Φ(x) = F(x, y*(x)) and ∇Φ for a follower without
constraints and with a positive definite Hessian (strictly convex: y* unique and smooth).

At the follower's solution ∇_y f(x, y*) = 0 the adjoint v solves ∇²_yy f · v = ∇_y F and

    ∇Φ(x) = ∇_x F − ∇²_xy f · v                       (one solve, whatever n_x is).

The derivatives are CasADi MX reverse-mode products of the declaration's matrix expressions
(gradient, Hessian-vector, mixed product: cost linear in the data, no dense symbolic Hessian),
or the NumPy derivatives a block states (:func:`numeric_blocks`: BLAS instead of CasADi's scalar
loop for dense data). A follower that is quadratic in y and states its Hessian (``hessian(x)``)
is solved by one Cholesky factorisation (SciPy), which also serves the adjoint; one that states
``hessian_at(x, y)`` (logistic regression, n_y <= DENSE_NEWTON_MAX) by damped Newton with
Cholesky, whose last factor serves the adjoint; otherwise Newton–CG (SciPy ``trust-krylov``)
re-solves from the previous y and conjugate gradients (SciPy) give the adjoint.

Engine 2 (any follower the pipeline lowers, through the sensitivity stage) is
``workbench.sensitivity.reduced_engine.KKTFollower``; :mod:`workbench.solve.leader_descent`
drives either through ``evaluate(x) -> Evaluation``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import casadi as ca
import numpy as np
import scipy.linalg as sla
import scipy.optimize as so
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from ..errors import MethodError, SolverFailure

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

DENSE_NEWTON_MAX = 3000   # n_y up to which a stated dense Hessian (hessian_at) is formed and factorised

@dataclass
class Evaluation:
    """Φ, ∇Φ and the follower's reply at one leader point."""

    x: np.ndarray
    F: float
    grad: np.ndarray
    y: np.ndarray
    lam: np.ndarray | None = None
    iterations: int = 0
    kink: bool = False
    note: str = ""
    extra: dict = field(default_factory=dict)


def factor_pd(H: Any) -> Callable[[np.ndarray], np.ndarray]:
    """b -> H⁻¹b by Cholesky (dense or banded after reordering) or symmetric-mode LU whose pivots
    prove H ≻ 0; :class:`~workbench.errors.MethodError` when H is not positive definite."""
    if sps.issparse(H) and H.nnz < 0.1 * H.shape[0] ** 2:
        banded = _banded_cholesky(H)
        if banded is not None:
            return banded
        lu = spla.splu(sps.csc_matrix(H), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        if np.any(lu.U.diagonal() <= 0):  # P H Pᵀ = L D Lᵀ: the pivots are D (Sylvester)
            raise MethodError("the follower's Hessian is not positive definite here: y*(x) is not unique")
        return lu.solve
    try:
        c = sla.cho_factor(H.toarray() if sps.issparse(H) else np.asarray(H), check_finite=True)
    except sla.LinAlgError:
        raise MethodError("the follower's Hessian is not positive definite here: y*(x) is not unique") from None
    return lambda b: sla.cho_solve(c, b)



class SmoothFollower:
    """Follower min_y f(x, y) (no constraints, ∇²_yy f ≻ 0) from MX matrix expressions."""

    def __init__(self, problem: Problem, p: np.ndarray, tol: float = 1e-10):
        self.problem, self.p, self.tol = problem, np.asarray(p, float), tol
        sign = {"min": 1.0, "max": -1.0}
        self.sign = sign[problem.lower_sense]
        if numeric_blocks(problem):
            f_, F_ = problem._f, problem._F
            self._f = lambda x, y: f_.numeric(x, y)[::2]                      # (f, ∇_y f)
            self._hv = f_.hessian_vector
            self._mixed = f_.mixed
            self._F = lambda x, y: (*F_.numeric(x, y), f_.numeric(x, y)[2])   # (F, F_x, F_y, ∇_y f)
        else:
            self._mx_oracle(problem, sign)
        self._hessian = _stated_hessian(problem) if problem.lower_sense == "min" else None
        hess_at = getattr(getattr(problem, "_f", None), "hessian_at", None)
        self._hessian_at = hess_at if (self._hessian is None and callable(hess_at) and numeric_blocks(problem)
                                       and problem.n_y <= DENSE_NEWTON_MAX) else None
        self.y = np.asarray(problem.y_start, float).copy()
        self.hessian_proven_pd_at: np.ndarray | None = None

    def _mx_oracle(self, problem: Problem, sign: dict) -> None:
        """(f, ∇_y f), ∇²_yy f·v, ∇_x(∇_y f·v) and (F, F_x, F_y, ∇_y f) as MX Functions."""
        x, y, v = ca.MX.sym("x", problem.n_x), ca.MX.sym("y", problem.n_y), ca.MX.sym("v", problem.n_y)
        pb, o = {}, 0
        for k, val in problem.parameter_blocks.items():
            pb[k] = ca.DM(self.p[o:o + val.size])
            o += val.size
        f = sign[problem.lower_sense] * problem._f(x, y, pb)
        F = sign[problem.upper_sense] * problem._F(x, y, pb)
        gy = ca.gradient(f, y)
        self._f = ca.Function("f", [x, y], [f, gy])
        self._hv = ca.Function("hv", [x, y, v], [ca.jtimes(gy, y, v)])
        self._mixed = ca.Function("mixed", [x, y, v], [ca.gradient(ca.dot(gy, v), x)])
        self._F = ca.Function("F", [x, y], [F, ca.gradient(F, x), ca.gradient(F, y), gy])  # one call per point

    def _solve_linear(self, H: Any) -> Callable[[np.ndarray], np.ndarray]:
        return factor_pd(H)


    def _factor(self, x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The stated Hessian's solve at x: the declaration's own factorisation (``factor(x)``,
        e.g. Woodbury for ridge with more features than rows) or a factorisation of ``hessian(x)``."""
        own = getattr(getattr(self.problem, "_f", None), "factor", None)
        if own is None:
            return self._solve_linear(self._hessian(x))
        try:
            return own(x)
        except sla.LinAlgError:
            raise MethodError("the follower's Hessian is not positive definite here: y*(x) is not unique") from None

    def _hessian_operator(self, x: np.ndarray, y: np.ndarray) -> spla.LinearOperator:
        return spla.LinearOperator((y.size, y.size), matvec=lambda d: np.asarray(self._hv(x, y, d)).reshape(-1))

    def _newton(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Trust-region Newton–CG (SciPy ``trust-krylov``) from the previous y, then full Newton
        steps with a CG solve to 1e-12 (trust-krylov can stall within 1e-9 of a warm start)."""
        def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
            val, g = self._f(x, w)
            return float(val), np.asarray(g, float).reshape(-1)
        with np.errstate(invalid="ignore"):
            res = so.minimize(fg, self.y, jac=True, method="trust-krylov", options={"gtol": self.tol, "maxiter": 100},
                              hessp=lambda w, d: np.asarray(self._hv(x, w, d)).reshape(-1))
        y, its = np.asarray(res.x, float), int(res.nit)
        g = fg(y)[1]
        for _ in range(8):
            if not np.all(np.isfinite(g)) or np.max(np.abs(g)) <= self.tol:
                break
            step, _ = spla.cg(self._hessian_operator(x, y), -g, rtol=1e-12, atol=0.0, maxiter=20 * y.size)
            g_new = fg(y + step)[1]
            if not np.max(np.abs(g_new)) < np.max(np.abs(g)):
                break
            y, g, its = y + step, g_new, its + 1
        if not np.all(np.isfinite(y)) or np.max(np.abs(g)) > max(1e3 * self.tol, 1e-7):
            raise SolverFailure(f"the follower's Newton solve stalled at x = {x[:5]}... "
                                f"(gradient {np.max(np.abs(g)):.2e}; {res.message})")
        return y, its

    def _newton_exact(self, x: np.ndarray) -> tuple[np.ndarray, int, Callable[[np.ndarray], np.ndarray]]:
        """Damped Newton with the stated Hessian ``hessian_at(x, y)`` and Cholesky, from the previous y.

        Why not Newton–CG: with small penalties (e^x ~ 1e-7 on nearly separable data) the
        follower's Hessian has condition ~1e8 and Krylov steps stall (trust-krylov: "a bad
        approximation caused failure to predict improvement"); a Cholesky step is exact to
        cond · ε and converges quadratically. Step length: Armijo backtracking on f, where a
        step that lowers ‖∇f‖ with f unchanged to rounding (|Δf| <= 1e-13 (1 + |f|)) is accepted.
        Returns y*, the number of Newton steps and the factorisation at y* (for the adjoint).
        """
        y = self.y.copy()
        val, g = self._f(x, y)
        val, g = float(val), np.asarray(g, float).reshape(-1)
        for its in range(100):
            solve = factor_pd(self._hessian_at(x, y))
            gn = float(np.max(np.abs(g), initial=0.0))
            if gn <= self.tol:
                return self._polish(x, y, g, solve, its)
            step = -solve(g)
            slope, t = float(g @ step), 1.0
            while True:
                val_new, g_new = self._f(x, y + t * step)
                val_new, g_new = float(val_new), np.asarray(g_new, float).reshape(-1)
                gn_new = float(np.max(np.abs(g_new), initial=0.0))
                if np.isfinite(val_new) and (val_new <= val + 1e-4 * t * slope or (
                        abs(val_new - val) <= 1e-13 * (1 + abs(val)) and gn_new < gn)):
                    break
                t *= 0.5
                if t < 1e-10:  # no decrease possible: y is optimal to rounding (or the solve failed)
                    if gn <= max(1e3 * self.tol, 1e-7):
                        return self._polish(x, y, g, solve, its)
                    raise SolverFailure(f"the follower's Newton solve stalled at x = {x[:5]}... "
                                        f"(gradient {gn:.2e})")
            y, val, g = y + t * step, val_new, g_new
        raise SolverFailure(f"the follower's Newton solve did not converge in 100 steps at x = {x[:5]}... "
                            f"(gradient {float(np.max(np.abs(g))):.2e})")

    def _polish(self, x: np.ndarray, y: np.ndarray, g: np.ndarray, solve: Callable[[np.ndarray], np.ndarray],
                its: int) -> tuple[np.ndarray, int, Callable[[np.ndarray], np.ndarray]]:
        """One more Newton step with the factor at y (kept if it lowers ‖∇f‖), and the adjoint
        solve at the returned point with one step of iterative refinement by the exact product.

        Why: the stop ‖∇f‖ <= tol leaves y off by up to tol/λ_min (1e-8 for e^x = 1e-2), and Φ's
        central differences see that (8.9e-6 relative on load_digits without this step); the free
        step makes ‖∇f‖ quadratically small. The factor is of H(y), not of H(y + δ): refining the
        adjoint with ∇²f(y + δ)·v removes the O(‖δ‖) error of using it there.
        """
        y_new = y - solve(g)
        g_new = np.asarray(self._f(x, y_new)[1], float).reshape(-1)
        if not np.max(np.abs(g_new)) < np.max(np.abs(g)):
            y_new = y
        else:
            its += 1

        def refined(b: np.ndarray) -> np.ndarray:
            v = solve(b)
            return v + solve(b - np.asarray(self._hv(x, y_new, v), float).reshape(-1))
        return y_new, its, refined

    def evaluate(self, x: np.ndarray) -> Evaluation:
        x = np.asarray(x, float)
        if self._hessian is not None:  # quadratic in y: one Newton step from anywhere is exact
            solve = self._factor(x)
            self.hessian_proven_pd_at = x.copy()  # the factorisation proved H ≻ 0 here
            _, g = self._f(x, self.y)
            y = self.y - solve(np.asarray(g).reshape(-1))
            its = 1
        elif self._hessian_at is not None:  # H ≻ 0 at y* only: not a convexity proof (the family declares it)
            y, its, solve = self._newton_exact(x)
        else:
            y, its = self._newton(x)
            solve = None
        F, Fx, Fy, gy = (np.asarray(o, float).reshape(-1) for o in self._F(x, y))
        gnorm = float(np.max(np.abs(gy), initial=0.0))
        if solve is not None:
            v = solve(Fy)
        else:
            v, info = spla.cg(self._hessian_operator(x, y), Fy, rtol=1e-12, atol=0.0, maxiter=20 * y.size)
            if info != 0:
                raise SolverFailure(f"conjugate gradients did not converge for the adjoint at x = {x[:5]}...")
        grad = Fx - np.asarray(self._mixed(x, y, v)).reshape(-1)
        self.y = y
        return Evaluation(x.copy(), float(F[0]), grad, y.copy(), None, its, extra={"follower_gradient": gnorm})


def _banded_cholesky(H: Any, max_band: float = 0.02) -> Callable[[np.ndarray], np.ndarray] | None:
    """b -> H⁻¹b by LAPACK's banded Cholesky (``scipy.linalg.cholesky_banded``) after a reverse
    Cuthill–McKee reordering, when the reordered bandwidth k is small (k <= max_band · n).

    Why: local designs (signals, grids, the benchmark's banded ridge) give Hessians whose RCM
    bandwidth is tiny; banded Cholesky costs O(n k²) with no symbolic analysis, where SuperLU
    redoes its ordering and symbolic factorisation at every leader point (12 ms vs < 1 ms at
    n = 10⁴, k ≈ 10). The factorisation's success proves H ≻ 0 (it fails otherwise).
    None when the band is too wide (the caller factorises H in general sparse form).
    The ordering and the scatter into banded storage depend on the sparsity pattern only, which
    is the same at every leader point (Q + diag(E x)): they are kept per pattern (:data:`_BAND_LAYOUTS`).
    """
    H = sps.csr_matrix(H, copy=True)
    H.sum_duplicates()
    H.sort_indices()
    n = H.shape[0]
    layout = _band_layout(H, max_band)
    if layout is None:
        return None
    perm, inv, k, low, band_row, band_col = layout
    ab = np.zeros((k + 1, n))
    ab[band_row, band_col] = H.data[low]
    try:
        c = sla.cholesky_banded(ab, lower=True, check_finite=True)
    except sla.LinAlgError:
        raise MethodError("the follower's Hessian is not positive definite here: y*(x) is not unique") from None

    def solve(b: np.ndarray) -> np.ndarray:
        return sla.cho_solve_banded((c, True), np.asarray(b)[perm])[inv]
    return solve


_BAND_LAYOUTS: dict[tuple, Any] = {}


def _band_layout(H: sps.csr_matrix, max_band: float) -> tuple | None:
    """(perm, inv, k, lower-entry mask, banded row, banded column) of a canonical CSR pattern,
    or None when the reverse Cuthill–McKee bandwidth k exceeds max_band · n. Entry (i, j) of H
    sits at (inv[i], inv[j]) of the reordered matrix, i.e. at ab[inv[i] − inv[j], inv[j]]."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee
    n = H.shape[0]
    key = (n, H.nnz, max_band, hash(H.indptr.tobytes()), hash(H.indices.tobytes()))
    if key in _BAND_LAYOUTS:
        return _BAND_LAYOUTS[key]
    perm = reverse_cuthill_mckee(H, symmetric_mode=True)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n)
    rows = np.repeat(np.arange(n), np.diff(H.indptr))
    pr, pc = inv[rows], inv[H.indices]
    k = int(np.max(np.abs(pr - pc), initial=0))
    low = pr >= pc
    layout = None if k > max_band * n else (perm, inv, k, low, (pr - pc)[low], pc[low])
    if len(_BAND_LAYOUTS) >= 16:
        _BAND_LAYOUTS.pop(next(iter(_BAND_LAYOUTS)))
    _BAND_LAYOUTS[key] = layout
    return layout


def _stated_hessian(problem: Problem) -> Callable[[np.ndarray], Any] | None:
    """The follower's Hessian in closed form when its declaration states it (quadratic in y)."""
    f = getattr(problem, "_f", None)
    if hasattr(f, "hessian"):
        return f.hessian
    from ..model.vector_qp import _FollowerQP
    if isinstance(f, _FollowerQP):  # ½ yᵀQy + ½ Σ (E x)_i y_i² + (c + C x)ᵀy: H = Q + diag(E x)
        Q, E = sps.csc_matrix(f.Q), f.E
        return lambda x: (Q + sps.diags(np.zeros(Q.shape[0]) if E is None else E @ x)).tocsc()
    return None


def numeric_blocks(problem: Problem) -> bool:
    """Whether the declaration's blocks state their derivatives in NumPy (then the engine uses them).

    Protocol (the families of :mod:`workbench.model.vector_logistic`): the leader block has
    ``numeric(x, y) -> (F, ∇_x F, ∇_y F)``; the follower block has ``numeric`` (same, for f),
    ``hessian_vector(x, y, v) -> ∇²_yy f·v`` and ``mixed(x, y, v) -> ∇_x(∇_y f·v)``. They must be
    the functions the blocks' CasADi expressions define; parameter blocks are not passed to them,
    so declarations with parameters (and "max" senses) use the MX oracle.
    """
    f, F = getattr(problem, "_f", None), getattr(problem, "_F", None)
    return (all(callable(getattr(f, m, None)) for m in ("numeric", "hessian_vector", "mixed"))
            and callable(getattr(F, "numeric", None)) and not getattr(problem, "parameter_blocks", None)
            and problem.lower_sense == "min" and problem.upper_sense == "min")


def smooth_follower_applies(problem: Problem) -> bool:
    """True for vector declarations whose follower has no constraint rows (engine 1)."""
    return hasattr(problem, "_f") and hasattr(problem, "parameter_blocks") and not problem.g and not problem.h


def matrix_follower_solver(problem: Problem, lp: Any) -> Any:
    """A tight Ipopt follower solver on the MX form (limited-memory Hessian) for the certificate.

    The SX lowering of a dense data term would make Ipopt's exact Hessian a dense symbolic
    graph (the 'dense data trap'); the MX form keeps one node per matrix product.
    """
    from .follower import FollowerSolver
    from .ipopt import TIGHT_OPTIONS, IpoptSolver
    solver = FollowerSolver.__new__(FollowerSolver)
    solver.lp, solver.ng, solver.nh = lp, 0, 0
    x, y = ca.MX.sym("x", problem.n_x), ca.MX.sym("y", problem.n_y)
    pv = ca.MX.sym("p", lp.n_p)
    pb, o = {}, 0
    for k, val in problem.parameter_blocks.items():
        pb[k] = pv[o:o + val.size]
        o += val.size
    f = {"min": 1.0, "max": -1.0}[problem.lower_sense] * problem._f(x, y, pb)
    opts = dict(TIGHT_OPTIONS, **{"ipopt.hessian_approximation": "limited-memory", "ipopt.max_iter": 3000})
    solver.solver = IpoptSolver({"x": y, "p": ca.vertcat(x, pv), "f": f}, opts, name="follower_mx")
    solver.lbg = solver.ubg = np.zeros(0)
    return solver


class LazyFollowerSolver:
    """A follower solver built on first use (the certificate of a convex follower whose KKT
    residual checks out never re-solves, and building Ipopt on a 10⁴-variable MX graph costs ~1 s)."""

    def __init__(self, make: Callable[[], Any]):
        self._make, self._solver = make, None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._solver is None:
            self._solver = self._make()
        return getattr(self._solver, name)

"""The hypergradient route: min_x F(x, y*(x)) by SciPy with exact hypergradients, then certify.

    options -> follower engine (matrix / KKT) -> leader_descent.descend (L-BFGS-B | SLSQP | trust-constr)
            -> certificate at the final x -> BilevelResult (optimality "local")

Why: single-level (KKT) reformulations grow with the follower (an MPCC with n_y + rows
multipliers and complementarity pairs) and need second derivatives of the whole graph; the
reduced problem has only n_x variables and each gradient costs one follower solve plus one
adjoint solve (:mod:`workbench.solve.leader_descent`). The answer is a local stationary point
of the reduced objective: ``info["leader_stationarity"]`` (also ``"reduced_stationarity"``) is ‖P(x − ∇Φ) − x‖∞ (bounds) or the
least-squares KKT residual with the active leader constraints. "optimal" needs a converged
optimizer *and* a passed certificate (the follower's optimality proven at the final x).

``method="auto"`` picks this route (:func:`auto_applies`) for large vector declarations
(n_y >= AUTO_MIN_FOLLOWER) whose follower has no constraint rows and is proven strictly convex
for every leader point in the box (a family built so, or a QP with Q ≻ 0 by Cholesky and
diag(E x) ⪰ 0 on the box), whose leader has simple bounds only, and when no time limit or
KKT-only option is given; ``r.info["route"]`` says why.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import casadi as ca
import numpy as np
import scipy.sparse as sps
from threadpoolctl import threadpool_limits

from ..errors import MethodError, SolverFailure, ValueInputError
from ..lower import LoweredProblem, lower, lower_matrix
from ..result import BilevelResult
from ..solve import box_from_constraints
from ..sensitivity.reduced_engine import KKTFollower
from ..solve.leader_descent import (OPTIMIZERS, LazyFollowerSolver, ReducedObjective, SmoothFollower,
                                    descend, factor_pd, matrix_follower_solver, smooth_follower_applies)
from ..status import SolverStats, Status

FOLLOWERS = ("auto", "matrix", "kkt")
AUTO_MIN_FOLLOWER = 500   # below this the KKT route is fast and gives a stronger (restarted) answer
OPTIONS = ("start", "max_iter", "tol", "optimizer", "parameters", "progress", "follower", "certify_starts",
           "gap_tol", "feas_tol", "blas_threads")
STATIONARITY_FACTOR = 100  # "optimal" needs the reduced stationarity <= 100 tol (and the certificate)


def solve_hypergradient(problem: Any, start: Any = None, max_iter: int = 500, tol: float = 1e-6,
                        optimizer: str = "auto", parameters: Mapping | None = None, progress: bool = True,
                        follower: str = "auto", certify_starts: int = 8, gap_tol: float = 1e-6,
                        feas_tol: float = 1e-6, blas_threads: int | None = 1, **unknown: Any) -> BilevelResult:
    """Minimise the reduced objective with exact hypergradients (module docstring).

    ``start``: leader point (dict keyed by leader symbols, ``{"x": array}`` or a vector);
    ``optimizer``: "auto" (L-BFGS-B with bounds only, else SLSQP), "L-BFGS-B", "SLSQP",
    "trust-constr"; ``tol``: the optimizer's gradient tolerance; ``follower``: "auto", "matrix"
    (unconstrained strictly convex vector followers) or "kkt" (Ipopt + sensitivity, any follower);
    ``progress``: a tqdm bar (notebook or terminal); ``blas_threads``: BLAS threads while the
    route runs (threadpoolctl; default 1: the route's matrices are small enough per call that
    OpenBLAS's thread start-up and spinning cost more than they save — 20× on a loaded 2-core
    machine for n = 65 —; None leaves the process setting).

    ``tol`` is relative: the optimizer stops at a projected gradient <= tol · max(|Φ(x₀)|, ‖pg(x₀)‖)
    (:func:`workbench.solve.leader_descent.stopping_tolerance`, ``info["stationarity_tolerance"]``).
    """
    t0 = time.monotonic()
    _check_options(unknown, max_iter, tol, optimizer, follower, certify_starts, blas_threads)
    use_matrix = smooth_follower_applies(problem) if follower == "auto" else follower == "matrix"
    if use_matrix and not smooth_follower_applies(problem):
        raise MethodError("follower='matrix' needs a VectorBilevelProblem whose follower has no constraints; "
                          "use follower='kkt'")
    # The matrix engine never needs the SX model: its leader rows, box and certificate read the MX form
    lp = lower_matrix(problem) if use_matrix else lower(problem)
    p = problem.parameter_vector(parameters)
    x0 = _start(problem, lp, start)
    lo, hi = box_from_constraints(lp, "x")
    constraints, general_names = _general_constraints(problem, lp, p)
    if optimizer == "auto":
        optimizer = "SLSQP" if constraints else "L-BFGS-B"
    if optimizer == "L-BFGS-B" and constraints:
        raise MethodError(f"optimizer='L-BFGS-B' handles bounds only; the leader has general constraints "
                          f"{general_names[:3]}: use optimizer='SLSQP' or 'trust-constr'")
    engine = SmoothFollower(problem, p) if use_matrix else KKTFollower(problem, p)
    reduced = ReducedObjective(engine)
    base = dict(problem=problem, method="hypergradient", parameters=p)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        try:
            run = descend(reduced, x0, lo, hi, constraints, optimizer, int(max_iter), float(tol), progress)
        except SolverFailure as exc:
            return BilevelResult(status=Status.SOLVER_FAILED, solver_stats=SolverStats(f"scipy-{optimizer}", str(exc)),
                                 message=str(exc), time_s=time.monotonic() - t0, **base)
        e = run.last
        t_opt = time.monotonic() - t0
        cert = _certify(problem, lp, run.x, e.y, p, e.lam, engine, certify_starts, gap_tol, feas_tol)
    converged = run.stationarity <= STATIONARITY_FACTOR * run.tolerance  # the optimizer's own stop may be looser
    status = Status.OPTIMAL if (cert.passed and converged) else Status.NOT_CERTIFIED
    reasons = list(cert.reasons) + ([] if converged else [
        f"{optimizer} stopped ({run.scipy.message}) with reduced stationarity {run.stationarity:.2e} > "
        f"{STATIONARITY_FACTOR} × {run.tolerance:.2e} (tol relative to the problem's scale)"])
    info = {"leader_stationarity": run.stationarity, "reduced_stationarity": run.stationarity,
            "stationarity_tolerance": run.tolerance, "optimizer": optimizer,
            "follower_engine": "matrix" if use_matrix else "kkt", "evaluations": run.evaluations,
            "follower_iterations": reduced.follower_iterations, "kinks": sum(r["kink"] for r in run.rows),
            "optimizer_message": str(run.scipy.message), "optimize_s": t_opt,
            "certify_s": time.monotonic() - t0 - t_opt, "general_constraints": general_names}
    return BilevelResult(status=status, x=run.x, y=e.y, lam=e.lam, certificate=cert, log=run.rows,
                         solver_stats=SolverStats(f"scipy-{optimizer}", str(run.scipy.message),
                                                  iterations=int(getattr(run.scipy, "nit", len(run.rows) - 1))),
                         optimality="local", info=info, message="; ".join(reasons),
                         time_s=time.monotonic() - t0, **base)


def _certify(problem: Any, lp: LoweredProblem, x, y, p, lam, engine, n_random, gap_tol, feas_tol) -> Any:
    """The one call into the certificate stage (its signature is changing: keep it here only).

    Convexity is proven by, cheapest first: the engine's factorisation of a stated constant
    Hessian (H ≻ 0 at x), the family's construction, or the certificate stage's own test (on
    the SX model, built on demand: its curvature analysis walks scalar graphs).
    With the matrix engine ``lp`` is the MX form: a convex follower's certificate needs only
    f, ∇_y f and (if the KKT residual does not check out) one re-solve, by Ipopt on the MX form
    (built only then). A follower not proven convex is certified on the SX model as before.
    """
    from .. import certify as cert
    info = getattr(problem, "info", None)
    declared = isinstance(info, dict) and bool(info.get("follower_convex_by_construction"))
    proven_at = getattr(engine, "hessian_proven_pd_at", None)
    proven = declared or (proven_at is not None and np.array_equal(proven_at, x))
    convex = proven or cert.follower_is_convex(lower(problem), x, p)
    follower = None
    if isinstance(engine, SmoothFollower) and convex:
        follower = LazyFollowerSolver(lambda: matrix_follower_solver(problem, lp))
    else:
        lp = lower(problem)
    return cert.certify(lp, x, y, p, lam, follower=follower, n_random=n_random, gap_tol=gap_tol,
                        feas_tol=feas_tol, follower_convex=convex, use_global=isinstance(lp.x, ca.SX))


def _check_options(unknown: dict, max_iter: Any, tol: Any, optimizer: Any, follower: Any, certify_starts: Any,
                   blas_threads: Any = 1) -> None:
    if unknown:
        name = sorted(unknown)[0]
        raise MethodError(f"method='hypergradient' has no option {name!r}; options: start, max_iter, tol, "
                          "optimizer, parameters, progress, follower, certify_starts, gap_tol, feas_tol, blas_threads")
    if optimizer != "auto" and optimizer not in OPTIMIZERS:
        raise MethodError(f"optimizer must be 'auto' or one of {OPTIMIZERS}, got {optimizer!r}")
    if follower not in FOLLOWERS:
        raise MethodError(f"follower must be one of {FOLLOWERS}, got {follower!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueInputError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not np.isfinite(tol) or tol <= 0:
        raise ValueInputError(f"tol must be a positive finite number, got {tol!r}")
    if isinstance(certify_starts, bool) or not isinstance(certify_starts, (int, np.integer)) or certify_starts < 0:
        raise ValueInputError(f"certify_starts must be a non-negative integer, got {certify_starts!r}")
    if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(blas_threads, (int, np.integer))
                                     or blas_threads < 1):
        raise ValueInputError(f"blas_threads must be a positive integer or None, got {blas_threads!r}")


def _start(problem: Any, lp: LoweredProblem, start: Any) -> np.ndarray:
    if start is None:
        return np.asarray(lp.x_start, float).copy()
    if isinstance(start, Mapping) and not hasattr(problem, "parameter_blocks"):
        keep = {s: v for s, v in start.items() if s in problem.leader}  # a full start may name followers too
        return problem.point_vector({**{s: problem.start.get(s, 0.0) for s in problem.leader}, **keep}, "leader")
    return problem.point_vector(start, "leader")


def _general_constraints(problem: Any, lp: LoweredProblem, p: np.ndarray) -> tuple[list[dict], list[Any]]:
    """Leader rows that are not simple bounds, as SciPy constraint dicts of x (>= 0 / == 0)."""
    keep, names = [], []
    for k in range(int(lp.G.numel())):
        name = lp.G_names[k] if k < len(lp.G_names) else k
        if isinstance(name, str) and (name.startswith("x_lb[") or name.startswith("x_ub[")):
            continue  # a declared bound row (known_boxes), read by box_from_constraints
        e = lp.G[k]
        if not ca.depends_on(e, ca.vertcat(lp.y, lp.p)) and ca.is_linear(e, lp.x) \
                and int(np.count_nonzero(ca.evalf(ca.jacobian(e, lp.x)).full())) == 1:
            continue  # a simple bound: box_from_constraints read it
        keep.append(k)
        names.append(name)
    out = []
    for kind, block, idx in (("ineq", lp.G, keep), ("eq", lp.H, list(range(int(lp.H.numel()))))):
        if not idx:
            continue
        rows = ca.vertcat(*[block[i] for i in idx])
        if ca.depends_on(rows, lp.y):
            raise MethodError("method='hypergradient' supports leader constraints in the leader's variables "
                              "only; a leader constraint here depends on the follower's y")
        fn = ca.Function("leader_rows", [lp.x, lp.p], [rows, ca.jacobian(rows, lp.x)])
        out.append({"type": kind, "fun": lambda x, fn=fn: np.asarray(fn(x, p)[0]).reshape(-1),
                    "jac": lambda x, fn=fn: np.asarray(fn(x, p)[1])})
        if kind == "eq":
            names += list(lp.H_names)
    return out, names


def auto_applies(problem: Any, options: Mapping) -> tuple[bool, str]:
    """Whether ``method="auto"`` should use this route, and why (or why not)."""
    if not smooth_follower_applies(problem):
        return False, "follower is not an unconstrained vector declaration"
    if problem.n_y < AUTO_MIN_FOLLOWER:
        return False, f"n_y = {problem.n_y} < {AUTO_MIN_FOLLOWER}"
    other = sorted(set(options) - set(OPTIONS) - {"time_limit"})
    if other:
        return False, f"options {other} are the KKT route's"
    if options.get("time_limit") is not None:
        return False, "time_limit given (the hypergradient route has none)"
    lp = lower_matrix(problem)
    if int(lp.H.numel()) or any(not (isinstance(n, str) and n.startswith(("x_lb[", "x_ub["))) for n in lp.G_names):
        return False, "the leader has general constraints"
    info = getattr(problem, "info", None)
    if isinstance(info, dict) and info.get("follower_convex_by_construction"):
        return True, f"n_y = {problem.n_y}, follower strictly convex by construction ({info['follower_convex_by_construction']})"
    from ..model.vector_qp import _FollowerQP
    f = getattr(problem, "_f", None)
    if not isinstance(f, _FollowerQP):
        return False, "follower strict convexity is not proven for every leader point"
    lo, _ = box_from_constraints(lp, "x")
    E = None if f.E is None else f.E.tocoo() if hasattr(f.E, "tocoo") else np.asarray(f.E)
    if E is not None and not (np.all(np.asarray(E.data if hasattr(E, "data") else E) >= 0) and np.all(lo >= 0)):
        return False, "diag(E x) may be negative on the leader's box: strict convexity not proven everywhere"
    try:
        factor_pd(sps.csc_matrix(f.Q))
    except MethodError:
        return False, "Q is not positive definite"
    return True, f"n_y = {problem.n_y}, follower QP with Q ≻ 0 (Cholesky) and diag(E x) ⪰ 0 on the box: strictly convex"

"""The hypergradient route: min_x F(x, y*(x)) by SciPy with exact hypergradients, then certify.

    options -> follower engine (matrix / KKT) -> leader problem -> descent from each start
            -> certificate at the final x -> BilevelResult (optimality "local")

Why: single-level (KKT) reformulations grow with the follower (an MPCC with n_y + rows
multipliers and complementarity pairs) and need second derivatives of the whole graph; the
reduced problem has only n_x variables and each gradient costs one follower solve plus one
adjoint solve. The answer is a local stationary point of the reduced objective:
``info["reduced_stationarity"]`` is ‖P(x − ∇Φ) − x‖∞ (bounds) or the least-squares KKT residual
with the active leader constraints. "optimal" needs a converged descent *and* a passed certificate.
The stages: :mod:`workbench.solve.leader_descent` (options, leader problem, SciPy runs),
:mod:`workbench.sensitivity.reduced_engine` (engine choice, convexity proof, certificate).

``method="auto"`` picks this route (:func:`auto_applies`) for large vector declarations
(n_y >= AUTO_MIN_FOLLOWER) whose follower has no constraint rows and is proven strictly convex
on the whole leader box, whose leader has simple bounds only, and when no time limit or
KKT-only option is given; ``r.info["route"]`` says why.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

from threadpoolctl import threadpool_limits

from ..errors import SolverFailure
from ..lower import lower_matrix
from ..result import BilevelResult
from ..sensitivity.reduced_engine import certify_final, follower_engine, strictly_convex_everywhere
from ..solve.leader_descent import DescentOptions, LeaderProblem, ReducedObjective, descend_from_starts
from ..solve.smooth_follower import smooth_follower_applies
from ..status import SolverStats, Status

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

AUTO_MIN_FOLLOWER = 500   # below this the KKT route is fast and gives a stronger (restarted) answer
OPTIONS = DescentOptions.names()


def solve_hypergradient(problem: Problem, **options: Any) -> BilevelResult:
    """Minimise the reduced objective with exact hypergradients (module docstring).

    Options (:class:`~workbench.solve.leader_descent.DescentOptions`): ``start`` (leader point),
    ``max_iter``, ``tol`` (relative: the projected gradient <= tol · max(|Φ(x₀)|, ‖pg(x₀)‖)),
    ``optimizer`` ("auto": L-BFGS-B with bounds only, else SLSQP; "L-BFGS-B", "SLSQP",
    "trust-constr"), ``n_starts`` / ``seed`` (the start, then seeded points of the leader box; the
    lowest converged Φ wins), ``tied_start`` ("extra", default: also descend from the best point
    of the box's diagonal x = t·1 — one shared value for every leader variable, a 1-D problem —
    and keep the lower end; "only": descend from the tied point instead of the start; "off"),
    ``follower`` ("auto", "matrix", "kkt"), ``progress`` (a tqdm bar),
    ``certify_starts`` / ``gap_tol`` / ``feas_tol`` (the certificate), ``blas_threads`` (BLAS
    threads while the route runs; default 1: per-call matrices are small and OpenBLAS's thread
    start-up cost 20× on a loaded 2-core machine for n = 65; None leaves the process setting).
    """
    t0 = time.monotonic()
    o = DescentOptions.parse(options)
    p = problem.parameter_vector(o.parameters)
    engine, lp, engine_name = follower_engine(problem, p, o.follower)
    leader = LeaderProblem.build(problem, lp, p, o.start)
    optimizer = leader.optimizer(o.optimizer)
    reduced = ReducedObjective(engine)
    base = dict(problem=problem, method="hypergradient", parameters=p)
    with threadpool_limits(limits=o.blas_threads, user_api="blas"):
        try:
            run = descend_from_starts(reduced, leader, optimizer, o)
        except SolverFailure as exc:
            return BilevelResult(status=Status.SOLVER_FAILED, solver_stats=SolverStats(f"scipy-{optimizer}", str(exc)),
                                 message=str(exc), time_s=time.monotonic() - t0, **base)
        t_opt = time.monotonic() - t0
        e = run.last
        cert = certify_final(problem, lp, run.x, e.y, p, e.lam, engine, o.certify_starts, o.gap_tol, o.feas_tol)
    status = Status.OPTIMAL if (cert.passed and run.converged) else Status.NOT_CERTIFIED
    reasons = list(cert.reasons) + ([] if run.converged else [
        f"{optimizer} stopped ({run.scipy.message}) with reduced stationarity {run.stationarity:.2e} > "
        f"{run.tolerance:.2e} (tol relative to the problem's scale)"])
    info = {"leader_stationarity": run.stationarity, "reduced_stationarity": run.stationarity,
            "stationarity_tolerance": run.tolerance, "optimizer": optimizer, "follower_engine": engine_name,
            "evaluations": run.evaluations, "follower_iterations": reduced.follower_iterations,
            "kinks": sum(r["kink"] for r in run.rows), "optimizer_message": str(run.scipy.message),
            "starts": run.runs, "tied_start": None if run.tied is None else
            {k: v for k, v in run.tied.items() if k != "x"}, "optimize_s": t_opt, "certify_s": time.monotonic() - t0 - t_opt,
            "general_constraints": leader.constraint_names}
    return BilevelResult(status=status, x=run.x, y=e.y, lam=e.lam, certificate=cert, log=run.rows,
                         solver_stats=SolverStats(f"scipy-{optimizer}", str(run.scipy.message),
                                                  iterations=int(getattr(run.scipy, "nit", len(run.rows) - 1))),
                         optimality="local", info=info, message="; ".join(reasons),
                         time_s=time.monotonic() - t0, **base)


def auto_applies(problem: Problem, options: Mapping) -> tuple[bool, str]:
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
    ok, why = strictly_convex_everywhere(problem)
    return ok, f"n_y = {problem.n_y}, {why}" if ok else why

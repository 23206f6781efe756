"""``method="milp"``: the global solution of a linear bilevel problem (or one with a convex-QP follower).

    Bilevel2Linear (reformulate/linear.py) -> LinearBilevel2MILP (reformulate/lp_bigm_milp.py: big-M
    from derived bounds) -> HiGHS (solve/highs.py, mip_rel_gap 1e-9) -> invert -> implemented point -> certify

A bound that cannot be derived is a MethodError, never a guess; ``info["big_m"]`` lists every
pair's bounds with their sources.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from ..certify import certify, follower_is_convex, implemented_point
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..errors import MethodError
from ..lower import lower
from ..model.protocol import Problem
from ..reformulate import Chain
from ..reformulate.linear import Bilevel2Linear
from ..reformulate.lp_bigm_milp import LinearBilevel2MILP
from ..result import BilevelResult
from ..solve import FollowerSolver
from ..solve.highs import HighsSolver
from ..status import SolverStats, Status, failure_from_highs
from ..values import Point


def solve_milp(problem: Problem, parameters: Mapping | None = None, time_limit: float | None = 60.0,
               mip_rel_gap: float = 1e-9, max_bases: int = 200_000, certify_starts: int = 4,
               gap_tol: float = GAP_TOL, feas_tol: float = FEAS_TOL, **unused: Any) -> BilevelResult:
    """Solve a linear bilevel problem to global optimality (see module docstring)."""
    if unused:
        raise MethodError(f"method='milp' does not take the option(s) {sorted(unused)}")
    t0 = time.monotonic()
    p = problem.parameter_vector(parameters)
    ints = tuple(problem.integer_indices()) if hasattr(problem, "integer_indices") else ()
    chain = Chain([Bilevel2Linear(p, "milp", allow_qp=True), LinearBilevel2MILP(max_bases, ints)])
    milp, inv = chain.apply(problem)
    base = dict(problem=problem, method="milp", parameters=p)
    info: dict = {"big_m": milp.pairs, "dual_vertices": milp.n_dual_vertices, "objective_cut": milp.objective_cut,
                  "integer": list(ints)}
    if milp.verdict is not None:
        status, why = milp.verdict
        return BilevelResult(status=status, solver_stats=SolverStats("highs", "not_run"), message=why, info=info,
                             time_s=time.monotonic() - t0, **base)
    solver = HighsSolver(mip_rel_gap, time_limit)
    res = solver.solve(milp)
    info.update(highs_status=res.status, highs_message=res.message, n_binaries=milp.n_binaries, mip_gap=res.mip_gap,
                mip_nodes=res.mip_nodes, mip_dual_bound=res.mip_dual_bound)
    hs = f"HiGHS status {res.status}: {res.message}"
    stats = SolverStats("highs", res.message, iterations=res.mip_nodes, solve_time=time.monotonic() - t0)
    if res.z is None:
        msg = f"the MILP has no solution ({hs})"
        if res.status == 3:
            info["unbounded_evidence"] = solver.boxed_optima(milp)
            msg += ("; with every variable boxed to |v| <= K the optimum keeps falling: "
                    + ", ".join(f"K = {K:g}: F = {F:.6g}" for K, F in info["unbounded_evidence"]))
        return BilevelResult(status=failure_from_highs(res.status), solver_stats=stats, message=msg, info=info,
                             time_s=time.monotonic() - t0, **base)
    pt = chain.invert(res.z, inv)
    info["global"] = res.success
    info["big_m_active"] = milp.active_big_m(pt)
    lp = lower(problem)
    follower = FollowerSolver(lp, tight=True)
    x, y, lam, mu, _ = implemented_point(lp, follower, pt.x, pt.y, p, pt.lam, pt.mu)
    cert = certify(lp, x, y, p, lam, follower, mu=mu, n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol,
                   follower_convex=follower_is_convex(lp, x, p))
    pt = Point(x, y, lam if cert.lam is None else cert.lam, mu if cert.lam is None else cert.mu)
    status = Status.OPTIMAL if (res.success and cert.passed) else Status.NOT_CERTIFIED
    msgs = [] if res.success else [f"HiGHS stopped early ({hs}); the point is not proven global"]
    msgs += cert.reasons
    if info["big_m_active"]:
        msgs.append("big-M bound active at the solution (the bounds are derived, hence valid; listed in "
                    "info['big_m_active'])")
    return BilevelResult(status=status, x=pt.x, y=pt.y, lam=pt.lam, mu=pt.mu, certificate=cert, solver_stats=stats,
                         optimality="global" if status == Status.OPTIMAL else "local",
                         bound=info["mip_dual_bound"] if status == Status.OPTIMAL else None,
                         message="; ".join(msgs), info=info, time_s=time.monotonic() - t0, **base)

"""LP followers with a leader paid in shadow prices: the exact KKT program, solved globally by SCIP.

Chain: lower -> :class:`~workbench.reformulate.price_strong_duality.PriceStrongDuality` (price x
quantity terms rewritten by LP duality, when the structure allows) ->
:class:`~workbench.reformulate.price_kkt_program.Priced2SOS1KKT` (the follower's KKT system, SOS1
complementarity, bounds derived from the rows, else assumed) -> :func:`~workbench.solve.scip.solve_program`
-> :func:`~workbench.certify.priced.price_candidate` on the *original* problem (follower proof,
multipliers checked, F over the multiplier set) -> :func:`~workbench.certify.priced.priced_result`.

``r.info["rewrite"]`` says whether the rewrite applied (then the program is a MILP) or why not (then
the bilinear terms stay for spatial branch-and-bound); ``rewrite=False`` skips it. An optimum on an
assumed bound is re-solved once in a box 100 times larger; if it stays there it is not called global.
With SCIP's status "optimal", the original F at the point equal to SCIP's value and no optimum on an
assumed bound, the leader's level is proven globally (``optimality="global"``, ``bound`` = SCIP's dual
bound; ``info["global_scope"]`` says whether an assumed box was part of the proof).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..reformulate.linear import require_lp_follower
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..certify.priced import price_candidate, priced_result, user_sense
from ..lower import follower_view, lower
from ..reformulate.price_kkt_program import Priced2SOS1KKT
from ..reformulate.price_strong_duality import PriceRewrite, PriceStrongDuality
from ..reformulate.program import ASSUMED_RADIUS
from ..result import BilevelResult
from ..solve import FollowerSolver
from ..solve.scip import _require_scip, solve_program
from ..status import SolverStats, Status, failure_from_scip

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

VALUE_TOL = 1e-6  # the original F at SCIP's point and SCIP's value agree to VALUE_TOL (1 + |F|)


def solve_global_kkt(problem: Problem, parameters: Mapping | None = None, time_limit: float | None = 60.0,
                     requested: str = "global_kkt", gap_tol: float = GAP_TOL, feas_tol: float = FEAS_TOL,
                     seed: int = 0, rewrite: bool = True, radius: float = ASSUMED_RADIUS,
                     **_ignored: Any) -> BilevelResult:
    """Solve an LP-follower bilevel problem whose leader uses multipliers with SCIP (module docstring)."""
    _require_scip()
    t0 = time.monotonic()
    require_lp_follower(problem, requested)
    lp = lower(problem)
    view = follower_view(lp)
    p = problem.parameter_vector(parameters)
    names = dict(leader_names=[str(s) for s in problem.leader], follower_names=[str(s) for s in problem.follower])
    red = PriceStrongDuality(p, **names)
    rw = red.check(lp) if rewrite else PriceRewrite(False, "not tried (rewrite=False)")
    target = red.apply(lp)[0] if rw.applies else lp
    budget = 60.0 if time_limit is None else float(time_limit)
    info: dict = {"route": ("global_kkt: the follower LP's KKT system with SOS1 complementarity, solved globally by "
                            "SCIP; " + ("price x quantity terms rewritten by strong duality (a MILP)" if rw.applies
                                        else "bilinear price x quantity terms kept (spatial branch-and-bound)")),
                  "requested": requested,
                  "rewrite": {"applied": rw.applies, "reason": rw.reason, "remaining": list(rw.remaining)}}
    prog = sol = None
    for r_box in (radius, 100.0 * radius):
        prog, inv = Priced2SOS1KKT(p, radius=r_box, **names).apply(target)
        sol = solve_program(prog, time_limit=max(budget - (time.monotonic() - t0), 0.1), seed=seed,
                            abs_gap=1e-9, rel_gap=1e-9)
        if sol.w is None or not prog.on_assumed_bound(sol.w):
            break
    on_bound = [prog.names[i] for i in prog.on_assumed_bound(sol.w)] if sol.w is not None else []
    info.update(scip_status=sol.status, bounds=prog.bound_source,
                kkt_program={"variables": prog.n, "sos1_pairs": len(prog.sos1), "scip_nodes": sol.nodes,
                             "scip_time_s": sol.time_s},
                global_scope=("none: optimum on an assumed bound (" + ", ".join(on_bound) + ")") if on_bound else
                ("inside the assumed box" if prog.assumed else "derived bounds"))
    stats = SolverStats("scip", sol.status, iterations=sol.nodes, solve_time=sol.time_s)
    base = dict(problem=problem, method="global_kkt", parameters=p, info=info, solver_stats=stats)
    if sol.w is None:
        elapsed = time.monotonic() - t0
        if sol.status in ("unbounded", "inforunbd"):
            return BilevelResult(status=Status.UNBOUNDED, time_s=elapsed, message=(
                "SCIP: the single-level KKT program is unbounded: the leader's objective falls without bound over "
                "follower-optimal points and their multipliers (non-unique multipliers when LICQ fails)"), **base)
        if sol.status == "infeasible":
            st = Status.INFEASIBLE if not prog.assumed else Status.SOLVER_FAILED
            return BilevelResult(status=st, time_s=elapsed, message="SCIP: the KKT program is infeasible" + (
                f" inside the assumed box ({prog.bound_source})" if prog.assumed else ""), **base)
        return BilevelResult(status=failure_from_scip(sol.status), time_s=elapsed,
                             message=f"SCIP found no solution (status {sol.status})", **base)
    kkt = Priced2SOS1KKT(p).invert(sol.w, inv)
    follower = FollowerSolver(view, tight=True)
    cert_opts = dict(n_random=4, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed)
    c = price_candidate(lp, view, follower, kkt.x, kkt.y, kkt.lam, kkt.mu, p, "scip", False, cert_opts)
    agree = np.isfinite(c.value) and abs(c.value - sol.primal) <= VALUE_TOL * (1 + abs(c.value))
    info["value_check"] = {"F": user_sense(problem, c.value), "scip": user_sense(problem, sol.primal), "agree": agree}
    proven = sol.optimal and agree and not on_bound
    r = priced_result(problem, lp, p, [c], [], None, time.monotonic() - t0, False, method="global_kkt",
                      extra_info=info, optimality="global" if proven else "local", stats=stats)
    if r.status == Status.OPTIMAL and not proven:
        r.status = Status.TIME_LIMIT if sol.status in ("timelimit", "nodelimit") else Status.NOT_CERTIFIED
        r.message = ("SCIP stopped with status " + sol.status if not sol.optimal else
                     "the original F at SCIP's point differs from SCIP's value" if not agree else
                     "SCIP's optimum lies on an assumed bound (" + ", ".join(on_bound) + ")") + \
            ": the leader's level is not proven"
    if r.status.has_point and np.isfinite(sol.dual) and not on_bound:
        r.bound = user_sense(problem, float(sol.dual))
    return r

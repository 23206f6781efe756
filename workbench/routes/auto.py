"""``method="auto"``: the exact MILP route for linear bilevel problems, the KKT route otherwise.

Large smooth vector problems with a follower proven strictly convex go to the hypergradient
route first (``routes.hypergradient.auto_applies`` says when, and ``info["route"]`` why).

A follower that is not shown convex at the declared start, with a small leader (n_x <= 5), goes
first to SCIP's global route with a fifth of the time budget (5 s without one): a proven global
optimum is returned at once (``info["route"]`` says so); otherwise the KKT route runs with the rest
(the KKT search is slow there and its points may be spurious). Measured on BOLIB, this proves the
MitsosBarton2006 family in 0.5-3.5 s where the KKT route took 15-16 s.

A linear leader with an LP follower has a global optimum that HiGHS finds exactly once big-M
bounds are derived; when the problem is not linear, a bound cannot be derived, or the MILP
result does not pass the certificate, the KKT route runs (and the better certified point wins).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..reformulate.linear import require_linear_bilevel
from ..errors import MethodError
from ..result import BilevelResult
from .kkt import solve_kkt
from .milp import solve_milp

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


def solve_auto(problem: Problem, time_limit: float | None = None, parameters: Any = None, **options: Any) -> BilevelResult:
    """Pick the route from the problem's structure (see module docstring); ``info["route"]`` says which."""
    t0 = time.monotonic()
    not_hg = ""
    if hasattr(problem, "parameter_blocks"):  # large smooth vector problems: the hypergradient route
        from .hypergradient import auto_applies, solve_hypergradient
        ok, why = auto_applies(problem, {**options, "time_limit": time_limit})
        if ok:
            r = solve_hypergradient(problem, parameters=parameters, **options)
            if r.status.has_point:
                r.info["route"] = f"hypergradient ({why})"
                return r
            why = f"hypergradient ended {r.status}: {r.message}"
        not_hg = f"; hypergradient not used: {why}"
    try:
        require_linear_bilevel(problem, "milp")
        milp_result = solve_milp(problem, parameters=parameters,
                                 time_limit=None if time_limit is None else 0.6 * time_limit)
    except MethodError as why:
        _refuse_integers(problem, f"the MILP route does not apply ({why})")
        first = _global_first(problem, time_limit, parameters, options)
        if first is not None and first.status == "optimal" and first.optimality == "global":
            first.info["route"] = (f"global (milp not applicable: {why}; the follower is not shown convex, so "
                                   f"SCIP's global route went first, with {GLOBAL_FIRST_SHARE:.0%} of the time "
                                   "budget, and proved the optimum)")
            return first
        left = time_limit if time_limit is None else max(time_limit - (time.monotonic() - t0), 1.0)
        r = solve_kkt(problem, time_limit=left, parameters=parameters, **options)
        r.info["route"] = f"kkt (milp not applicable: {why}{not_hg})"
        if first is not None:
            r.info["route"] += f"; SCIP's global route tried first ended {first.status} ({first.optimality})"
        return r
    if milp_result.status in ("optimal", "unbounded", "infeasible"):  # HiGHS proved it, globally
        milp_result.info["route"] = "milp"
        return milp_result
    if getattr(problem, "integer", ()):  # the KKT route cannot honour integrality: keep HiGHS' answer
        milp_result.info["route"] = "milp"
        return milp_result
    left = None if time_limit is None else max(time_limit - (time.monotonic() - t0), 1.0)
    r = solve_kkt(problem, time_limit=left, parameters=parameters, **options)
    r.info["route"] = f"kkt (milp ended {milp_result.status}: {milp_result.message}{not_hg})"
    return r


GLOBAL_FIRST_SHARE = 0.2   # of the time limit (GLOBAL_FIRST_SECONDS without one)
GLOBAL_FIRST_SECONDS = 5.0


def _global_first(problem: Problem, time_limit: float | None, parameters: Any, options: dict) -> BilevelResult | None:
    """SCIP's global route, briefly, for a small leader whose follower is not shown convex at the
    declared start: where it proves the optimum quickly the KKT search (slow and possibly stuck at
    spurious points there) is not needed. None when it does not apply."""
    if getattr(problem, "uses_multipliers", False) or not hasattr(problem, "leader"):
        return None
    from ..certify import follower_is_convex
    from ..lower import lower
    try:
        lp = lower(problem)
        if lp.n_x > 5 or follower_is_convex(lp, lp.x_start, problem.parameter_vector(parameters)):
            return None
        from .global_route import solve_global
        budget = GLOBAL_FIRST_SECONDS if time_limit is None else GLOBAL_FIRST_SHARE * time_limit
        return solve_global(problem, parameters=parameters, time_limit=budget)
    except MethodError:
        return None


def _refuse_integers(problem: Problem, why: str) -> None:
    ints = getattr(problem, "integer", ())
    if ints:
        raise MethodError(f"the leader variable(s) {list(map(str, ints))} are integer and {why}; the KKT route "
                          "cannot honour integrality: use method='global' (SCIP)")

"""``method="auto"``: the exact MILP route for linear bilevel problems, the KKT route otherwise.

Large smooth vector problems with a follower proven strictly convex go to the hypergradient
route first (``routes.hypergradient.auto_applies`` says when, and ``info["route"]`` why).

A linear leader with an LP follower has a global optimum that HiGHS finds exactly once big-M
bounds are derived; when the problem is not linear, a bound cannot be derived, or the MILP
result does not pass the certificate, the KKT route runs (and the better certified point wins).
"""
from __future__ import annotations

import time
from typing import Any

from ..analysis._lp_form import require_linear_bilevel
from ..errors import MethodError
from ..result import BilevelResult
from .kkt import solve_kkt
from .milp import solve_milp


def solve_auto(problem: Any, time_limit: float | None = None, parameters: Any = None, **options: Any) -> BilevelResult:
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
        r = solve_kkt(problem, time_limit=time_limit, parameters=parameters, **options)
        r.info["route"] = f"kkt (milp not applicable: {why}{not_hg})"
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


def _refuse_integers(problem: Any, why: str) -> None:
    ints = getattr(problem, "integer", ())
    if ints:
        raise MethodError(f"the leader variable(s) {list(map(str, ints))} are integer and {why}; the KKT route "
                          "cannot honour integrality: use method='global' (SCIP)")

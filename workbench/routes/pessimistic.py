"""The pessimistic route:  min_x phi_p(x),  phi_p(x) = max_{y in Y*(x)} F(x, y).

    lower -> scan (search/pessimistic.py: inner values over Y*(x), reformulate/pessimistic_inner.py)
          -> attainment probe -> epsilon-optimal point if not attained -> certify -> result

The method (enumeration or a value-function description of Y*(x), the scan of the leader's
box, the attainment test) is in ``workbench/search/pessimistic.py``.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from ..certify import certify
from ..lower import lower
from ..model.protocol import Problem
from ..result import BilevelResult
from ..search.pessimistic import InnerEvaluator, attainment, epsilon_point, leader_region, scan


def solve_pessimistic(problem: Problem, method: str = "kkt", parameters: Mapping | None = None,
                      region: Any = None, n_grid: int = 41, n_starts: int = 8, seed: int = 0,
                      delta: float = 1e-9, epsilon: float = 1e-6, jump_tol: float = 1e-4,
                      certify_starts: int = 8) -> BilevelResult:
    """min_x max_{y in Y*(x)} F(x, y) by the scan described in the module docstring.

    ``method`` is accepted for symmetry with ``solve`` and recorded in ``info``; the
    pessimistic formulation has one solver. ``info`` reports ``pessimistic_value``,
    ``optimistic_value`` (same scan), ``pessimistic_gap``, ``attained`` and, when not
    attained, ``limit_point``, ``infimum`` and the ``epsilon`` of the returned x.
    """
    t0 = time.monotonic()
    lp = lower(problem)
    lo, hi = leader_region(problem, lp, region)
    inner = InnerEvaluator(problem, parameters, n_starts, seed, delta)
    x_p = scan(inner, lo, hi, n_grid, "pessimistic")
    x_o = scan(inner, lo, hi, n_grid, "optimistic")
    att = attainment(inner, x_p, lo, hi, jump_tol)
    x_p = att["x"]
    at_p, at_o = inner(x_p), inner(x_o)
    base = dict(problem=problem, method="pessimistic", parameters=inner.p)
    info: dict = {"requested_method": method, "scheme": "scan + exact enumeration / value-function inner max",
                  "optimistic_value": at_o.optimistic, "optimistic_x": x_o,
                  "optimistic_y": None if at_o.optimistic_point is None else at_o.optimistic_point.y, "inner_evaluations": inner.calls, "delta": delta}
    if not np.isfinite(at_p.pessimistic):
        return BilevelResult(status="infeasible", time_s=time.monotonic() - t0, info=info,
                             message="no sampled leader point has a feasible follower and leader", **base)
    info.update(pessimistic_value=at_p.pessimistic, attained=att["attained"], follower_set=at_p.report,
                singleton=at_p.report.singleton, inner_kind=at_p.kind)
    msg = ""
    if not att["attained"]:
        inf = att["infimum"]
        side = "below" if np.all(att["low_side"] <= att["limit_point"]) else "above"
        lim = att["limit_point"]
        show = lambda z: float(z[0]) if z.size == 1 else np.round(z, 9).tolist()
        x_p = epsilon_point(inner, att, lo, hi, inf, epsilon)
        at_p = inner(x_p)
        msg = (f"the pessimistic infimum {inf:.6g} is not attained: phi_p(x) -> {inf:.6g} as x -> {show(lim)} "
               f"from {side}, but phi_p({show(lim)}) = {att['value_at_limit']:.6g} (there the follower has "
               f"several optimal replies and picks the worst one for the leader). Returning the "
               f"epsilon-optimal x = {show(x_p)} (phi_p = {at_p.pessimistic:.9g}, "
               f"epsilon = {max(at_p.pessimistic - inf, 0.0):.3g}).")
        info.update(infimum=inf, limit_point=lim, value_at_limit=att["value_at_limit"],
                    epsilon=max(at_p.pessimistic - inf, 0.0), pessimistic_value=inf,
                    follower_set=at_p.report, singleton=at_p.report.singleton, inner_kind=at_p.kind)
    info["pessimistic_gap"] = info["pessimistic_value"] - at_o.optimistic
    y_p, lam = at_p.pessimistic_point.y, None
    if at_p.report.minimizers:
        k = int(np.argmin([np.linalg.norm(m - y_p) for m in at_p.report.minimizers]))
        lam = at_p.report.multipliers[k]
    cert = certify(lp, x_p, y_p, inner.p, lam, n_random=certify_starts, seed=seed)
    if att["attained"]:
        status = "optimal" if cert.passed else "not_certified"
        msg = "; ".join(cert.reasons)
    else:
        status = "not_attained"
    if at_p.report.singleton is False:
        msg = (msg + " " if msg else "") + "Y*(x) is not a singleton at the solution: " + "; ".join(at_p.report.reasons)
    return BilevelResult(status=status, x=x_p, y=y_p, lam=lam, certificate=cert,
                         time_s=time.monotonic() - t0, message=msg, info=info, **base)

"""LP followers with a leader paid in shadow prices: the KKT system solved globally by SCIP.

For a follower that is a linear program in y, its KKT conditions are necessary and sufficient,
so the bilevel problem is *exactly*

    min_{x, y, lam, mu}  F(x, y, lam, mu)
    s.t.  G(x, y, lam, mu) >= 0,  H = 0,                        (leader)
          grad_y f(x) - J_g(x)^T lam - J_h(x)^T mu = 0,          (stationarity)
          g(x, y) = s >= 0,  h(x, y) = 0,  lam >= 0,
          SOS1(s_i, lam_i)  for every inequality i               (complementarity)

Price x quantity terms such as lam_balance * q_L stay bilinear: SCIP's spatial branch-and-bound
handles them and the SOS1 constraints need no big-M (a big-M on a multiplier is exactly what a
leader paid with multipliers would exploit). Strong duality could replace such a term by primal
expressions only for special structures (the leader's offer multiplying only its own quantity);
this route does not rewrite F, and says so in ``r.info["route"]``.

SCIP's answer is then checked like every other candidate (``routes.shadow.price_candidate``): the
follower's optimality at x (an LP: convex proof), the multipliers reported are multipliers there,
and F's range over the multiplier set. With SCIP's status "optimal" the leader's level is proven
globally (``optimality="global"``, ``bound`` = SCIP's dual bound).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import sympy as sp

from ..reformulate.linear import require_lp_follower
from ..certify import leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..errors import MethodError
from ..lower import follower_view, lower
from ..result import BilevelResult
from ..solve import FollowerSolver
from ..status import SolverStats, Status
from .shadow import _sense, pick, price_candidate


def _poly_to_scip(expr: sp.Expr, gens: list[sp.Symbol], vars_: list[Any], what: str) -> Any:
    """A polynomial SymPy expression as a PySCIPOpt expression (exact coefficients)."""
    try:
        poly = sp.Poly(sp.expand(expr), *gens)
    except sp.PolynomialError:
        poly = None
    if poly is None or any(c.free_symbols for c in poly.coeffs()):
        raise MethodError(f"method='global_kkt' needs polynomial pieces, but the {what} ({expr}) is not a polynomial "
                          "in the variables and multipliers; use method='kkt'")
    out = 0.0
    for monom, coef in poly.terms():
        term = float(coef)
        for v, k in zip(vars_, monom):
            for _ in range(k):
                term = term * v
        out = out + term
    return out


def solve_global_kkt(problem: Any, parameters: Mapping | None = None, time_limit: float | None = 60.0,
                     requested: str = "global_kkt", gap_tol: float = GAP_TOL, feas_tol: float = FEAS_TOL,
                     seed: int = 0, **_ignored: Any) -> BilevelResult:
    """Solve an LP-follower bilevel problem whose leader uses multipliers with SCIP (module docstring)."""
    from ..certify.global_follower import _require_scip
    scip = _require_scip()
    t0 = time.monotonic()
    require_lp_follower(problem, "global_kkt")
    lp = lower(problem)
    view = follower_view(lp)
    p = problem.parameter_vector(parameters)
    values = dict(zip(problem.parameter_symbols, (float(v) for v in p)))
    m = scip.Model("global_kkt")
    m.hideOutput()
    m.setParam("randomization/randomseedshift", int(seed))
    if time_limit is not None:
        m.setParam("limits/time", float(time_limit))
    m.setParam("limits/gap", 1e-9)
    lo, hi = leader_box(view)
    inf = m.infinity()
    b = lambda v: v if np.isfinite(v) else None  # noqa: E731
    X = [m.addVar(f"x{i}", lb=b(lo[i]), ub=b(hi[i])) for i in range(problem.n_x)]
    Y = [m.addVar(f"y{j}", lb=None, ub=None) for j in range(problem.n_y)]
    L = [m.addVar(f"lam{i}", lb=0.0, ub=None) for i in range(len(problem.g))]
    M = [m.addVar(f"mu{k}", lb=None, ub=None) for k in range(len(problem.h))]
    S = [m.addVar(f"s{i}", lb=0.0, ub=None) for i in range(len(problem.g))]
    mult = {}
    for s, (kind, i) in problem.multiplier_symbols.items():
        mult[s] = L[i] if kind == "ineq" else M[i]
    gens = list(problem.leader) + list(problem.follower) + list(mult)
    vars_ = X + Y + list(mult.values())
    conv = lambda e, what: _poly_to_scip(sp.sympify(e).subs(values), gens, vars_, what)  # noqa: E731
    for c in problem.G:
        m.addCons(conv(c.expr, f"upper constraint {c.name!r}") >= 0)
    for c in problem.H:
        m.addCons(conv(c.expr, f"upper constraint {c.name!r}") == 0)
    for i, c in enumerate(problem.g):
        m.addCons(conv(c.expr, f"lower constraint {c.name!r}") == S[i])
        m.addConsSOS1([S[i], L[i]])
    for c in problem.h:
        m.addCons(conv(c.expr, f"lower constraint {c.name!r}") == 0)
    for j, yj in enumerate(problem.follower):  # stationarity: d f/d y_j - sum lam_i d g_i/d y_j - ... = 0
        expr = conv(sp.diff(problem.f, yj), "lower objective")
        for i, c in enumerate(problem.g):
            d = sp.diff(c.expr, yj)
            if d != 0:
                expr = expr - conv(d, f"lower constraint {c.name!r}") * L[i]
        for k, c in enumerate(problem.h):
            d = sp.diff(c.expr, yj)
            if d != 0:
                expr = expr - conv(d, f"lower constraint {c.name!r}") * M[k]
        m.addCons(expr == 0)
    t = m.addVar("F", lb=None, ub=None)
    m.addCons(conv(problem.F, "upper objective") <= t)
    m.setObjective(t, "minimize")
    m.optimize()
    status, nsol = m.getStatus(), m.getNSols()
    stats = SolverStats("scip", status)
    info = {"route": ("global_kkt: the follower LP's KKT system with SOS1 complementarity, solved globally by SCIP "
                      "(bilinear price x quantity terms kept; no strong-duality rewrite of F)"),
            "requested": requested, "scip_status": status}
    elapsed = time.monotonic() - t0
    base = dict(problem=problem, method="global_kkt", parameters=p, time_s=elapsed, info=info, solver_stats=stats)
    if status == "unbounded" or (status == "inforunbd" and nsol):
        return BilevelResult(status=Status.UNBOUNDED, message=(
            "SCIP: the single-level KKT problem is unbounded: the leader's objective falls without bound over "
            "follower-optimal points and their multipliers (non-unique multipliers when LICQ fails)"), **base)
    if status in ("infeasible",):
        return BilevelResult(status=Status.INFEASIBLE, message="SCIP: the KKT problem is infeasible", **base)
    if not nsol:
        st = Status.TIME_LIMIT if status in ("timelimit", "gaplimit", "nodelimit") else Status.SOLVER_FAILED
        return BilevelResult(status=st, message=f"SCIP found no solution (status {status})", **base)
    sol = m.getBestSol()
    val = lambda vs: np.array([m.getSolVal(sol, v) for v in vs], float)  # noqa: E731
    x, y, lam, mu = val(X), val(Y), val(L), val(M)
    follower = FollowerSolver(view, tight=True)
    cert_opts = dict(n_random=4, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed)
    c = price_candidate(lp, view, follower, x, y, lam, mu, p, "scip", False, cert_opts)
    optimal = status == "optimal"
    dual = float(m.getDualbound())
    bound = _sense(problem, dual) if np.isfinite(dual) and abs(dual) < 0.5 * inf else None
    r = pick(problem, lp, p, [c], [], None, time.monotonic() - t0, False, method="global_kkt",
             extra_info=info, optimality="global" if optimal else "local", stats=stats)
    if r.status == Status.OPTIMAL and not optimal:
        r.status = Status.TIME_LIMIT
        r.message = f"SCIP stopped with status {status}: the leader's level is not proven"
    if r.status.has_point:
        r.bound = bound
    return r

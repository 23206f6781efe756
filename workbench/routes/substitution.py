"""The substitution route: replace the follower by its closed-form reply y*(x).

    reaction_map -> Phi(x) = F(x, y*(x)), G(x, y*(x)), H(x, y*(x)) -> solve in x -> certify

With one leader variable the reduced problem is solved exactly with SymPy: on
each piece of the reaction map the minimum of the continuous Phi over the
feasible set lies at a stationary point or an end point, so all of them are
enumerated and compared (unbounded ends are checked with limits). Otherwise,
or when SymPy cannot describe a feasible set, the reduced problem is lowered to
CasADi and solved by multistart Ipopt. The answer is mapped back (y = y*(x),
multipliers of the active piece) and certified like every other route.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import casadi as ca
import numpy as np
import sympy as sp

from ..analysis.reaction import ReactionMap, reaction_map
from ..certify import certify, follower_is_convex, implemented_point, leader_box
from ..lower import SympyToCasadi, lower, to_casadi
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..result import BilevelResult
from ..status import SolverStats
from ..solve import IpoptSolver
from ..solve.starts import leader_starts


def _exact_candidates(problem: Any, rm: ReactionMap, pvals: dict) -> list | None:
    """Stationary points and end points of every piece's feasible set (None if SymPy cannot say)."""
    x = problem.leader[0]
    F = problem.F.subs(pvals)
    cands: set = set()
    for pc in rm.pieces:
        region = pc.region.as_set() if pc.region != sp.true else sp.S.Reals
        feas = region
        for c in problem.G + problem.H:
            e = sp.simplify(c.expr.subs(pvals).subs(pc.y))
            s = sp.solveset(e >= 0 if c.kind == "ineq" else sp.Eq(e, 0), x, sp.S.Reals)
            if isinstance(s, sp.ConditionSet):
                return None
            feas = sp.Intersection(feas, s)
        if feas is sp.S.EmptySet:
            continue
        Fi = sp.simplify(F.subs(pc.y))
        stat = sp.solveset(sp.diff(Fi, x), x, feas)
        if isinstance(stat, sp.ConditionSet) or not (stat.is_FiniteSet or stat is sp.S.EmptySet):
            if not (sp.diff(Fi, x) == 0):
                return None
        else:
            cands |= set(stat)
        for end, lim in ((feas.inf, -sp.oo), (feas.sup, sp.oo)):
            if end.is_finite:
                cands.add(end)
            else:
                cands.add(("limit", sp.limit(Fi, x, lim), lim))
        bnd = feas.boundary
        if bnd.is_FiniteSet:
            cands |= {b for b in bnd if b.is_finite}
    return list(cands)


def _exact_solve(problem: Any, rm: ReactionMap, pvals: dict) -> dict | None:
    cands = _exact_candidates(problem, rm, pvals)
    if cands is None:
        return None
    x = problem.leader[0]
    F = problem.F.subs(pvals)
    limits = [c for c in cands if isinstance(c, tuple)]
    rows = []
    for c in (c for c in cands if not isinstance(c, tuple)):
        piece = next((pc for pc in rm.pieces if bool(pc.region.subs(x, c))), None)
        if piece is None:
            continue
        y = {s: e.subs(x, c) for s, e in piece.y.items()}
        ok = all((sp.simplify(k.expr.subs(pvals).subs(y).subs(x, c)) >= 0) if k.kind == "ineq"
                 else sp.simplify(k.expr.subs(pvals).subs(y).subs(x, c)) == 0 for k in problem.G + problem.H)
        if ok:
            rows.append((sp.nsimplify(sp.simplify(F.subs(y).subs(x, c))), c, y))
    best = min(rows, key=lambda r: float(r[0])) if rows else None
    below = [lim for lim in limits if best is None or lim[1] == -sp.oo or float(lim[1]) < float(best[0]) - 1e-12]
    return {"best": best, "candidates": rows, "limits": limits, "below": below}


def _piecewise_total(pairs: list) -> sp.Expr:
    """A Piecewise whose last branch is ``True`` (CasADi needs an otherwise-branch)."""
    if len(pairs) == 1:
        return pairs[0][0]
    return sp.Piecewise(*pairs[:-1], (pairs[-1][0], True))


def _numeric_solve(problem: Any, rm: ReactionMap, pvals: dict, n_starts: int, seed: int,
                   ipopt_options: dict | None, x0: np.ndarray) -> tuple[np.ndarray | None, list]:
    xs = ca.SX.sym("x", problem.n_x)
    tr = SympyToCasadi({s: xs[i] for i, s in enumerate(problem.leader)})
    ys = {s: _piecewise_total([(pc.y[s], pc.region) for pc in rm.pieces]) for s in problem.follower}
    sub = lambda e: e.subs(pvals).subs(ys)
    phi = tr(sub(problem.F))
    G = to_casadi([sub(c.expr) for c in problem.G], tr)
    H = to_casadi([sub(c.expr) for c in problem.H], tr)
    solver = IpoptSolver({"x": xs, "f": phi, "g": ca.vertcat(G, H)}, ipopt_options, name="substitution")
    lbg = np.concatenate([np.zeros(len(problem.G)), np.zeros(len(problem.H))])
    ubg = np.concatenate([np.full(len(problem.G), np.inf), np.zeros(len(problem.H))])
    lp = lower(problem)
    runs = []
    for xs0 in leader_starts(lp, x0, n_starts, seed):
        r = solver.solve(xs0, lbg=lbg, ubg=ubg)
        runs.append(r)
    good = [r for r in runs if r.success]
    return (min(good, key=lambda r: r.objective).w if good else None), runs


def solve_substitution(problem: Any, parameters: Mapping | None = None, start: Mapping | None = None,
                       exact: bool = True,
                       n_starts: int = 6, seed: int = 0, certify_starts: int = 8, gap_tol: float = GAP_TOL,
                       feas_tol: float = FEAS_TOL, max_active_sets: int = 64,
                       ipopt_options: dict | None = None) -> BilevelResult:
    """Solve by substituting the closed-form y*(x) (see module docstring).

    Raises :class:`~workbench.analysis.reaction.NoClosedFormError` (a ``MethodError``)
    when y*(x) has no closed form, with the reason. ``start`` (leader values) seeds the
    numeric multistart; ``exact=False`` skips SymPy's exact solve. ``info`` holds the reaction map,
    the reduced objective, whether the solve was exact and the exact optimum.
    """
    t0 = time.monotonic()
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    pvals = {s: sp.nsimplify(v) for s, v in zip(problem.parameter_symbols, p)}
    rm = reaction_map(problem, parameters=parameters, max_active_sets=max_active_sets)
    pairs = [(sp.simplify(problem.F.subs(pvals).subs(pc.y)), pc.region) for pc in rm.pieces]
    reduced = pairs[0][0] if len(pairs) == 1 and pairs[0][1] == sp.true else sp.Piecewise(*pairs)
    info: dict = {"reaction_map": rm, "reduced_objective": reduced, "exact": False,
                  "singleton": True, "singleton_reason": "strictly convex follower: Y*(x) = {y*(x)} for every x"}
    base = dict(problem=problem, method="substitution", parameters=p)
    x_star = None
    if exact and problem.n_x == 1:
        ex = _exact_solve(problem, rm, pvals)
        if ex is not None:
            info["candidates"] = [(c, v) for v, c, _ in ex["candidates"]]
            if any(lim[1] == -sp.oo for lim in ex["below"]):
                return BilevelResult(status="unbounded", time_s=time.monotonic() - t0, info=info,
                                     message=f"the reduced objective {reduced} tends to -oo on the feasible set", **base)
            if ex["best"] is None:
                return BilevelResult(status="infeasible", time_s=time.monotonic() - t0, info=info,
                                     message="no leader point is feasible with the follower's reply y*(x)", **base)
            value, c, _ = ex["best"]
            info.update(exact=True, exact_x={problem.leader[0]: c}, exact_value=value)
            if ex["below"]:
                info["not_attained"] = [(str(lim[2]), lim[1]) for lim in ex["below"]]
            x_star = np.array([float(c)])
    if x_star is None:
        x0 = problem.start_vectors(start)[0]
        x_star, runs = _numeric_solve(problem, rm, pvals, n_starts, seed, ipopt_options, x0)
        info["ipopt_statuses"] = [r.ipopt_status for r in runs]
        if x_star is None:
            return BilevelResult(status="solver_failed", time_s=time.monotonic() - t0, info=info,
                                 solver_stats=SolverStats("ipopt", runs[0].ipopt_status if runs else None),
                                 message="Ipopt found no point of the reduced problem from any start", **base)
    x_star = np.clip(x_star, *leader_box(lp))  # the leader's bounds hold exactly (see certify/implement.py)
    y = rm(x_star)
    lam, mu = rm.multipliers(x_star)
    cert = certify(lp, x_star, y, p, lam, n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol,
                   seed=seed, follower_convex=follower_is_convex(lp, x_star, p))
    status = "optimal" if cert.passed and "not_attained" not in info else "not_certified"
    msg = "; ".join(cert.reasons)
    if "not_attained" in info:
        msg = (msg + "; " if msg else "") + f"the reduced objective approaches lower values at {info['not_attained']}"
    return BilevelResult(status=status, x=x_star, y=y, lam=lam, mu=mu, certificate=cert,
                         solver_stats=SolverStats("sympy", "exact") if info["exact"] else SolverStats("ipopt", "Solve_Succeeded"),
                         time_s=time.monotonic() - t0, message=msg, info=info, **base)

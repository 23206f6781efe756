"""``method="substitution"``: replace the follower by its closed-form reply y*(x).

    reaction_map (analysis/reaction.py) -> with one leader variable, the exact minimum of
    Phi(x) = F(x, y*(x)) (analysis/reduced_exact.py, SymPy); otherwise, or when SymPy cannot
    describe a feasible set, Substitution (reformulate/substitution.py) -> multistart Ipopt
    -> invert (y = y*(x), multipliers of the active piece) -> certify
"""
from __future__ import annotations

import time
from typing import Mapping

import numpy as np
import sympy as sp

from ..analysis.reaction import reaction_map
from ..analysis.reduced_exact import exact_minimum, reduced_expression
from ..certify import certify, follower_is_convex, leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..lower import lower
from ..model.protocol import Problem
from ..reformulate.substitution import Substitution
from ..result import BilevelResult
from ..solve import IpoptSolver
from ..solve.starts import leader_starts
from ..status import SolverStats

SINGLETON = "strictly convex follower: Y*(x) = {y*(x)} for every x"


def solve_substitution(problem: Problem, parameters: Mapping | None = None, start: Mapping | None = None,
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
    lp, p = lower(problem), problem.parameter_vector(parameters)
    pvals = {s: sp.nsimplify(v) for s, v in zip(problem.parameter_symbols, p)}
    rm = reaction_map(problem, parameters=parameters, max_active_sets=max_active_sets)
    reduced = reduced_expression(problem, rm, pvals)
    info: dict = {"reaction_map": rm, "reduced_objective": reduced, "exact": False,
                  "singleton": True, "singleton_reason": SINGLETON}
    base = dict(problem=problem, method="substitution", parameters=p)
    done = lambda **kw: BilevelResult(time_s=time.monotonic() - t0, info=info, **base, **kw)  # noqa: E731
    x_star = None
    ex = exact_minimum(problem, rm, pvals) if exact and problem.n_x == 1 else None
    if ex is not None:
        info["candidates"] = [(c, v) for v, c, _ in ex.candidates]
        if ex.unbounded:
            return done(status="unbounded", message=f"the reduced objective {reduced} tends to -oo on the feasible set")
        if ex.best is None:
            return done(status="infeasible", message="no leader point is feasible with the follower's reply y*(x)")
        value, c, _ = ex.best
        info.update(exact=True, exact_x={problem.leader[0]: c}, exact_value=value)
        if ex.below:
            info["not_attained"] = [(str(lim[2]), lim[1]) for lim in ex.below]
        x_star = np.array([float(c)])
    reduction = Substitution(rm, pvals)
    if x_star is None:
        nlp, _ = reduction.apply(problem)
        solver = IpoptSolver(nlp, ipopt_options, name="substitution")
        runs = [solver.solve(x0) for x0 in leader_starts(lp, problem.start_vectors(start)[0], n_starts, seed)]
        info["ipopt_statuses"] = [r.ipopt_status for r in runs]
        good = [r for r in runs if r.success]
        if not good:
            return done(status="solver_failed", solver_stats=SolverStats("ipopt", runs[0].ipopt_status if runs else None),
                        message="Ipopt found no point of the reduced problem from any start")
        x_star = nlp.block(min(good, key=lambda r: r.objective).w, "x")
    pt = reduction.point(np.clip(x_star, *leader_box(lp)))  # the leader's bounds hold exactly (certify/implement.py)
    cert = certify(lp, pt.x, pt.y, p, pt.lam, n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol,
                   seed=seed, follower_convex=follower_is_convex(lp, pt.x, p))
    status = "optimal" if cert.passed and "not_attained" not in info else "not_certified"
    msg = "; ".join(cert.reasons)
    if "not_attained" in info:
        msg = (msg + "; " if msg else "") + f"the reduced objective approaches lower values at {info['not_attained']}"
    stats = SolverStats("sympy", "exact") if info["exact"] else SolverStats("ipopt", "Solve_Succeeded")
    return done(status=status, x=pt.x, y=pt.y, lam=pt.lam, mu=pt.mu, certificate=cert, solver_stats=stats,
                message=msg)

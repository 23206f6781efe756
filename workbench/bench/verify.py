"""Independent check of a bilevel point, for benchmarks: NumPy and SCIP, not Ipopt.

Feasibility is evaluated with NumPy functions made by ``sympy.lambdify`` from the SymPy
model (no CasADi). Follower optimality is a *proof*, not a search: SCIP's spatial
branch-and-bound solves the follower globally at the returned x
(:func:`workbench.certify.global_follower.prove_follower_optimal`) and the point passes only
when f(x, y) - phi_lower <= gap_tol (1 + |f(x, y)|) for SCIP's dual bound phi_lower. It fails
closed: a time limit without a certifying bound, an operation SCIP cannot represent, or a
minimiser on an assumed (not derived) bound give ``follower_optimal=False`` with ``reason``.
A multistart local search (the previous check) accepts points whose better replies lie in
basins no start hits; the dual bound cannot miss them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp


@dataclass
class Verdict:
    feasible: bool
    follower_optimal: bool
    upper_infeasibility: float
    lower_infeasibility: float
    gap: float
    better_y: list | None
    reason: str = ""
    proof: Any = None  # the FollowerProof (workbench.certify.global_follower), when one was attempted


def _funcs(problem):
    x, y = list(problem.leader), list(problem.follower)
    args = (x, y)
    lam = lambda e: sp.lambdify(args, e, "numpy")  # noqa: E731
    return {
        "F": lam(problem.F), "f": lam(problem.f),
        "G": [lam(c.expr) for c in problem.G], "H": [lam(c.expr) for c in problem.H],
        "g": [lam(c.expr) for c in problem.g], "h": [lam(c.expr) for c in problem.h],
    }


def _viol(ineq, eq, x, y):
    v = [0.0]
    v += [max(-float(f(x, y)), 0.0) for f in ineq]
    v += [abs(float(f(x, y))) for f in eq]
    return max(v)


def _follower_proof(problem, x, y, gap_tol, time_limit):
    """(optimal, gap, better_y, reason, proof) from a global SCIP follower solve; fails closed."""
    from ..certify.global_follower import prove_follower_optimal
    from ..errors import WorkbenchError
    from ..lower import lower
    try:
        lp = lower(problem)
        p = problem.parameter_vector()
        f_star = float(lp.evaluate("lower_objective", x, y, p)[0])
        proof = prove_follower_optimal(lp, x, y, p, tol=gap_tol * (1 + abs(f_star)), time_limit=time_limit)
    except WorkbenchError as exc:  # no SCIP, unexpandable model, ...: no proof means not verified
        return False, float("nan"), None, f"no proof: {exc}", None
    gap = proof.gap if np.isfinite(proof.gap) else float("nan")
    better = None if proof.better_y is None else np.asarray(proof.better_y).tolist()
    return proof.passed, gap, better, proof.reason, proof


def verify_point(problem, x, y, gap_tol=1e-5, feas_tol=1e-6, time_limit=10.0, **_ignored) -> Verdict:
    """Feasibility of both levels (NumPy) and a global proof of follower optimality (SCIP).

    ``follower_optimal`` is True only with a proof: f(x, y) - phi_lower <= gap_tol (1 + |f(x, y)|)
    where phi_lower is SCIP's dual bound at x; a time limit without a certifying bound, an
    unsupported operation or a minimiser on an assumed bound give False with ``reason``.
    """
    fn = _funcs(problem)
    x, y = np.asarray(x, float), np.asarray(y, float)
    up = _viol(fn["G"], fn["H"], x, y)
    low = _viol(fn["g"], fn["h"], x, y)
    f_star = float(fn["f"](x, y))
    optimal, gap, better, reason, proof = _follower_proof(problem, x, y, gap_tol, time_limit)
    return Verdict(feasible=up <= feas_tol * (1 + abs(float(fn["F"](x, y)))) and low <= feas_tol * (1 + abs(f_star)),
                   follower_optimal=bool(optimal), upper_infeasibility=up, lower_infeasibility=low,
                   gap=float(max(gap, 0.0)) if np.isfinite(gap) else float("nan"),
                   better_y=None if optimal else better, reason=reason, proof=proof)

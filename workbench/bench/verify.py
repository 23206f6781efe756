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

Two refinements keep the verdict honest at the edges of the tolerances:

- A follower that is a linear program in y at the returned x (f, g, h affine in y there) is solved
  exactly with HiGHS (``scipy.optimize.linprog``) instead: an LP needs no box, so an unbounded
  optimal face (where SCIP would have to assume one) still gets a verdict, and an unbounded LP is
  reported as such.
- SCIP accepts points violating constraints by its feasibility tolerance; where the follower's
  feasible set is (nearly) one point such a point can be better by about the square root of the
  violation. A better reply of SCIP that violates the follower's constraints more than the returned
  point does is projected onto the feasible set (SciPy's SLSQP on the NumPy functions, minimum
  distance) and counts only if it is still better there.
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


def _affine_in_y(problem, x) -> bool:
    """f, g and h are affine in y once x is fixed (second derivatives in y vanish identically)."""
    subs = dict(zip(problem.leader, (sp.Float(v) for v in x)))
    ys = list(problem.follower)
    for e in [problem.f] + [c.expr for c in problem.g] + [c.expr for c in problem.h]:
        e = sp.expand(sp.sympify(e).subs(subs))
        for yi in ys:
            d = sp.diff(e, yi)
            if any(d.has(yj) for yj in ys):
                return False
    return True


def _lp_follower(problem, x, y, gap_tol):
    """(optimal, gap, better_y, reason) of an LP follower at x by HiGHS, or None if it is not an LP."""
    from scipy.optimize import linprog
    if not _affine_in_y(problem, x):
        return None
    ys = list(problem.follower)
    subs = dict(zip(problem.leader, (sp.Float(v) for v in x)))
    zero = dict.fromkeys(ys, 0)

    def row(e):
        e = sp.expand(sp.sympify(e).subs(subs))
        return np.array([float(sp.diff(e, v)) for v in ys]), float(e.subs(zero))
    c, c0 = row(problem.f)
    A, b = [], []
    for con in problem.g:  # a y + a0 >= 0  <=>  -a y <= a0
        a, a0 = row(con.expr)
        A.append(-a), b.append(a0)
    Aeq, beq = [], []
    for con in problem.h:
        a, a0 = row(con.expr)
        Aeq.append(a), beq.append(-a0)
    res = linprog(c, A_ub=np.array(A) if A else None, b_ub=np.array(b) if b else None,
                  A_eq=np.array(Aeq) if Aeq else None, b_eq=np.array(beq) if beq else None,
                  bounds=[(None, None)] * len(ys), method="highs")
    value = float(c @ y + c0)
    tol = gap_tol * (1 + abs(value))
    if res.status == 3:
        return False, float("inf"), None, "refuted: the follower's LP is unbounded below at x (HiGHS)"
    if res.status != 0:
        return False, float("nan"), None, f"no proof: HiGHS on the follower's LP: {res.message}"
    phi = float(res.fun + c0)
    gap = value - phi
    if gap <= tol:
        return True, gap, None, f"proven: f(x, y) - phi_LP = {gap:.3g} <= tol {tol:.3g} (follower LP, HiGHS)"
    return False, gap, res.x.tolist(), f"refuted: the follower's LP optimum is better by {gap:.3g} (HiGHS)"


def _project(fn, x, y0, n):
    """The nearest point to y0 satisfying the follower's constraints (SLSQP), or None."""
    from scipy.optimize import minimize
    cons = [{"type": "ineq", "fun": (lambda v, g=g: float(g(x, v)))} for g in fn["g"]]
    cons += [{"type": "eq", "fun": (lambda v, h=h: float(h(x, v)))} for h in fn["h"]]
    y0 = np.asarray(y0, float)
    res = minimize(lambda v: float(np.sum((v - y0) ** 2)), y0, constraints=cons, method="SLSQP",
                   options={"ftol": 1e-15, "maxiter": 500})
    if res.success:
        return res.x
    # SLSQP may stop on its line search right at the feasible set (SciPy >= 1.16): keep such a point
    # only when it moved no farther than the reply's violation explains (a distance ~ sqrt(violation));
    # the caller re-checks its feasibility.
    viol = max([max(0.0, -c["fun"](y0)) for c in cons if c["type"] == "ineq"]
               + [abs(c["fun"](y0)) for c in cons if c["type"] == "eq"] + [0.0])
    near = np.all(np.isfinite(res.x)) and np.linalg.norm(res.x - y0) <= 10 * np.sqrt(viol) + 1e-8
    return res.x if near else None


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
    lp_verdict = _lp_follower(problem, x, y, gap_tol)
    if lp_verdict is not None:
        (optimal, gap, better, reason), proof = lp_verdict, None
    else:
        optimal, gap, better, reason, proof = _follower_proof(problem, x, y, gap_tol, time_limit)
        if not optimal and better is not None and _viol(fn["g"], fn["h"], x, better) > max(low, 1e-12):
            # SCIP's better reply only exists inside its feasibility tolerance: judge it feasible.
            yp = _project(fn, x, better, len(y))
            tol = gap_tol * (1 + abs(f_star))
            projected = yp is not None and _viol(fn["g"], fn["h"], x, yp) <= max(low, 1e-10)
            if projected and float(fn["f"](x, yp)) < f_star - tol:
                better, reason = yp.tolist(), reason + "; still better after projection onto the feasible set"
            elif projected and proof is not None and proof.result.status == "optimal":
                optimal, better = True, None
                reason = (f"verified at the point's own violation {low:.2g}: SCIP's better reply (violation "
                          f"{_viol(fn['g'], fn['h'], x, proof.result.y):.2g}) is not better once projected "
                          "onto the follower's feasible set")
    return Verdict(feasible=up <= feas_tol * (1 + abs(float(fn["F"](x, y)))) and low <= feas_tol * (1 + abs(f_star)),
                   follower_optimal=bool(optimal), upper_infeasibility=up, lower_infeasibility=low,
                   gap=float(max(gap, 0.0)) if np.isfinite(gap) else float("nan"),
                   better_y=None if optimal else better, reason=reason, proof=proof)

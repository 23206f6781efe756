"""Numerical self-checks of a global (SCIP) answer: an independent re-evaluation and a second opinion.

* :func:`numpy_check` re-evaluates F and every constraint on the user's *SymPy* expressions,
  independent of the CasADi lowering that SCIP read (vectorised declarations have only CasADi
  expressions: CasADi evaluates them): the point substituted as 17-digit SymPy Floats
  (``xreplace``), each expression evaluated by SymPy itself. That costs ~1 ms per problem, where
  ``sympy.lambdify`` (code printing and compiling) cost 5-15 ms on a 50 ms solve.
* :func:`near_tolerance` says why an answer sits close enough to a tolerance that a second SCIP run
  (another seed and variable permutation) is worth its cost: a violation above 1 % of the
  feasibility tolerance, a follower proof gap above 1 % of its tolerance, or a complementarity pair
  with both members in (0, 1e-6). SCIP's gap closed to its limit is not such a case (the dual bound
  is what is reported as ``bound``): it sent many BOLIB problems to a second run, and in the BOLIB
  run that had it no cross-check disagreed.
* :func:`compare_runs` judges the two runs: they *disagree* when the second finds a point below the
  first's bound, proves a bound above the first's point, or closes its gap at another value; a
  second run stopped early without either is no second opinion ("inconclusive").
"""
from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from .certificate import GAP_TOL

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

CROSS_TOL = 1e-6        # two SCIP runs agree when their optimal values differ by <= CROSS_TOL (1 + |F|)
VALUE_TOL = 1e-6        # NumPy's F and SCIP's F agree to this (relative to 1 + |F|)

_NUMPY: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _value(expr: Any, args: list, point: np.ndarray) -> float:
    """float(expr) at args = point, by SymPy (nan where it is not a finite real number)."""
    import sympy as sp
    sub = {a: sp.Float(float(v), 17) for a, v in zip(args, point)}
    try:
        return float(sp.sympify(expr).xreplace(sub))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def numpy_check(problem: Problem, lp: Any, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[float, float, str]:
    """(F, max violation of G >= 0, H = 0, g >= 0, h = 0, evaluator) on the user's expressions."""
    if hasattr(problem, "upper_constraints") and hasattr(problem, "F"):
        fn = _NUMPY.get(problem)
        if fn is None:
            args = list(problem.leader) + list(problem.follower) + list(problem.parameter_symbols)
            exprs = [problem.F] + [c.expr for c in problem.G] + [c.expr for c in problem.H] \
                + [c.expr for c in problem.g] + [c.expr for c in problem.h]
            fn = (args, exprs, len(problem.G), len(problem.H), len(problem.g))
            _NUMPY[problem] = fn
        args, exprs, nG, nH, ng = fn
        vals = np.array([_value(e, args, np.concatenate([np.ravel(x), np.ravel(y), np.ravel(p)])) for e in exprs])
        F, rest = vals[0], vals[1:]
        ineq = np.concatenate([rest[:nG], rest[nG + nH:nG + nH + ng]])
        eq = np.concatenate([rest[nG:nG + nH], rest[nG + nH + ng:]])
        how = "sympy (the declaration evaluated at the point)"
    else:
        F = float(lp.evaluate("upper_objective", x, y, p)[0])
        ineq = np.concatenate([lp.evaluate("upper_ineq", x, y, p), lp.evaluate("lower_ineq", x, y, p)])
        eq = np.concatenate([lp.evaluate("upper_eq", x, y, p), lp.evaluate("lower_eq", x, y, p)])
        how = "casadi (vectorised declaration)"
    viol = float(max([0.0, *(-ineq), *np.abs(eq)]))
    if not np.all(np.isfinite(np.concatenate([[F], ineq, eq]))):
        viol = math.inf
    return float(F), viol, how


def near_tolerance(sol: Any, prog: Any, viol: float, cert: Any, feas_tol: float, scip_gap: float) -> list[str]:
    """Why the answer is close to a tolerance (module docstring); empty when it is not."""
    why = []
    if viol > 1e-2 * feas_tol:
        why.append(f"constraint violation {viol:.3g} above 1 % of the feasibility tolerance")
    if sol.gap > scip_gap * (1 + abs(sol.primal)):
        why.append(f"SCIP's gap {sol.gap:.3g} above its limit {scip_gap:g}")
    tol = cert.tolerance.get("gap", GAP_TOL) * (1 + abs(cert.follower_value))
    if cert.proof == "global" and np.isfinite(cert.value_gap) and cert.value_gap > 1e-2 * tol:
        why.append(f"follower proof gap {cert.value_gap:.3g} above 1 % of its tolerance")
    for a, b in prog.sos1:
        if 0 < abs(sol.w[a]) < 1e-6 and 0 < abs(sol.w[b]) < 1e-6:
            why.append(f"complementarity pair ({prog.names[a]}, {prog.names[b]}) both near 0")
            break
    return why


def compare_runs(sol: Any, sol2: Any) -> tuple[str, dict]:
    """("agree" | "disagree" | "inconclusive", report) for two SCIP runs of one program."""
    tol = CROSS_TOL * (1 + abs(sol.primal))
    report = {"first": {"primal": sol.primal, "dual": sol.dual, "seed": sol.seed},
              "second": {"status": sol2.status, "primal": sol2.primal, "dual": sol2.dual, "seed": sol2.seed}}
    if (sol2.primal < sol.dual - tol or sol2.dual > sol.primal + tol
            or (sol2.status == "optimal" and abs(sol2.primal - sol.primal) > tol)):
        verdict = "disagree"
    elif sol2.status != "optimal":
        verdict = "inconclusive"
    else:
        verdict = "agree"
    report["verdict"] = verdict
    return verdict, report

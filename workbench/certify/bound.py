"""A valid lower bound on the bilevel optimum for any result: the cheapest relaxation SCIP can bound.

Every bilevel-feasible (x, y) is feasible for

* the **KKT relaxation** (``reformulate.global_kkt.Bilevel2SOS1KKT``) when the follower's constraints
  are affine in y (Abadie's CQ at every x: KKT is necessary), and
* the **high-point relaxation** (``Bilevel2HighPoint``: drop follower optimality) always,

so SCIP's *dual bound* of either program is a lower bound on min F (the KKT one is tighter), valid
even when SCIP stops at its time limit, but only inside the variable box SCIP was given: a bound is
returned only when every box entry is derived from the constraints (multipliers from dual vertices,
``reformulate.multiplier_bounds``), never inside an assumed box. Integer leader variables stay
integer. In the user's sense: a maximised F gets an upper bound.

:func:`relaxation_bound` is what ``BilevelResult.bound`` computes on first access when the route did
not give one (``BilevelResult.compute_bound(time_limit=...)`` recomputes with another budget).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedExpressionError
from ..lower import lower
from ..reformulate.global_kkt import Bilevel2HighPoint, Bilevel2SOS1KKT, follower_cq
from ..solve.scip import quiet_soplex, solve_program

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

BOUND_TIME = 5.0   # seconds for the lazily computed bound of a result


@dataclass(frozen=True)
class RelaxationBound:
    """A lower bound (user's sense: upper bound for a maximised F) and where it came from."""

    value: float | None
    relaxation: str          # "kkt", "high_point" or "none"
    scip_status: str
    reason: str


def _integers(problem: Problem) -> tuple[int, ...]:
    return tuple(problem.integer_indices()) if hasattr(problem, "integer_indices") else ()


def _solve(prog: Any, time_limit: float) -> Any:
    with quiet_soplex():
        return solve_program(prog, time_limit=time_limit, rel_gap=1e-6, abs_gap=1e-9)


def relaxation_bound(problem: Problem, parameters: np.ndarray | None = None,
                     time_limit: float = BOUND_TIME) -> RelaxationBound:
    """SCIP's dual bound of the KKT relaxation (affine follower constraints) or else of the high-point
    relaxation, with derived bounds only (module docstring). ``value`` None says why in ``reason``."""
    try:
        import pyscipopt  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        return RelaxationBound(None, "none", "", "no bound: PySCIPOpt is not installed")
    lp = lower(problem)
    p = problem.parameter_vector(None) if parameters is None else np.asarray(parameters, float)
    ints = _integers(problem)
    tried = []
    candidates = []
    if follower_cq(lp).kind == "affine":
        candidates.append(("kkt", Bilevel2SOS1KKT(p, None, ints)))
    if not getattr(lp, "multiplier_dependent", False):
        candidates.append(("high_point", Bilevel2HighPoint(p, None, ints)))
    for name, red in candidates:
        try:
            prog, _ = red.apply(lp)
        except UnsupportedExpressionError as exc:
            tried.append(f"{name}: {exc}")
            continue
        if prog.assumed:
            tried.append(f"{name}: no derived bound for " + ", ".join(prog.names[i] for i in prog.assumed))
            continue
        try:
            sol = _solve(prog, time_limit)
        except UnsupportedExpressionError as exc:
            tried.append(f"{name}: {exc}")
            continue
        if sol.status == "infeasible":
            tried.append(f"{name}: SCIP calls the relaxation infeasible")
            continue
        if not math.isfinite(sol.dual):
            tried.append(f"{name}: SCIP ended {sol.status!r} without a finite dual bound")
            continue
        v = -sol.dual if problem.upper_sense == "max" else sol.dual
        return RelaxationBound(float(v), name, sol.status,
                               f"SCIP's dual bound of the {name.replace('_', '-')} relaxation ({sol.status}, "
                               f"{prog.bound_source})")
    return RelaxationBound(None, "none", "", "no valid bound: " + ("; ".join(tried) or "no relaxation applies "
                                                                   "(the leader uses the follower's multipliers)"))

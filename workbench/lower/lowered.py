"""The problem lowered to CasADi once: symbols x, y, p and the six model pieces.

Every numeric stage (reformulations, solvers, certificate, sensitivity) reads
this object, never the SymPy model, so the SymPy -> CasADi translation happens
exactly once per problem (cached weakly on the problem object's identity).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Hashable

import casadi as ca
import numpy as np

from .sympy2casadi import SympyToCasadi, to_casadi


@dataclass
class LoweredProblem:
    """CasADi view of a bilevel problem (all constraints as ``>= 0`` or ``== 0``)."""

    x: Any
    y: Any
    p: Any
    F: Any
    G: Any
    H: Any
    f: Any
    g: Any
    h: Any
    g_names: list[Hashable]
    h_names: list[Hashable]
    G_names: list[Hashable]
    H_names: list[Hashable]
    p_default: np.ndarray
    x_start: np.ndarray
    y_start: np.ndarray
    lower_sense: str = "min"
    upper_sense: str = "min"
    name: str = "bilevel"
    functions: dict[str, ca.Function] = field(default_factory=dict)

    @property
    def n_x(self) -> int:
        return int(self.x.numel())

    @property
    def n_y(self) -> int:
        return int(self.y.numel())

    @property
    def n_p(self) -> int:
        return int(self.p.numel())

    def function(self, name: str) -> ca.Function:
        """Named CasADi Function of (x, y, p): upper_objective, upper_ineq, upper_eq,
        lower_objective, lower_ineq, lower_eq. Built on first use, then cached."""
        if name not in self.functions:
            expr = {"upper_objective": self.F, "upper_ineq": self.G, "upper_eq": self.H,
                    "lower_objective": self.f, "lower_ineq": self.g, "lower_eq": self.h}[name]
            self.functions[name] = ca.Function(name, [self.x, self.y, self.p], [expr],
                                               ["x", "y", "p"], [name])
        return self.functions[name]

    def gradient(self, name: str, wrt: str, x: Any, y: Any, p: Any) -> np.ndarray:
        """Gradient of a scalar model piece ("upper_objective", "lower_objective") in x or y."""
        key = f"gradient_{name}_{wrt}"
        if key not in self.functions:
            expr = {"upper_objective": self.F, "lower_objective": self.f}[name]
            self.functions[key] = ca.Function(key, [self.x, self.y, self.p], [ca.gradient(expr, getattr(self, wrt))])
        return np.asarray(self.functions[key](x, y, p), dtype=float).reshape(-1)

    def evaluate(self, name: str, x: Any, y: Any, p: Any) -> np.ndarray:
        """Numeric value of a model piece at a point (always a flat array)."""
        return np.asarray(self.function(name)(x, y, p), dtype=float).reshape(-1)


_CACHE: "weakref.WeakKeyDictionary[Any, LoweredProblem]" = weakref.WeakKeyDictionary()


def lower(problem: Any) -> LoweredProblem:
    """Translate a ``BilevelProblem`` to CasADi SX (once; later calls hit a cache).

    Problems that already carry CasADi expressions (the vectorised declaration)
    provide ``_lower()`` themselves and are used as they are.
    """
    hit = _CACHE.get(problem)
    if hit is not None:
        return hit
    if hasattr(problem, "_lower"):
        out = problem._lower()
    else:
        out = _lower_sympy(problem)
    _CACHE[problem] = out
    return out


def _lower_sympy(problem: Any) -> LoweredProblem:
    x = ca.SX.sym("x", problem.n_x)
    y = ca.SX.sym("y", problem.n_y)
    p = ca.SX.sym("p", len(problem.parameter_symbols))
    mapping = {s: x[i] for i, s in enumerate(problem.leader)}
    mapping.update({s: y[i] for i, s in enumerate(problem.follower)})
    mapping.update({s: p[i] for i, s in enumerate(problem.parameter_symbols)})
    tr = SympyToCasadi(mapping)
    return LoweredProblem(
        x=x, y=y, p=p,
        F=tr(problem.F), f=tr(problem.f),
        G=to_casadi([c.expr for c in problem.G], tr), H=to_casadi([c.expr for c in problem.H], tr),
        g=to_casadi([c.expr for c in problem.g], tr), h=to_casadi([c.expr for c in problem.h], tr),
        g_names=[c.name for c in problem.g], h_names=[c.name for c in problem.h],
        G_names=[c.name for c in problem.G], H_names=[c.name for c in problem.H],
        p_default=problem.parameter_vector(),
        x_start=problem.point_vector(None, "leader"), y_start=problem.point_vector(None, "follower"),
        lower_sense=problem.lower_sense, upper_sense=problem.upper_sense, name=problem.name,
    )

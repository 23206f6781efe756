"""The follower's derived systems built symbolically with SymPy from the declaration.

    L(x, y, lam, mu) = f - sum_i lam_i g_i - sum_j mu_j h_j      (g >= 0, h = 0, lam >= 0)

``kkt_system(p)`` (stationarity, feasibility, complementarity), ``relaxed_system(p, scheme)``
(one MPCC relaxation) and ``sensitivity_system(p, active)`` (the KKT sensitivity block
system) are plain objects: they hold SymPy expressions in the user's symbols and
render themselves through :func:`workbench.display.latex`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable

import sympy as sp

from ..errors import ModelError
from ..reformulate import Relaxation
from .text import multiplier_symbol


class _Renders:
    """Mixin: ``_repr_latex_`` through the workbench printer (SymPy's Printable pattern)."""

    def _repr_latex_(self) -> str:
        from .latex import latex
        return "$\\displaystyle " + latex(self, mode="inline") + "$"


@dataclass
class Multiplier:
    """A follower constraint with its multiplier symbol (lambda for g >= 0, mu for h = 0)."""

    constraint: Any
    symbol: sp.Symbol
    latex_name: str


@dataclass
class KKTSystem(_Renders):
    """The follower's KKT conditions in the user's symbols."""

    problem: Any
    lagrangian: sp.Expr
    stationarity: list[sp.Expr]
    inequalities: list[Multiplier]
    equalities: list[Multiplier]
    symbol_names: dict = field(default_factory=dict)

    @property
    def multipliers(self) -> list[sp.Symbol]:
        return [m.symbol for m in self.inequalities + self.equalities]


def _multipliers(problem: Any) -> tuple[list[Multiplier], list[Multiplier], dict]:
    ineq, eq, names = [], [], {}
    for c in problem.g:
        s, tex = multiplier_symbol("ineq", c.name)
        ineq.append(Multiplier(c, s, tex))
        names[s] = tex
    for c in problem.h:
        s, tex = multiplier_symbol("eq", c.name)
        eq.append(Multiplier(c, s, tex))
        names[s] = tex
    # the leader's wb.multiplier symbols print like the KKT system's own: lambda_name / mu_name
    for s, (kind, i) in getattr(problem, "multiplier_symbols", {}).items():
        names[s] = (ineq if kind == "ineq" else eq)[i].latex_name
    return ineq, eq, names


def lagrangian(problem: Any) -> sp.Expr:
    """L = f - lam^T g - mu^T h as one SymPy expression (f in the minimisation sense)."""
    return kkt_system(problem).lagrangian


def kkt_system(problem: Any) -> KKTSystem:
    """Build the follower's Lagrangian and KKT system symbolically."""
    ineq, eq, names = _multipliers(problem)
    L = problem.f - sum((m.symbol * m.constraint.expr for m in ineq), sp.S.Zero) \
        - sum((m.symbol * m.constraint.expr for m in eq), sp.S.Zero)
    stationarity = [sp.diff(L, y) for y in problem.follower]
    return KKTSystem(problem, L, stationarity, ineq, eq, names)


@dataclass
class RelaxedSystem(_Renders):
    """The bilevel problem with the follower replaced by its KKT system, complementarity relaxed."""

    kkt: KKTSystem
    scheme: Relaxation
    eps: sp.Symbol = field(default_factory=lambda: sp.Symbol("varepsilon", positive=True))

    @property
    def problem(self) -> Any:
        return self.kkt.problem


def relaxed_system(problem: Any, scheme: "str | Relaxation" = "scholtes") -> RelaxedSystem:
    """The MPCC of ``problem`` under one relaxation scheme (see :class:`Relaxation`)."""
    return RelaxedSystem(kkt_system(problem), Relaxation.parse(scheme))


@dataclass
class SensitivitySystem(_Renders):
    """K [dy/dx; dnu/dx] = -r from differentiating stationarity and the active constraints in x.

    With L = f - nu^T c_A (c_A: active inequalities and all equalities),
    K = [[L_yy, -J_y^T], [J_y, 0]] and r = [L_yx; J_x].
    """

    kkt: KKTSystem
    active: list[Multiplier]
    matrix: sp.Matrix
    rhs: sp.Matrix
    wrt: tuple[sp.Symbol, ...]

    @property
    def problem(self) -> Any:
        return self.kkt.problem


def sensitivity_system(problem: Any, active: Iterable[Hashable] | None = None,
                       wrt: Iterable[sp.Symbol] | None = None) -> SensitivitySystem:
    """The KKT sensitivity block system with the given active inequality names.

    ``active=None`` treats every inequality as active (pass the active set at your
    point, e.g. from ``wb.explore_data``). ``wrt`` defaults to the leader's variables;
    parameters can be given instead.
    """
    kkt = kkt_system(problem)
    by_name = {m.constraint.name: m for m in kkt.inequalities}
    if active is None:
        chosen = list(kkt.inequalities)
    else:
        chosen = []
        for name in active:
            if name not in by_name:
                raise ModelError(f"active constraint {name!r} is not a follower inequality; "
                                 f"known: {list(by_name)}")
            chosen.append(by_name[name])
    rows = chosen + list(kkt.equalities)
    wrt = tuple(problem.leader if wrt is None else wrt)
    y = sp.Matrix(problem.follower)
    xs = sp.Matrix(wrt)
    grad_y = sp.Matrix(kkt.stationarity)
    L_yy = grad_y.jacobian(y)
    L_yx = grad_y.jacobian(xs)
    c = sp.Matrix([m.constraint.expr for m in rows]) if rows else sp.zeros(0, 1)
    J_y = c.jacobian(y) if rows else sp.zeros(0, len(y))
    J_x = c.jacobian(xs) if rows else sp.zeros(0, len(xs))
    K = sp.Matrix.vstack(sp.Matrix.hstack(L_yy, -J_y.T), sp.Matrix.hstack(J_y, sp.zeros(len(rows), len(rows))))
    r = sp.Matrix.vstack(L_yx, J_x)
    return SensitivitySystem(kkt, chosen + list(kkt.equalities), K, -r, wrt)

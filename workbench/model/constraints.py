"""Normalise user constraints to ``expr >= 0`` or ``expr == 0``.

Users write SymPy relationals (``x >= 0``, ``y <= x``, ``sp.Eq(a, b)``); the
pipeline wants one sign convention, so each becomes a :class:`Constraint`
holding ``expr`` with ``kind`` "ineq" (expr >= 0) or "eq" (expr == 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable

import sympy as sp

from ..errors import ConstraintError


@dataclass(frozen=True)
class Named:
    """A relational with a user-chosen name; build it with :func:`named`."""

    name: str
    relation: Any


def named(name: str, relation: Any) -> Named:
    """Attach a name to a constraint, e.g. ``named("capacity", y <= x)``.

    The name keys the constraint's multiplier in results and labels it in LaTeX.
    """
    if not isinstance(name, str) or not name:
        raise ConstraintError(f"constraint name must be a non-empty string, got {name!r}")
    return Named(name, relation)


@dataclass(frozen=True)
class Constraint:
    """One normalised constraint: ``expr >= 0`` (kind "ineq") or ``expr == 0`` (kind "eq")."""

    name: Hashable
    expr: sp.Expr
    kind: str
    source: Any  # the user's original relational, kept for messages and LaTeX

    def __str__(self) -> str:
        op = ">=" if self.kind == "ineq" else "=="
        return f"{self.name}: {self.expr} {op} 0"


def _normalise_one(name: Hashable, rel: Any, where: str) -> Constraint:
    label = f"{where} constraint {name!r} ({rel!r})"
    if isinstance(rel, (bool, sp.logic.boolalg.BooleanAtom)):
        raise ConstraintError(
            f"{label} evaluated to {rel} before the workbench saw it; it does not depend "
            "on any variable. Remove it, or check that the intended symbols appear in it."
        )
    if not isinstance(rel, sp.Basic):
        raise ConstraintError(
            f"{label} is a {type(rel).__name__}, not a SymPy relational. Write it with "
            "SymPy symbols, e.g. y <= x, x >= 0 or sp.Eq(y, 1)."
        )
    if isinstance(rel, (sp.StrictGreaterThan, sp.StrictLessThan)):
        raise ConstraintError(
            f"{label} is a strict inequality; optimisation needs closed sets. "
            "Use >= or <= instead of > or <."
        )
    if isinstance(rel, sp.Ne):
        raise ConstraintError(
            f"{label} uses != which is not a closed constraint. Split it into two "
            "problems (one per side) or drop it."
        )
    if isinstance(rel, sp.GreaterThan):
        expr = rel.lhs - rel.rhs
        kind = "ineq"
    elif isinstance(rel, sp.LessThan):
        expr = rel.rhs - rel.lhs
        kind = "ineq"
    elif isinstance(rel, sp.Equality):
        expr = rel.lhs - rel.rhs
        kind = "eq"
    else:
        raise ConstraintError(
            f"{label} is a {type(rel).__name__}, not a relational. Write constraints as "
            "a >= b, a <= b or sp.Eq(a, b); combine several with a list, not And/Or."
        )
    expr = sp.sympify(expr)
    if expr.has(sp.I) or any(getattr(a, "is_real", True) is False for a in expr.atoms(sp.Number)):
        raise ConstraintError(f"{label} has a complex coefficient; constraints must be real. Remove the "
                              "imaginary unit (sp.I) or split the expression into real and imaginary parts.")
    return Constraint(name, expr, kind, rel)


def normalise(constraints: Iterable[Any] | dict | None, where: str, name_prefix: str = "") -> list[Constraint]:
    """Turn a list/dict of relationals (or :class:`Named`) into :class:`Constraint` objects.

    Unnamed constraints are named by their position in the list (an ``int``), so
    ``r.multipliers[0]`` works for them and ``r.multipliers["capacity"]`` for named ones.
    """
    if constraints is None:
        return []
    if isinstance(constraints, (set, frozenset)):
        raise ConstraintError(
            f"{where} constraints were given as a set; a set has no order, so the constraints' names "
            "(their positions) would change from run to run. Pass a list, or a dict {name: relation}.")
    if isinstance(constraints, dict):
        items = list(constraints.items())
    elif isinstance(constraints, (sp.Basic, Named, bool)):
        items = [(None, constraints)]
    else:
        try:
            items = [(None, c) for c in constraints]
        except TypeError:
            raise ConstraintError(
                f"{where} constraints must be a list or dict of relationals, got {type(constraints).__name__}"
            ) from None
    out: list[Constraint] = []
    seen: set = set()
    for i, (key, rel) in enumerate(items):
        if isinstance(rel, Named):
            key, rel = rel.name, rel.relation
        name = key if key is not None else (f"{name_prefix}{i}" if name_prefix else i)
        if name in seen:
            raise ConstraintError(f"{where} constraint name {name!r} is used twice; names must be unique")
        seen.add(name)
        out.append(_normalise_one(name, rel, where))
    return out

"""``wb.multiplier(name)``: the follower's shadow price of a named constraint, as a leader-level symbol.

A leader that is paid a market price (the multiplier of the follower's balance constraint) or
that caps a price states it with the multiplier itself. The symbol stands for the multiplier in
the README's sign convention

    L = f - lam^T g - mu^T h,   g >= 0  (lam >= 0),   h = 0  (mu free),

so for an equality ``h = lhs - rhs`` the multiplier is the shadow price of its right-hand side
(d min f / d rhs = mu) and for an inequality it is the marginal value of relaxing it. Whether it
is a lam or a mu is decided by the constraint's kind when the problem is built; the symbol is
the same object for every call with the same name (SymPy caches symbols), so expressions built
at different places agree.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable

import sympy as sp

from ..errors import ConstraintError, UnknownMultiplierError


class MultiplierSymbol(sp.Symbol):
    """A SymPy symbol standing for the multiplier of the follower constraint ``constraint``."""

    constraint: str

    def __new__(cls, constraint: str, **_assumptions: Any) -> "MultiplierSymbol":
        obj = super().__new__(cls, f"multiplier({constraint!r})", real=True)
        obj.constraint = constraint
        return obj

    def __getnewargs_ex__(self) -> tuple[tuple, dict]:  # pickling rebuilds from the constraint name
        return (self.constraint,), {}


def multiplier(name: str) -> MultiplierSymbol:
    """The multiplier of the follower constraint named ``name`` (see the module docstring).

    Use it in ``upper_objective`` and ``upper_constraints``; the follower's own pieces cannot
    use it. Only constraints named with ``wb.named(name, ...)`` (or a dict key) can be referred
    to: positions of unnamed constraints change when the list is edited.

    >>> import sympy as sp, workbench as wb
    >>> wb.multiplier("balance") is wb.multiplier("balance")
    True
    """
    if not isinstance(name, str) or not name:
        raise ConstraintError(
            f"wb.multiplier needs the name of a follower constraint (a non-empty string), got {name!r}; "
            "name the constraint with wb.named('balance', ...) and refer to it as wb.multiplier('balance')")
    return MultiplierSymbol(name)


def multipliers_in(expr: sp.Basic) -> set[MultiplierSymbol]:
    """The multiplier symbols an expression uses."""
    return {s for s in expr.free_symbols if isinstance(s, MultiplierSymbol)}


def bind_multipliers(items: Iterable[tuple[str, sp.Expr]], lower: Iterable[tuple[str, sp.Expr]],
                     g_names: list[Hashable], h_names: list[Hashable], moved: Iterable[Hashable] = ()
                     ) -> dict[MultiplierSymbol, tuple[str, int]]:
    """Map every multiplier symbol used by the leader's pieces to ("ineq", i) or ("eq", k).

    ``items`` are the leader's (label, expression) pairs, ``lower`` the follower's; ``moved``
    names follower constraints without follower variables (they became leader constraints and
    have no multiplier). Raises :class:`UnknownMultiplierError` naming the symbol and listing the
    follower constraints that do have multipliers.
    """
    for what, e in lower:
        used = multipliers_in(e)
        if used:
            s = sorted(used, key=str)[0]
            raise UnknownMultiplierError(
                f"the {what} uses {s}: the follower's own objective and constraints cannot depend on its "
                "multipliers; wb.multiplier(...) belongs in upper_objective or upper_constraints")
    names = [n for n in g_names] + [n for n in h_names]
    out: dict[MultiplierSymbol, tuple[str, int]] = {}
    for what, e in items:
        for s in sorted(multipliers_in(e), key=str):
            if s in out:
                continue
            c = s.constraint
            if c in g_names:
                out[s] = ("ineq", g_names.index(c))
            elif c in h_names:
                out[s] = ("eq", h_names.index(c))
            elif c in set(moved):
                raise UnknownMultiplierError(
                    f"the {what} uses wb.multiplier({c!r}), but the follower constraint {c!r} has no follower "
                    "variable, so it was moved to the leader and has no multiplier; make it depend on the "
                    "follower's variables or drop the multiplier")
            else:
                named = [n for n in names if isinstance(n, str)]
                raise UnknownMultiplierError(
                    f"the {what} uses wb.multiplier({c!r}), but the follower has no constraint named {c!r}; "
                    f"named follower constraints: {named or 'none'} (name one with wb.named({c!r}, ...))")
    return out

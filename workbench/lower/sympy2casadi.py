"""Translate SymPy expressions to CasADi graphs, node by node (no string eval).

Shared sub-expressions are translated once (a cache keyed by the SymPy node),
so large structured models do not blow up. Unsupported functions raise a
``ModelError`` naming the function.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import casadi as ca
import sympy as sp

from ..errors import ModelError

_UNARY: dict[type, Callable[[Any], Any]] = {
    sp.exp: ca.exp, sp.log: ca.log, sp.sin: ca.sin, sp.cos: ca.cos, sp.tan: ca.tan,
    sp.asin: ca.asin, sp.acos: ca.acos, sp.atan: ca.atan, sp.sinh: ca.sinh,
    sp.cosh: ca.cosh, sp.tanh: ca.tanh, sp.asinh: ca.asinh, sp.acosh: ca.acosh,
    sp.atanh: ca.atanh, sp.Abs: ca.fabs, sp.sign: ca.sign, sp.floor: ca.floor,
    sp.ceiling: ca.ceil, sp.erf: ca.erf,
}


class SympyToCasadi:
    """Callable translator bound to a symbol -> CasADi mapping."""

    def __init__(self, mapping: Mapping[sp.Symbol, Any]):
        self.mapping = dict(mapping)
        self.cache: dict[sp.Basic, Any] = {}

    def __call__(self, expr: sp.Basic) -> Any:
        expr = sp.sympify(expr)
        hit = self.cache.get(expr)
        if hit is not None:
            return hit
        out = self._translate(expr)
        self.cache[expr] = out
        return out

    def _translate(self, e: sp.Basic) -> Any:
        if isinstance(e, sp.Symbol):
            if e not in self.mapping:
                raise ModelError(f"symbol {e} has no CasADi counterpart (not a declared variable or parameter)")
            return self.mapping[e]
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            if e.is_real is False:
                raise ModelError(f"complex constant {e} cannot be lowered to CasADi")
            return float(e)
        if isinstance(e, sp.Add):
            terms = [self(a) for a in e.args]
            out = terms[0]
            for t in terms[1:]:
                out = out + t
            return out
        if isinstance(e, sp.Mul):
            factors = [self(a) for a in e.args]
            out = factors[0]
            for t in factors[1:]:
                out = out * t
            return out
        if isinstance(e, sp.Pow):
            base, ex = e.args
            b = self(base)
            if ex == sp.Rational(1, 2):
                return ca.sqrt(b)
            if ex.is_Integer:
                k = int(ex)
                if k == 2:
                    return b * b
                if k == -1:
                    return 1.0 / b
                return ca.power(b, k) if k > 0 else 1.0 / ca.power(b, -k)
            return b ** self(ex)
        if isinstance(e, (sp.Max, sp.Min)):
            op = ca.fmax if isinstance(e, sp.Max) else ca.fmin
            args = [self(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = op(out, a)
            return out
        if isinstance(e, sp.Heaviside):
            return ca.if_else(self(e.args[0]) >= 0, 1.0, 0.0)
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e)
        f = _UNARY.get(type(e))
        if f is not None:
            return f(self(e.args[0]))
        if isinstance(e, sp.atan2):
            return ca.atan2(self(e.args[0]), self(e.args[1]))
        raise ModelError(f"the function {type(e).__name__} (in {e}) cannot be lowered to CasADi")

    def _piecewise(self, e: sp.Piecewise) -> Any:
        out = None
        for value, cond in reversed(e.args):
            v = self(value)
            if cond == sp.true:
                out = v
                continue
            if out is None:
                raise ModelError(f"Piecewise {e} has no otherwise-branch; add (value, True)")
            out = ca.if_else(self._condition(cond), v, out)
        return out

    def _condition(self, c: sp.Basic) -> Any:
        if isinstance(c, sp.And):
            return ca.logic_and(*[self._condition(a) for a in c.args[:2]]) if len(c.args) == 2 else \
                ca.logic_and(self._condition(c.args[0]), self._condition(sp.And(*c.args[1:])))
        if isinstance(c, sp.Or):
            return ca.logic_or(self._condition(c.args[0]), self._condition(sp.Or(*c.args[1:])) if len(c.args) > 2 else self._condition(c.args[1]))
        ops = {sp.GreaterThan: lambda a, b: a >= b, sp.StrictGreaterThan: lambda a, b: a > b,
               sp.LessThan: lambda a, b: a <= b, sp.StrictLessThan: lambda a, b: a < b}
        for t, op in ops.items():
            if isinstance(c, t):
                return op(self(c.lhs), self(c.rhs))
        raise ModelError(f"condition {c} in a Piecewise cannot be lowered to CasADi")


def to_casadi(exprs: list[sp.Basic], translator: SympyToCasadi, empty: Any = ca.SX) -> Any:
    """Translate a list of expressions into one CasADi column (``vertcat``)."""
    if not exprs:
        return empty(0, 1)
    return ca.vertcat(*[translator(e) for e in exprs])

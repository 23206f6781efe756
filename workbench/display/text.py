"""Small LaTeX building blocks: escaped text, numbers, multiplier names.

Multipliers are named after their constraints so a paper reads
``\\lambda_{capacity}`` rather than ``\\lambda_3``; unnamed constraints keep their
position (``\\lambda_{0}``). Names that are not plain alphanumerics are set in
``\\text{}`` with LaTeX's special characters escaped.
"""
from __future__ import annotations

import math
import re
from typing import Hashable

import sympy as sp

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(s: str) -> str:
    """Escape LaTeX's special characters in plain text (for use inside ``\\text{}``)."""
    return "".join(_SPECIAL.get(c, c) for c in str(s))


def text(s: str) -> str:
    """Plain words inside maths: ``\\text{...}`` with escaping."""
    return r"\text{" + escape(s) + "}"


def subscript(name: Hashable) -> str:
    """A constraint name as a subscript body: ``capacity`` or ``\\text{max\\_flow}``."""
    s = str(name)
    if re.fullmatch(r"[A-Za-z0-9]+", s):
        return s
    return text(s)


def multiplier_symbol(kind: str, name: Hashable) -> tuple[sp.Symbol, str]:
    """The SymPy symbol for a constraint's multiplier and its LaTeX name.

    ``kind`` is "ineq" (lambda, for g >= 0) or "eq" (mu, for h = 0). The symbol's
    SymPy name is unique per constraint; the LaTeX name goes to ``symbol_names``.
    """
    letter = "lambda" if kind == "ineq" else "mu"
    sym = sp.Symbol(f"{letter}__wb_{name}", real=True)
    return sym, "\\" + letter + "_{" + subscript(name) + "}"


def number(v: float, digits: int = 6) -> str:
    """A float in LaTeX: ``1.5``, ``-2.3 \\times 10^{-7}``, ``\\infty``, ``\\text{nan}``."""
    v = float(v)
    if math.isnan(v):
        return r"\text{nan}"
    if math.isinf(v):
        return r"\infty" if v > 0 else r"-\infty"
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return s


def vector(values) -> str:
    """A numeric vector as a LaTeX row ``(a, b, c)`` (a scalar stays bare)."""
    vals = [number(v) for v in values]
    return vals[0] if len(vals) == 1 else r"\left(" + ", ".join(vals) + r"\right)"

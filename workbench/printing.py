"""Objects print themselves: one mixin, and the small LaTeX pieces their ``_latex`` methods use.

SymPy's pattern: every workbench object implements ``_latex(self, printer)`` next to its data,
and the printer (``workbench.display.latex.WorkbenchLatexPrinter``, ``printmethod = "_latex"``)
calls it; SymPy parts inside are printed with ``printer._print`` so the user's symbol names
are kept. The Jupyter hook ``_repr_latex_`` is the three lines of :class:`LatexPrintable`, the
one place a lower stage reaches the printer, lazily, at print time only
(``tests/test_import_graph.py`` checks it).

The pieces below are plain strings: escaped text, numbers, vectors, a constraint name as a
subscript (``\\lambda_{capacity}``, or ``\\text{max\\_flow}`` when it is not alphanumeric),
and the ``aligned`` block every object prints as (amsmath only; the tests compile it with
``pdflatex``).
"""
from __future__ import annotations

import math
import re
from typing import Hashable, Iterable

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


def aligned(lines: list[str]) -> str:
    """Lines joined into one ``aligned`` block (``&`` marks the alignment point)."""
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def joined(printer, syms: Iterable) -> str:
    """Symbols printed and joined by commas (``x, y, \\lambda_{cap}``)."""
    return ", ".join(printer._print(s) for s in syms)


def paren(printer, e) -> str:
    """``e`` printed in parentheses when it is a sum (so products with multipliers read right)."""
    return r"\left(" + printer._print(e) + r"\right)" if isinstance(e, sp.Add) else printer._print(e)


def normalised(printer, c) -> str:
    """A normalised constraint: ``expr \\geq 0`` or ``expr = 0``."""
    return printer._print(c.expr) + (r" \geq 0" if c.kind == "ineq" else " = 0")


def tag(c) -> str:
    """A named constraint's tag ``\\quad \\text{(name)}`` (unnamed ones, named by position, get none)."""
    return "" if isinstance(c.name, int) else r" \quad " + text(f"({c.name})")


def latex_repr(obj) -> str:
    """``$\\displaystyle ...$`` of ``obj`` from the display stage's printer."""
    from .display import latex
    return "$\\displaystyle " + latex(obj, mode="inline") + "$"


class LatexPrintable:
    """Mixin: ``_repr_latex_`` through the printer, which calls the object's own ``_latex``."""

    __slots__ = ()

    def _repr_latex_(self) -> str:
        return latex_repr(self)

"""``wb.latex(obj)``: paper-ready LaTeX for problems, KKT systems, relaxations, results.

The printer of SymPy's pattern: every workbench object implements ``_latex(self, printer)``
next to its data (``BilevelProblem``, ``BilevelResult``, ``Certificate``, ``Relaxation``,
``Sensitivity`` and the systems of ``reformulate/symbolic.py``) and this ``LatexPrinter``
subclass calls it (``printmethod = "_latex"``); the SymPy parts inside are printed with
``printer._print`` so the user's symbol names are kept and multipliers get their constraint
names via ``symbol_names``. Output uses only ``amsmath`` (``aligned``, ``bmatrix``,
``\\operatorname*``); the tests compile it with ``pdflatex``.

Modes: ``"inline"``/``"plain"`` give the bare ``aligned`` block (to put inside
``$...$``), ``"equation"``/``"equation*"`` wrap it in that environment.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..errors import MethodError
from ..printing import vector
from ..reformulate.symbolic import is_symbolic, kkt_system

MODES = ("inline", "plain", "equation", "equation*")


class WorkbenchLatexPrinter(LatexPrinter):
    """LaTeX printer that asks workbench objects for their ``_latex`` (and prints SymPy as SymPy does)."""

    printmethod = "_latex"

    def _print_ndarray(self, a: np.ndarray) -> str:
        return vector(np.asarray(a, float).reshape(-1))


def latex(obj: Any, mode: str = "equation*", **settings: Any) -> str:
    """Paper-ready LaTeX of a workbench object (or any SymPy expression).

    Parameters
    ----------
    obj : BilevelProblem, KKTSystem, RelaxedSystem, Relaxation, SensitivitySystem, Sensitivity,
        BilevelResult, Certificate or a SymPy expression.
    mode : "inline"/"plain" (bare ``aligned`` block), "equation" or "equation*".
    settings : passed to SymPy's ``LatexPrinter`` (e.g. ``symbol_names``).

    Examples
    --------
    >>> import sympy as sp, workbench as wb
    >>> x, y = sp.symbols("x y", real=True)
    >>> p = wb.BilevelProblem([x], [y], x**2 + y, (y - x)**2, lower_constraints=[wb.named("cap", y <= 1)])
    >>> print(wb.latex(wb.display.kkt_system(p), mode="plain").splitlines()[3])
    0 &\\leq 1 - y \\perp \\lambda_{cap} \\geq 0 \\quad \\text{(cap)}
    """
    if mode not in MODES:
        raise MethodError(f"latex mode must be one of {MODES}, got {mode!r}")
    if type(obj).__name__ == "VectorBilevelProblem":
        raise MethodError("a VectorBilevelProblem holds CasADi blocks, not SymPy expressions, so it has no "
                          "LaTeX form; declare a small instance with wb.BilevelProblem to print its equations")
    names = dict(settings.pop("symbol_names", {}) or {})
    problem = getattr(obj, "problem", None) or (obj if type(obj).__name__ == "BilevelProblem" else None)
    if problem is not None and is_symbolic(problem):
        names = {**kkt_system(problem).symbol_names, **names}
    names.setdefault(sp.Symbol("varepsilon", positive=True), r"\varepsilon")
    printer = WorkbenchLatexPrinter({"symbol_names": names, **settings})
    body = printer.doprint(obj)
    if mode in ("inline", "plain"):
        return body
    return "\\begin{" + mode + "}\n" + body + "\n\\end{" + mode + "}"

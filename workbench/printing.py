"""One printing mixin: objects print themselves in Jupyter through ``display.latex``.

The SymPy pattern: an object's ``_repr_latex_`` asks the printer (``workbench.display.latex``,
which dispatches on the object's type) for its LaTeX. The printer lives in the last stage, so
this is the one place a lower stage reaches it, lazily, at print time only; stages never import
``display`` themselves (``tests/test_import_graph.py`` checks it).
"""
from __future__ import annotations


def latex_repr(obj) -> str:
    """``$\\displaystyle ...$`` of ``obj`` from the display stage's printer."""
    from .display import latex
    return "$\\displaystyle " + latex(obj, mode="inline") + "$"


class LatexPrintable:
    """Mixin: ``_repr_latex_`` through :func:`latex_repr`."""

    __slots__ = ()

    def _repr_latex_(self) -> str:
        return latex_repr(self)

"""Stage 7: what a notebook user sees -- LaTeX of every derived system, widgets, plots.

``latex(obj)`` prints problems, KKT systems, relaxations, sensitivity systems,
results and certificates (each object's own ``_latex``; the systems are built in
``reformulate/symbolic.py`` and re-exported here); ``explore(p)`` and ``compare(p)`` are widgets over the
pure functions ``explore_data`` and ``compare_data``. Widgets and plots are
imported on first use so that printing LaTeX never imports matplotlib.

How the LaTeX is checked: tests/test_display_latex.py compiles every rendering
with ``pdflatex`` (Debian texlive-latex-base; preamble ``amsmath, amssymb``). We
chose compilation over SymPy's ``parse_latex``, which cannot read ``aligned``
blocks; the test fails when pdflatex is missing (.ci/browser-deps.sh installs it).
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from ..reformulate.symbolic import (KKTSystem, RelaxedSystem, SensitivitySystem, kkt_system, lagrangian,
                                   relaxed_system, sensitivity_system)
from .latex import WorkbenchLatexPrinter, latex

_LAZY = {
    "explore": "widgets", "Explorer": "widgets",
    "explore_data": "explore_core", "ExploreState": "explore_core", "leader_ranges": "explore_core",
    "compare": "compare_core", "compare_data": "compare_core", "Comparison": "compare_core",
    "plot_homotopy": "plots", "plot_explore": "plots", "plot_compare": "plots",
    "Progress": "progressbar", "progress": "progressbar",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = sorted(["KKTSystem", "RelaxedSystem", "SensitivitySystem", "WorkbenchLatexPrinter", "kkt_system",
                  "lagrangian", "latex", "relaxed_system", "sensitivity_system", *_LAZY])

"""LaTeX of a numeric :class:`Sensitivity` (SymPy's printer on rounded matrices)."""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp


def _matrix(a: np.ndarray, digits: int = 6) -> sp.Matrix:
    def entry(v: float) -> Any:
        if np.isnan(v):
            return sp.Symbol(r"\mathrm{NaN}")
        return sp.Float(float(v), digits) if v != round(v) else sp.Integer(int(round(v)))
    return sp.Matrix(a.shape[0], a.shape[1], [entry(v) for v in np.asarray(a).ravel()])


def sensitivity_latex(s: Any, max_size: int = 12) -> str:
    """dy/dz, dlam/dz and the status; large matrices are summarised by their shape."""
    def show(a: np.ndarray, name: str) -> str:
        if max(a.shape) > max_size:
            return rf"{name} \in \mathbb{{R}}^{{{a.shape[0]} \times {a.shape[1]}}}"
        return f"{name} = " + sp.latex(_matrix(a))
    wrt = ", ".join(sp.latex(w) if isinstance(w, sp.Basic) else str(w) for w in s.wrt_names)
    parts = ([show(s.dy_dx, r"\frac{\partial y^*}{\partial z}"),
              show(s.dlam_dx, r"\frac{\partial \lambda^*}{\partial z}")] if s.differentiable or s.one_sided is None
             else [r"\text{no two-sided derivative (kink)}"])
    status = s.status.replace("_", r"\_")
    text = r",\quad ".join(parts) + rf"\quad z = ({wrt}),\ \text{{status: {status}}}"
    if s.one_sided is not None:
        text += (r",\ \partial_+ y^* = " + sp.latex(_matrix(s.one_sided["+"]))
                 + r",\ \partial_- y^* = " + sp.latex(_matrix(s.one_sided["-"])))
    return "$\\displaystyle " + text + "$"

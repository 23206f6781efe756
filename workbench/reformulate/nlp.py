"""The single-level problem every reduction produces: an NLP with its own bounds.

    min_x f(x; p)  s.t.  lbg <= g(x; p) <= ubg,  lbx <= x <= ubx

in CasADi's ``nlpsol`` form. Bounds not given take CasADi's defaults (-inf, +inf), so a
caller never builds +-inf arrays by hand; ``blocks`` names slices of x (``"x"``, ``"y"``,
``"lam"``, ...) so that ``invert`` reads a solution by name instead of by offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import casadi as ca
import numpy as np


def _bound(v: Any, n: int, default: float) -> np.ndarray:
    if v is None:
        return np.full(n, default)
    out = np.asarray(v, dtype=float).reshape(-1)
    return np.full(n, float(out[0])) if out.size == 1 and n != 1 else out.copy()


@dataclass
class NLP:
    """Variables ``x``, parameters ``p``, objective ``f``, constraints ``g`` and their bounds."""

    x: Any
    f: Any
    g: Any = None
    p: Any = None
    lbx: Any = None
    ubx: Any = None
    lbg: Any = None
    ubg: Any = None
    blocks: dict[str, slice] = field(default_factory=dict)
    name: str = "nlp"

    def __post_init__(self) -> None:
        sym = type(self.x)
        if self.g is None:
            self.g = sym(0, 1)
        if self.p is None:
            self.p = sym(0, 1)
        nx, ng = int(self.x.numel()), int(self.g.numel())
        self.lbx, self.ubx = _bound(self.lbx, nx, -np.inf), _bound(self.ubx, nx, np.inf)
        self.lbg, self.ubg = _bound(self.lbg, ng, -np.inf), _bound(self.ubg, ng, np.inf)

    @property
    def n_x(self) -> int:
        return int(self.x.numel())

    @property
    def n_g(self) -> int:
        return int(self.g.numel())

    @property
    def n_p(self) -> int:
        return int(self.p.numel())

    def casadi(self) -> dict:
        """The ``nlpsol`` problem dict."""
        return {"x": self.x, "p": self.p, "f": self.f, "g": self.g}

    def block(self, w: np.ndarray, name: str) -> np.ndarray:
        """The named slice of a solution vector."""
        return np.asarray(w, dtype=float).reshape(-1)[self.blocks[name]]

    @staticmethod
    def constraints(*rows: tuple[Any, Any, Any]) -> tuple[Any, np.ndarray, np.ndarray]:
        """Stack ``(expr, lb, ub)`` rows (scalar bounds broadcast) into ``(g, lbg, ubg)``."""
        exprs, lbs, ubs = [], [], []
        for expr, lb, ub in rows:
            n = int(expr.numel())
            if not n:
                continue
            exprs.append(expr)
            lbs.append(_bound(lb, n, -np.inf))
            ubs.append(_bound(ub, n, np.inf))
        if not exprs:
            return ca.SX(0, 1), np.zeros(0), np.zeros(0)
        return ca.vertcat(*exprs), np.concatenate(lbs), np.concatenate(ubs)

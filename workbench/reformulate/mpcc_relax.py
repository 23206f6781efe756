"""MPCC -> NLP: relax the complementarity 0 <= s ⊥ lam >= 0 with parameter eps.

Every scheme recovers the MPCC as eps -> 0; the NLP takes eps as the last
entry of its parameter vector, so one ``nlpsol`` serves the whole homotopy.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import casadi as ca
import numpy as np

from ..errors import MethodError
from ..printing import latex_repr
from .bilevel2mpcc import MPCC
from .nlp import NLP
from .reduction import Reduction


class Relaxation(str, Enum):
    """Complementarity relaxations (formulas per pair (s, lam), eps > 0)."""

    SCHOLTES = "scholtes"
    """Scholtes (2001): s * lam <= eps."""
    FISCHER_BURMEISTER = "fischer_burmeister"
    """Smoothed Fischer-Burmeister: s + lam - sqrt(s^2 + lam^2 + 2 eps^2) = 0."""
    KANZOW_SCHWARTZ = "kanzow_schwartz"
    """Kanzow-Schwartz (2013): phi(s - eps, lam - eps) <= 0 with phi(a, b) = a b if a + b >= 0
    else -(a^2 + b^2) / 2."""
    PENALTY = "penalty"
    """Elastic l1 penalty: minimise F + (1/eps) * sum(s * lam) (s, lam >= 0, so the sum is the
    l1 norm of the complementarity products)."""

    @classmethod
    def parse(cls, name: "str | Relaxation") -> "Relaxation":
        try:
            return cls(name)
        except ValueError:
            raise MethodError(
                f"unknown relaxation {name!r}; choose one of {[r.value for r in cls]}"
            ) from None


Relaxation._repr_latex_ = latex_repr  # Enum bodies cannot define _sunder_ names


@dataclass
class RelaxedNLP(NLP):
    """The relaxed MPCC as an :class:`NLP` over the MPCC's w; ``p = [user parameters, eps]``."""

    scheme: Relaxation = Relaxation.SCHOLTES
    mpcc: MPCC | None = None


def _comp_terms(scheme: Relaxation, s: Any, lam: Any, eps: Any) -> tuple[Any, float, float]:
    """Relaxed complementarity constraints and their (lb, ub)."""
    if scheme is Relaxation.SCHOLTES:
        return s * lam, -np.inf, 0.0  # minus eps added by the caller
    if scheme is Relaxation.FISCHER_BURMEISTER:
        return s + lam - ca.sqrt(s ** 2 + lam ** 2 + 2 * eps ** 2), 0.0, 0.0
    if scheme is Relaxation.KANZOW_SCHWARTZ:
        a, b = s - eps, lam - eps
        return ca.if_else(a + b >= 0, a * b, -0.5 * (a ** 2 + b ** 2)), -np.inf, 0.0
    raise AssertionError(scheme)


class MPCCRelax(Reduction):
    """Relax an MPCC with one of the :class:`Relaxation` schemes."""

    def __init__(self, scheme: "str | Relaxation" = Relaxation.SCHOLTES):
        self.scheme = Relaxation.parse(scheme)

    def apply(self, mpcc: MPCC) -> tuple[RelaxedNLP, dict]:
        eps = type(mpcc.w).sym("eps")
        s = mpcc.w[mpcc.comp_s.tolist()] if mpcc.n_comp else type(mpcc.w)(0, 1)
        lam = mpcc.w[mpcc.comp_lam.tolist()] if mpcc.n_comp else type(mpcc.w)(0, 1)
        n_eq, n_in = int(mpcc.g_eq.numel()), int(mpcc.g_ineq.numel())
        objective = mpcc.objective
        parts = [mpcc.g_eq, mpcc.g_ineq]
        lbg = [np.zeros(n_eq), np.zeros(n_in)]
        ubg = [np.zeros(n_eq), np.full(n_in, np.inf)]
        if mpcc.n_comp and self.scheme is Relaxation.PENALTY:
            objective = objective + ca.sum1(s * lam) / eps
        elif mpcc.n_comp:
            expr, lb, ub = _comp_terms(self.scheme, s, lam, eps)
            if self.scheme is Relaxation.SCHOLTES:
                expr = expr - eps
            parts.append(expr)
            lbg.append(np.full(mpcc.n_comp, lb))
            ubg.append(np.full(mpcc.n_comp, ub))
        relaxed = RelaxedNLP(x=mpcc.w, p=ca.vertcat(mpcc.p, eps), f=objective, g=ca.vertcat(*parts),
                             lbg=np.concatenate(lbg), ubg=np.concatenate(ubg), lbx=mpcc.lbw, ubx=mpcc.ubw,
                             blocks=dict(mpcc.blocks), name=f"relaxed_{self.scheme.value}",
                             scheme=self.scheme, mpcc=mpcc)
        return relaxed, {"n_w": int(mpcc.w.numel())}

    def invert(self, w: np.ndarray, inverse_data: dict) -> np.ndarray:
        """The relaxed NLP has the MPCC's variables, so the solution passes through."""
        return np.asarray(w, dtype=float).reshape(-1)[: inverse_data["n_w"]]


def complementarity_residual(mpcc: MPCC, w: np.ndarray) -> float:
    """max_i min(s_i, lam_i): zero exactly when the complementarity holds (s, lam >= 0)."""
    if not mpcc.n_comp:
        return 0.0
    s, lam = w[mpcc.comp_s], w[mpcc.comp_lam]
    return float(np.max(np.minimum(np.abs(s), np.abs(lam))))

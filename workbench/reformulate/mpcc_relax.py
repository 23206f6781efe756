"""MPCC -> NLP: relax the complementarity 0 <= s ⊥ lam >= 0 with parameter eps.

Every scheme recovers the MPCC as eps -> 0; the NLP takes eps as the last
entry of its parameter vector, so one ``nlpsol`` serves the whole homotopy.
The relaxed NLP carries the hooks the homotopy (``solve/homotopy.py``) asks of
any relaxed problem: ``polish(w, p)`` fixes the active set found (s_i = 0 or
lam_i = 0, whichever is smaller) as simple bounds, ``residual`` is the
complementarity residual, ``stationarity`` the follower's max |grad_y L|.
What a scheme is lives in one row of :data:`SCHEMES`: its title, its CasADi term,
the same term in LaTeX and its default eps schedule (a new scheme is one new row
and one enum member). Per pair (s, lam), with s, lam >= 0 kept as simple bounds:

    scholtes            s lam <= eps
    fischer_burmeister  s + lam - sqrt(s^2 + lam^2 + 2 eps^2) = 0
    kanzow_schwartz     phi(s - eps, lam - eps) <= 0,  phi(a, b) = a b if a + b >= 0 else -(a^2 + b^2)/2
    penalty             no row: F + (1/eps) sum_i s_i lam_i  (the l1 norm of the products)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, Callable

import casadi as ca
import numpy as np

from ..errors import MethodError
from ..printing import LatexPrintable, aligned
from .bilevel2mpcc import MPCC
from .nlp import NLP
from .reduction import Reduction

_PHI = r"\phi(a, b) = \begin{cases} a b & a + b \geq 0 \\ -\tfrac12 (a^2 + b^2) & a + b < 0 \end{cases}"


class Relaxation(LatexPrintable, str, Enum):
    """Complementarity relaxations (formulas per pair (s, lam), eps > 0; see :data:`SCHEMES`)."""

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

    @property
    def scheme(self) -> "Scheme":
        return SCHEMES[self]

    def _latex(self, printer: Any) -> str:
        """The scheme on a generic pair (s_i, lam_i), with its title."""
        sc, s, lam, eps = self.scheme, r"s_i", r"\lambda_i", r"\varepsilon"
        signs = f"{s} \\geq 0, \\; {lam} \\geq 0"
        if sc.penalty:
            body = [f"& \\min \\; F + \\tfrac{{1}}{{{eps}}} \\textstyle\\sum_i {sc.latex_term(s, lam, eps)}, "
                    f"\\quad {signs}"]
        else:
            body = [f"& {signs}, \\; {sc.latex_term(s, lam, eps)}"]
        body += ["& " + note for note in sc.latex_notes]
        return aligned([r"& \text{" + sc.title + r"}, \; " + eps + r" \downarrow 0:"] + body)


@dataclass(frozen=True)
class Scheme:
    """One relaxation: its words, its CasADi term, the same term in LaTeX, its eps schedule.

    ``casadi_term(s, lam, eps)`` gives ``(rows, lb, ub)``: the relaxed rows lb <= rows <= ub of
    all pairs at once, or, for a ``penalty`` scheme, the per-pair terms whose sum / eps is added
    to the leader's objective (lb, ub unused). ``latex_term(s, lam, eps)`` is the same condition
    (or penalty term) of one pair, given LaTeX strings.
    """

    title: str
    casadi_term: Callable[[Any, Any, Any], tuple[Any, float, float]]
    latex_term: Callable[[str, str, str], str]
    default_schedule: tuple[float, ...]
    penalty: bool = False
    latex_notes: tuple[str, ...] = ()


def _kanzow_schwartz(s: Any, lam: Any, eps: Any) -> tuple[Any, float, float]:
    a, b = s - eps, lam - eps
    return ca.if_else(a + b >= 0, a * b, -0.5 * (a ** 2 + b ** 2)), -np.inf, 0.0


_TEN = tuple(10.0 ** -k for k in range(0, 10))  # eps = 1, 0.1, ..., 1e-9

SCHEMES: dict[Relaxation, Scheme] = {
    Relaxation.SCHOLTES: Scheme(
        "Scholtes relaxation", lambda s, lam, eps: (s * lam - eps, -np.inf, 0.0),
        lambda s, lam, eps: f"{s}\\, {lam} \\leq {eps}", _TEN),
    Relaxation.FISCHER_BURMEISTER: Scheme(
        "smoothed Fischer--Burmeister",
        lambda s, lam, eps: (s + lam - ca.sqrt(s ** 2 + lam ** 2 + 2 * eps ** 2), 0.0, 0.0),
        lambda s, lam, eps: f"{s} + {lam} - \\sqrt{{{s}^2 + {lam}^2 + 2 {eps}^2}} = 0", _TEN),
    Relaxation.KANZOW_SCHWARTZ: Scheme(
        "Kanzow--Schwartz relaxation", _kanzow_schwartz,
        lambda s, lam, eps: f"\\phi\\left({s} - {eps}, \\; {lam} - {eps}\\right) \\leq 0", _TEN,
        latex_notes=(_PHI,)),
    Relaxation.PENALTY: Scheme(
        "exact complementarity penalty", lambda s, lam, eps: (s * lam, None, None),
        lambda s, lam, eps: f"{s}\\, {lam}", _TEN[:7], penalty=True),
}


@dataclass
class RelaxedNLP(NLP):
    """The relaxed MPCC as an :class:`NLP` over the MPCC's w; ``p = [user parameters, eps]``."""

    scheme: Relaxation = Relaxation.SCHOLTES
    mpcc: MPCC | None = None

    @property
    def polish(self) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None:
        """The polish hook: :meth:`active_set_bounds`, or None without complementarity pairs."""
        return self.active_set_bounds if self.mpcc is not None and self.mpcc.n_comp else None

    def active_set_bounds(self, w: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
        """(lbx, ubx, lbg, ubg) with the active set of ``w`` fixed: s_i = 0 where s_i <= lam_i,
        else lam_i = 0 (``p`` is not needed). The pair is then complementary exactly."""
        mpcc = self.mpcc
        ubw = self.ubx.copy()
        active = w[mpcc.comp_s] <= w[mpcc.comp_lam]
        ubw[mpcc.comp_s[active]] = 0.0
        ubw[mpcc.comp_lam[~active]] = 0.0
        return self.lbx.copy(), ubw, self.lbg, self.ubg

    def residual(self, w: np.ndarray, p: np.ndarray) -> float:
        """The complementarity residual max_i min(s_i, lam_i) (0 on the MPCC)."""
        return complementarity_residual(self.mpcc, w)

    @cached_property
    def _stationarity(self) -> Any:
        mpcc = self.mpcc
        n_y = mpcc.lowered.n_y
        grad = mpcc.g_eq[:n_y] if n_y else ca.DM(0, 1)
        return ca.Function("stationarity", [mpcc.w, mpcc.p], [ca.norm_inf(grad)], ["w", "p"], ["inf_norm"])

    def stationarity(self, w: np.ndarray, p: np.ndarray) -> float:
        """max |grad_y L(x, y, lam, mu)| at ``w`` (the follower's stationarity residual)."""
        return float(self._stationarity(w, p))


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
        scheme = SCHEMES[self.scheme]
        if mpcc.n_comp and scheme.penalty:
            objective = objective + ca.sum1(scheme.casadi_term(s, lam, eps)[0]) / eps
        elif mpcc.n_comp:
            expr, lb, ub = scheme.casadi_term(s, lam, eps)
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

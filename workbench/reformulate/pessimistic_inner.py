"""The inner problem of the pessimistic formulation over the follower's delta-optimal set.

    min_y  sign * F(x, y)   s.t.  g(x, y) >= 0,  h(x, y) = 0,  level - f(x, y) >= 0

with p = [x, user parameters, sign, level] and level = phi(x) + delta s (s ~ 1 + |phi|, the follower's value scale):
sign = +1 gives the optimistic value min_{y in Y*_delta(x)} F, sign = -1 the pessimistic
max_{y in Y*_delta(x)} F (as -min -F). Both signs and every x share one NLP.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from .nlp import NLP
from .reduction import Reduction


class PessimisticInner(Reduction):
    """LoweredProblem -> NLP over y with p = [x, p, sign, level] (see module docstring)."""

    def apply(self, lp: LoweredProblem) -> tuple[NLP, dict]:
        sym = type(lp.y)
        sign, level = sym.sym("sign"), sym.sym("level")
        g, lbg, ubg = NLP.constraints((lp.g, 0.0, np.inf), (lp.h, 0.0, 0.0), (level - lp.f, 0.0, np.inf))
        nlp = NLP(x=lp.y, p=ca.vertcat(lp.x, lp.p, sign, level), f=sign * lp.F, g=g, lbg=lbg, ubg=ubg,
                  blocks={"y": slice(0, lp.n_y)}, name="pessimistic_inner")
        return nlp, {"nlp": nlp}

    @staticmethod
    def parameters(x: np.ndarray, p: np.ndarray, sign: float, level: float) -> np.ndarray:
        return np.concatenate([np.asarray(x, float).reshape(-1), np.asarray(p, float).reshape(-1), [sign, level]])

    def invert(self, w: np.ndarray, inverse_data: dict) -> np.ndarray:
        return inverse_data["nlp"].block(w, "y")

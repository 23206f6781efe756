"""Optimistic selection: at a fixed x, the follower reply best for the leader among the
follower's (near-)optimal replies.

    min_y  F(x, y)   s.t.  g(x, y) >= 0,  phi + tol - f(x, y) >= 0,  h(x, y) = 0

with p = [x, user parameters, phi + tol] (phi the follower's optimal value at x). When the
follower's solution set is not a single point (a face of an LP, a ridge of optimal points)
this is the optimistic choice; the certificate is re-run on its answer. The value bound is a
parameter, so one NLP serves every x and every tolerance.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from .nlp import NLP
from .reduction import Reduction


class OptimisticSelection(Reduction):
    """LoweredProblem -> NLP over y with p = [x, p, phi + tol] (see module docstring)."""

    def apply(self, lp: LoweredProblem) -> tuple[NLP, dict]:
        bound = type(lp.y).sym("phi_plus_tol")
        g, lbg, ubg = NLP.constraints((lp.g, 0.0, np.inf), (bound - lp.f, 0.0, np.inf), (lp.h, 0.0, 0.0))
        nlp = NLP(x=lp.y, p=ca.vertcat(lp.x, lp.p, bound), f=lp.F, g=g, lbg=lbg, ubg=ubg,
                  blocks={"y": slice(0, lp.n_y)}, name="optimistic_selection")
        return nlp, {"nlp": nlp}

    @staticmethod
    def parameters(x: np.ndarray, p: np.ndarray, phi: float, tol: float) -> np.ndarray:
        """p of the NLP: the level phi + tol (1 + |phi|)."""
        return np.concatenate([np.asarray(x, float).reshape(-1), np.asarray(p, float).reshape(-1),
                               [phi + tol * (1 + abs(phi))]])

    def invert(self, w: np.ndarray, inverse_data: dict) -> np.ndarray:
        return inverse_data["nlp"].block(w, "y")

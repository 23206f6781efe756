"""Engine 2 of the hypergradient route: Phi(x) = F(x, y*(x)) and its gradient for any follower the
pipeline can lower, through the sensitivity stage (a tight Ipopt re-solve warm-started at the
previous y, then the KKT sensitivity system). It lives here, not in ``solve/``, because it uses
the sensitivity stage; ``solve/leader_descent.py`` only sees its ``evaluate(x) -> Evaluation``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..solve.leader_descent import Evaluation
from .response import follower_response, follower_solver
from .sensitivity import sensitivity


class KKTFollower:
    """Tight Ipopt re-solve warm-started at the previous y, hypergradient from the KKT system."""

    def __init__(self, problem: Any, p: np.ndarray):
        from ..lower import lower
        self.problem, self.p, self.lp = problem, np.asarray(p, float), lower(problem)
        self.y = np.asarray(self.lp.y_start, float).copy()
        self.last_grad: np.ndarray | None = None

    def evaluate(self, x: np.ndarray) -> Evaluation:
        x = np.asarray(x, float)
        fr = follower_response(self.problem, x, parameters=self.p, start=self.y)
        its = int(follower_solver(self.lp).solver.solver.stats().get("iter_count", 0))
        s = sensitivity(self.problem, x, parameters=self.p, response=fr)
        F = float(self.lp.evaluate("upper_objective", x, fr.y, self.p)[0])
        grad, kink, note, extra = kink_aware_gradient(s, self.last_grad)
        self.y, self.last_grad = fr.y.copy(), grad
        return Evaluation(x.copy(), F, grad, fr.y.copy(), fr.lam.copy(), its, kink, note, extra)


def kink_aware_gradient(s: Any, reference: np.ndarray | None) -> tuple[np.ndarray, bool, str, dict]:
    """∇Φ where it exists; at a kink a one-sided choice per coordinate, else the directional value.

    One-sided rule (g⁺ right, g⁻ left derivative along e_j): step right if g⁺_j < 0, left if
    g⁻_j > 0, else coordinate j is at a minimum of the kink (0). Along a direction d the
    directional derivative is dΦ·d, logged as ``directional``.
    """
    differentiable = bool(getattr(s, "differentiable", True))
    try:
        g = np.asarray(s.hypergradient, float).reshape(-1)
    except Exception as exc:  # noqa: BLE001 - the sensitivity stage's NotDifferentiable (being added)
        if type(exc).__name__ != "NotDifferentiable":
            raise
        g, differentiable = None, False
    if differentiable and g is not None and np.all(np.isfinite(g)):
        return g, False, "", {}
    extra: dict = {"sensitivity_status": getattr(s, "status", None)}
    one = None
    try:
        one = s.one_sided_hypergradient
    except Exception:  # noqa: BLE001 - not available at this kind of point
        one = None
    if one is not None:
        gp, gm = np.asarray(one["+"], float), np.asarray(one["-"], float)
        out = np.where(gp < 0, gp, np.where(gm > 0, gm, 0.0))
        return out, True, "one-sided derivatives (active set changes here)", extra
    fallback = np.nan_to_num(g) if g is not None else (np.zeros(s.lp.n_x) if reference is None else reference)
    if hasattr(s, "directional"):
        d = -(reference if reference is not None else fallback)
        try:
            val = s.directional(d)
            if isinstance(val, tuple):  # (dy, dlam): dΦ·d = F_x·d + F_y·dy
                Fx, Fy = s.upper_gradients()
                val = float(Fx @ d + Fy @ np.asarray(val[0]).reshape(-1))
            extra["directional"] = float(val)
        except Exception as exc:  # noqa: BLE001 - logged, the fallback gradient is used
            extra["directional_error"] = f"{type(exc).__name__}: {exc}"
    return fallback, True, "not differentiable here: the available hypergradient was used", extra



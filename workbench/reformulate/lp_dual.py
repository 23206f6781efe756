"""Bilevel with an LP follower -> NLP by strong duality, the duality gap relaxed by eps.

The follower  min_y c(x)^T y  s.t.  g = A(x) y + b(x) >= 0,  h = E(x) y + e(x) = 0  has the dual
max_{lam >= 0, mu} -b^T lam - e^T mu  s.t.  A^T lam + E^T mu = c. For a primal feasible y and a
dual feasible (lam, mu) the gap  c^T y + b^T lam + e^T mu = lam^T g  is >= 0 (weak duality), and
it is 0 iff both are optimal. So with w = [x, y, lam, mu] and eps the NLP's last parameter

    min_w F(x, y)  s.t.  G >= 0, H = 0                        (leader)
                         g >= 0, h = 0                        (primal feasibility)
                         c - A^T lam - E^T mu = 0, lam >= 0   (dual feasibility = grad_y L = 0)
                         c^T y + b^T lam + e^T mu <= eps      (strong duality, relaxed)

is the optimistic bilevel problem at eps = 0. The gap row holds with equality at every feasible
point there (no constraint qualification), hence the homotopy eps -> 0 and the ``polish`` hook:
it fixes the complementarity pattern found (g_i = 0 where lam_i > g_i, else lam_i = 0) and drops
the gap row, so the last solve is a regular NLP. When b, e, A or E depend on x, leader variables
multiply duals (and c(x)^T y is bilinear when c does): the NLP is nonconvex, Ipopt's answer is
local, and ``nonconvexity`` says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..values import Point
from .nlp import NLP
from .reduction import Reduction

FORMULATION = "primal feasibility + dual feasibility + c.y + b.lam + e.mu <= eps"


def dual_data(lp: LoweredProblem) -> dict[str, Any]:
    """c, A, b, E, e of the follower LP as CasADi expressions of (x, p)."""
    zero = ca.DM.zeros(lp.n_y)
    jac = lambda v: ca.jacobian(v, lp.y) if v.numel() else ca.SX(0, lp.n_y)  # noqa: E731
    return dict(c=ca.gradient(lp.f, lp.y), A=jac(lp.g), b=ca.substitute(lp.g, lp.y, zero),
                E=jac(lp.h), e=ca.substitute(lp.h, lp.y, zero))


def nonconvexity_note(lp: LoweredProblem, d: dict[str, Any]) -> str | None:
    """Why the single-level problem is nonconvex (products of leader variables and duals), or None."""
    why = []
    if any(ca.depends_on(d[k], lp.x) for k in ("b", "e") if d[k].numel()):
        why.append("the follower's right-hand sides depend on x, so b(x).lam is bilinear in leader variables "
                   "and duals")
    if any(ca.depends_on(d[k], lp.x) for k in ("A", "E") if d[k].numel()):
        why.append("the follower's constraint matrix depends on x, so A(x)^T lam is bilinear")
    if ca.depends_on(d["c"], lp.x):
        why.append("the follower's cost c(x) depends on x, so c(x).y is bilinear")
    if not why:
        return None
    return ("the strong-duality single-level problem is nonconvex: " + "; ".join(why)
            + ". Ipopt returns a local solution; use method='milp' for a global one (linear case).")


@dataclass
class StrongDualityNLP(NLP):
    """The NLP of the module docstring over w = [x, y, lam, mu], p = [user parameters, eps].

    ``rows`` names the constraint rows (``"g"``, ``"stationarity"``, ``"gap"``, ...) as ``blocks``
    names the variables; ``gap`` is c^T y + b^T lam + e^T mu as an expression of (w, user p).
    """

    rows: dict[str, slice] | None = None
    gap: Any = None
    stationarity_rows: Any = None
    nonconvexity: str | None = None

    @property
    def polish(self) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
        """The polish hook for the homotopy: :meth:`complementarity_bounds`."""
        return self.complementarity_bounds

    def complementarity_bounds(self, w: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
        """(lbx, ubx, lbg, ubg) with the pattern of ``w`` fixed (g_i = 0 where lam_i > g_i, else
        lam_i = 0) and the degenerate gap row dropped; ``p`` without eps."""
        lbg, ubg, ubx = self.lbg.copy(), self.ubg.copy(), self.ubx.copy()
        g_rows, lam = self.rows["g"], self.blocks["lam"]
        g = np.asarray(self._g_fn(w, p), float).reshape(-1)
        for i, (gi, li) in enumerate(zip(g, np.asarray(w, float)[lam])):
            if li > gi:
                ubg[g_rows.start + i] = 0.0
            else:
                ubx[lam.start + i] = 0.0
        lbg[self.rows["gap"]], ubg[self.rows["gap"]] = -np.inf, np.inf
        return self.lbx.copy(), ubx, lbg, ubg

    def residual(self, w: np.ndarray, p: np.ndarray) -> float:
        """The duality gap c^T y + b^T lam + e^T mu (>= 0 at feasible points, 0 at the bilevel optimum)."""
        return self._fns(w, p)[0]

    def stationarity(self, w: np.ndarray, p: np.ndarray) -> float:
        """max |c - A^T lam - E^T mu| = max |grad_y L|, the follower's stationarity residual."""
        return self._fns(w, p)[1]

    def start(self, x: np.ndarray, y: np.ndarray, lam: np.ndarray | None = None,
              mu: np.ndarray | None = None) -> np.ndarray:
        """w0 from a leader point and a follower point (lam = 1, mu = 0 when not known)."""
        w0 = np.zeros(self.n_x)
        w0[self.blocks["x"]], w0[self.blocks["y"]] = x, y
        w0[self.blocks["lam"]] = 1.0 if lam is None else np.maximum(lam, 0.0)
        if mu is not None:
            w0[self.blocks["mu"]] = mu
        return w0

    @cached_property
    def _user_p(self) -> Any:
        return self.p[:-1]

    @cached_property
    def _g_fn(self) -> ca.Function:
        return ca.Function("follower_ineq", [self.x, self._user_p], [self.g[self.rows["g"]]])

    @cached_property
    def _fn(self) -> ca.Function:
        stat = ca.norm_inf(self.stationarity_rows) if self.stationarity_rows.numel() else ca.SX(0)
        return ca.Function("gap_stationarity", [self.x, self._user_p], [self.gap, stat])

    def _fns(self, w: np.ndarray, p: np.ndarray) -> tuple[float, float]:
        gap, stat = self._fn(w, p)
        return float(gap), float(stat)


class Bilevel2StrongDuality(Reduction):
    """LoweredProblem with an LP follower -> :class:`StrongDualityNLP` (module docstring)."""

    def accepts(self, lp: LoweredProblem) -> bool:
        """Whether the follower is an LP in y (c, A, E free of y)."""
        d = dual_data(lp)
        return not any(ca.depends_on(d[k], lp.y) for k in ("c", "A", "E") if d[k].numel())

    def apply(self, lp: LoweredProblem) -> tuple[StrongDualityNLP, dict]:
        d = dual_data(lp)
        ng, nh = int(lp.g.numel()), int(lp.h.numel())
        lam, mu, eps = ca.SX.sym("lam", ng), ca.SX.sym("mu", nh), ca.SX.sym("eps")
        stat, gap = d["c"], ca.dot(d["c"], lp.y)
        if ng:
            stat = stat - ca.mtimes(d["A"].T, lam)
            gap = gap + ca.dot(d["b"], lam)
        if nh:
            stat = stat - ca.mtimes(d["E"].T, mu)
            gap = gap + ca.dot(d["e"], mu)
        parts = [("G", lp.G, 0, np.inf), ("H", lp.H, 0, 0), ("g", lp.g, 0, np.inf), ("h", lp.h, 0, 0),
                 ("stationarity", stat, 0, 0), ("gap", gap - eps, -np.inf, 0)]
        rows, o = {}, 0
        for name, expr, _, _ in parts:
            rows[name] = slice(o, o + int(expr.numel()))
            o += int(expr.numel())
        g, lbg, ubg = NLP.constraints(*[(expr, lb, ub) for _, expr, lb, ub in parts])
        blocks, o = {}, 0
        for name, n in (("x", lp.n_x), ("y", lp.n_y), ("lam", ng), ("mu", nh)):
            blocks[name] = slice(o, o + n)
            o += n
        lbx = np.full(o, -np.inf)
        lbx[blocks["lam"]] = 0.0
        nlp = StrongDualityNLP(x=ca.vertcat(lp.x, lp.y, lam, mu), p=ca.vertcat(lp.p, eps), f=lp.F, g=g,
                               lbx=lbx, lbg=lbg, ubg=ubg, blocks=blocks, name="strong_duality", rows=rows,
                               gap=gap, stationarity_rows=stat, nonconvexity=nonconvexity_note(lp, d))
        return nlp, {"blocks": blocks}

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        """The bilevel point and the follower's multipliers, read through ``blocks``."""
        b, w = inverse_data["blocks"], np.asarray(w, float).reshape(-1)
        return Point(w[b["x"]], w[b["y"]], w[b["lam"]], w[b["mu"]])

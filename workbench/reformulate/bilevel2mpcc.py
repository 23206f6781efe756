"""Bilevel -> MPCC: replace the follower's argmin by its KKT conditions.

With the Lagrangian  L = f - lam^T g - mu^T h  (lam >= 0 for g >= 0), the MPCC is

    min_{x,y,s,lam,mu} F   s.t.  G >= 0, H = 0, grad_y L = 0, h = 0,
                               g - s = 0,  0 <= s  ⊥  lam >= 0

The slack ``s`` ("lifting") turns the complementarity into a pair of simple
bounds, which Ipopt handles far better than products of nonlinear functions.
Optional value-function cuts  f(x, y) <= f(x, y_k)  (from certified-better
follower responses y_k) are added as upper-level inequalities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..values import Point
from .reduction import Reduction


@dataclass
class MPCC:
    """A single-level MPCC in CasADi form; ``w = [x, y, s, lam, mu]``."""

    w: Any
    p: Any
    objective: Any
    g_eq: Any          # == 0
    g_ineq: Any        # >= 0
    comp_s: np.ndarray     # indices of s in w
    comp_lam: np.ndarray   # indices of lam in w (same order as comp_s)
    lbw: np.ndarray
    ubw: np.ndarray
    blocks: dict[str, slice]
    lowered: LoweredProblem
    n_cuts: int = 0

    @property
    def n_comp(self) -> int:
        return len(self.comp_s)


def lagrangian(lp: LoweredProblem, lam: Any, mu: Any) -> Any:
    """L(x, y, lam, mu) = f - lam^T g - mu^T h (our sign convention, lam >= 0)."""
    L = lp.f
    if lp.g.numel():
        L = L - ca.dot(lam, lp.g)
    if lp.h.numel():
        L = L - ca.dot(mu, lp.h)
    return L


class Bilevel2MPCC(Reduction):
    """Follower KKT reformulation; ``cuts`` are follower points y_k for value-function cuts."""

    def __init__(self, cuts: list[np.ndarray] | None = None):
        self.cuts = [np.asarray(c, dtype=float) for c in (cuts or [])]

    def apply(self, lp: LoweredProblem) -> tuple[MPCC, dict]:
        nx, ny, ng, nh = lp.n_x, lp.n_y, int(lp.g.numel()), int(lp.h.numel())
        sym = type(lp.x)
        s = sym.sym("s", ng)
        lam = sym.sym("lam", ng)
        mu = sym.sym("mu", nh)
        L = lagrangian(lp, lam, mu)
        stationarity = ca.gradient(L, lp.y)
        cuts = [ca.substitute(lp.f, lp.y, ca.DM(c)) - lp.f for c in self.cuts]
        w = ca.vertcat(lp.x, lp.y, s, lam, mu)
        F, G, H = lp.F, lp.G, lp.H
        if getattr(lp, "multiplier_dependent", False):  # wb.multiplier symbols are the MPCC's lam, mu
            nu = ca.vertcat(lp.lam_sym, lp.mu_sym)
            F, G, H = ca.substitute([F, G, H], [nu], [ca.vertcat(lam, mu)])
        g_eq = ca.vertcat(stationarity, lp.h, lp.g - s, H)
        g_ineq = ca.vertcat(G, *cuts) if cuts else G
        o = 0
        blocks = {}
        for name, n in (("x", nx), ("y", ny), ("s", ng), ("lam", ng), ("mu", nh)):
            blocks[name] = slice(o, o + n)
            o += n
        lbw = np.full(o, -np.inf)
        ubw = np.full(o, np.inf)
        lbw[blocks["s"]] = 0.0
        lbw[blocks["lam"]] = 0.0
        mpcc = MPCC(w=w, p=lp.p, objective=F, g_eq=g_eq, g_ineq=g_ineq,
                    comp_s=np.arange(blocks["s"].start, blocks["s"].stop),
                    comp_lam=np.arange(blocks["lam"].start, blocks["lam"].stop),
                    lbw=lbw, ubw=ubw, blocks=blocks, lowered=lp, n_cuts=len(cuts))
        return mpcc, {"blocks": blocks}

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        b = inverse_data["blocks"]
        w = np.asarray(w, dtype=float).reshape(-1)
        return Point(x=w[b["x"]], y=w[b["y"]], lam=w[b["lam"]], mu=w[b["mu"]])


def initial_w(mpcc: MPCC, x: np.ndarray, y: np.ndarray, p: np.ndarray,
              lam: np.ndarray | None = None, mu: np.ndarray | None = None) -> np.ndarray:
    """A starting vector for the MPCC from a leader/follower point (and multipliers)."""
    lp = mpcc.lowered
    b = mpcc.blocks
    w0 = np.zeros(mpcc.lbw.size)
    w0[b["x"]] = x
    w0[b["y"]] = y
    if lp.g.numel():
        w0[b["s"]] = np.maximum(lp.evaluate("lower_ineq", x, y, p), 0.0)
    if lam is not None:
        w0[b["lam"]] = np.maximum(lam, 0.0)
    if mu is not None:
        w0[b["mu"]] = mu
    return w0

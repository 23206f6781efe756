"""Multipliers the leader is paid with: are they multipliers of the follower, and are they unique?

A leader whose objective or constraints use follower multipliers (``wb.multiplier``) is judged on
them, so they need their own checks besides follower optimality of y:

* **They are multipliers** of the follower at (x, y): stationarity grad_y f - J_g^T lam - J_h^T mu = 0,
  lam >= 0 and lam_i g_i = 0 (``residuals.kkt_residuals`` with the *reported* values; the
  certificate's own residual check may swap in a re-solve's multipliers, which is not allowed here).
* **The multiplier set** at (x, y) is the polyhedron

      M = {(lam, mu) : lam >= 0, lam_i = 0 for inactive g_i, J_g^T lam + J_h^T mu = grad_y f},

  a single point when the active gradients are linearly independent (LICQ) and otherwise possibly a
  segment, a polytope or an unbounded set (Wachsmuth 2013: LICQ is exactly what makes M a point for
  every f). When F is affine in the multipliers, F = F0 + c^T nu, its range over M (intersected with
  the leader's constraints that are affine in nu) is two LPs (HiGHS): the optimistic leader takes the
  minimum, the pessimistic one the maximum. An unbounded minimum means the leader can drive F to
  -infinity just by the choice of multiplier at this x: the bilevel problem has no finite optimum.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import casadi as ca
import numpy as np
from scipy.optimize import linprog

from ..lower import LoweredProblem
from .residuals import KKTResiduals, kkt_residuals

ACTIVE_TOL = 1e-6  # g_i <= ACTIVE_TOL (1 + |grad|) counts as active
_KEY = "multiplier_set_data"


@dataclass(frozen=True)
class MultiplierRange:
    """F over the multiplier set at one (x, y) (minimisation sense; see module docstring)."""

    computed: bool                # False when F (or a leader constraint) is not affine in the multipliers
    licq: bool
    low: float                    # min F over M (-inf: unbounded; nan: not computed / infeasible)
    high: float                   # max F over M (+inf: unbounded)
    nu_low: np.ndarray | None     # a multiplier attaining ``low`` ([lam; mu])
    nu_high: np.ndarray | None
    feasible: bool = True         # False: no multiplier in M satisfies the leader's constraints
    reason: str = ""

    @property
    def unique(self) -> bool:
        """F takes one value over M (always so when LICQ holds)."""
        return self.licq or (self.computed and np.isfinite(self.low) and np.isfinite(self.high)
                             and self.high - self.low <= 1e-8 * (1 + abs(self.low)))


def check_multipliers(lp: LoweredProblem, x, y, p, lam, mu) -> KKTResiduals:
    """KKT residuals of the reported multipliers (stationarity, sign, complementarity)."""
    return kkt_residuals(lp, x, y, p, lam, mu)


def _data(lp: LoweredProblem) -> tuple[ca.Function, bool]:
    """Function (x, y, p) -> (grad_y f, J_g, J_h, g, F0, c, G0, G_nu, H0, H_nu) and whether F, G, H
    are affine in nu (then these are exact)."""
    def make() -> tuple[ca.Function, bool]:
        nu = lp.nu_sym
        affine = not ca.depends_on(ca.jacobian(ca.vertcat(lp.F, lp.G, lp.H), nu), nu)
        zero = ca.DM.zeros(nu.shape)
        pieces = []
        for e in (lp.F, lp.G, lp.H):
            pieces += [ca.substitute(e, nu, zero), ca.substitute(ca.jacobian(e, nu), nu, zero)]  # exact when affine
        outs = [ca.gradient(lp.f, lp.y), ca.jacobian(lp.g, lp.y), ca.jacobian(lp.h, lp.y), lp.g] + pieces
        fn = ca.Function(_KEY, [lp.x, lp.y, lp.p], [ca.densify(o) for o in outs])
        return fn, bool(affine)
    return lp.cached(_KEY, make)


def multiplier_range(lp: LoweredProblem, x, y, p, stationarity_tol: float = 1e-7) -> MultiplierRange:
    """The range of F over the follower's multiplier set at (x, y) (see module docstring)."""
    fn, affine = _data(lp)
    vals = [np.asarray(v, float) for v in fn(x, y, p)]
    grad, Jg, Jh, g, F0, c, G0, Gnu, H0, Hnu = vals
    grad, g = grad.reshape(-1), g.reshape(-1)
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    Jg, Jh = Jg.reshape(ng, lp.n_y), Jh.reshape(nh, lp.n_y)
    scale = 1.0 + float(np.max(np.abs(grad), initial=0.0))
    active = g <= ACTIVE_TOL * scale
    rows = np.vstack([Jg[active], Jh])
    licq = rows.shape[0] == 0 or np.linalg.matrix_rank(rows, tol=1e-9 * max(1.0, np.abs(rows).max())) == rows.shape[0]
    if not affine:
        return MultiplierRange(False, licq, np.nan, np.nan, None, None, reason=(
            "the leader's objective or constraints are not affine in the multipliers, so the range of F over the "
            "multiplier set is not computed"))
    A_stat = np.hstack([Jg.T, Jh.T])                      # J_g^T lam + J_h^T mu = grad_y f
    cvec, F0 = c.reshape(-1), float(F0.reshape(-1)[0])
    if licq:  # the multiplier is unique: the least-squares solution on the active columns, exactly
        cols = np.concatenate([np.flatnonzero(active), ng + np.arange(nh)])
        nu = np.zeros(ng + nh)
        if cols.size:
            nu[cols] = np.linalg.lstsq(A_stat[:, cols], grad, rcond=None)[0]
        v = F0 + float(cvec @ nu)
        G = G0.reshape(-1) + Gnu.reshape(-1, ng + nh) @ nu if Gnu.size else np.zeros(0)
        H = H0.reshape(-1) + Hnu.reshape(-1, ng + nh) @ nu if Hnu.size else np.zeros(0)
        ok = np.all(G >= -1e-7) and np.all(np.abs(H) <= 1e-7)
        return MultiplierRange(True, True, v, v, nu, nu, feasible=bool(ok), reason="" if ok else (
            "the follower's (unique) multipliers violate the leader's constraints on multipliers at this point"))
    A_ub, b_ub = [], []
    if Gnu.size:                                          # G0 + G_nu nu >= 0
        A_ub.append(-Gnu.reshape(-1, ng + nh))
        b_ub.append(G0.reshape(-1))
    A_eq, b_eq = [A_stat], [grad]
    if Hnu.size:
        A_eq.append(Hnu.reshape(-1, ng + nh))
        b_eq.append(-H0.reshape(-1))
    bounds = [(0.0, 0.0 if not a else None) for a in active] + [(None, None)] * nh
    ub = dict(A_ub=np.vstack(A_ub), b_ub=np.concatenate(b_ub)) if A_ub else {}
    out = {}
    for sense in (1.0, -1.0):
        r = linprog(sense * cvec, A_eq=np.vstack(A_eq), b_eq=np.concatenate(b_eq), bounds=bounds, method="highs", **ub)
        if r.status == 2:  # rounding in J and grad: allow the stationarity residual the certificate allows
            tol = stationarity_tol * scale
            r = linprog(sense * cvec, A_ub=np.vstack([A_stat, -A_stat] + A_ub[:1]),
                        b_ub=np.concatenate([grad + tol, tol - grad] + b_ub[:1]),
                        A_eq=np.vstack(A_eq[1:]) if len(A_eq) > 1 else None,
                        b_eq=np.concatenate(b_eq[1:]) if len(b_eq) > 1 else None, bounds=bounds, method="highs")
        out[sense] = r
    lo, hi = out[1.0], out[-1.0]
    if lo.status == 2 or hi.status == 2:
        return MultiplierRange(True, licq, np.nan, np.nan, None, None, feasible=False, reason=(
            "no multiplier of the follower at this point satisfies the leader's constraints on multipliers"))
    if lo.status not in (0, 3) or hi.status not in (0, 3):
        return MultiplierRange(False, licq, np.nan, np.nan, None, None, reason=f"HiGHS: {lo.message}; {hi.message}")
    low = -np.inf if lo.status == 3 else F0 + float(lo.fun)
    high = np.inf if hi.status == 3 else F0 - float(hi.fun)
    return MultiplierRange(True, licq, low, high, None if lo.status == 3 else lo.x, None if hi.status == 3 else hi.x)


# -- the follower's whole optimal face (LP followers): y need not be unique either ----------------------
_FACE_KEY = "kkt_face_data"


@dataclass(frozen=True)
class FaceRange:
    """F over every primal-dual optimal pair (y, nu) of an LP follower at x (minimisation sense).

    For an LP the optimal pairs are a product Y*(x) x Lambda*(x), cut out of the KKT system by the
    zero duality gap, a polyhedron at fixed x (see :func:`face_range`)."""

    computed: bool
    unique_y: bool
    low: float
    high: float
    z_low: np.ndarray | None      # [y; lam; mu] attaining ``low``
    z_high: np.ndarray | None
    reason: str = ""


def _face_data(lp: LoweredProblem, F: "ca.SX") -> tuple[ca.Function, bool]:
    """Function (x, p) -> (c, A, g0, E, h0, F0, grad F) at y = 0, nu = 0, and whether F is affine in (y, nu)."""
    key = _FACE_KEY if F is lp.F else f"{_FACE_KEY}_{id(F)}"
    def make() -> tuple[ca.Function, bool, Any]:
        z = ca.vertcat(lp.y, lp.nu_sym)
        zero = ca.DM.zeros(z.shape)
        at0 = lambda e: ca.substitute(e, z, zero)  # noqa: E731
        affine = not ca.depends_on(ca.gradient(F, z), z)
        outs = [at0(ca.gradient(lp.f, lp.y)), ca.jacobian(lp.g, lp.y), at0(lp.g), ca.jacobian(lp.h, lp.y), at0(lp.h),
                at0(F), at0(ca.gradient(F, z))]
        return ca.Function(_FACE_KEY, [lp.x, lp.p], [ca.densify(o) for o in outs]), bool(affine), F
    fn, affine, _ = lp.cached(key, make)
    return fn, affine


def face_range(lp: LoweredProblem, x, p, F: "ca.SX | None" = None) -> FaceRange:
    """The range of F over all optimal (y, lam, mu) of an LP follower at x, by two HiGHS LPs.

    With g = A y + g0(x) >= 0, h = E y + h0(x) = 0 and f = c(x)^T y + const, a pair is primal-dual
    optimal iff it is primal and dual feasible with zero duality gap:

        A y + g0 >= 0,  E y + h0 = 0,  A^T lam + E^T mu = c,  lam >= 0,  c^T y + g0^T lam + h0^T mu <= 0

    (the gap c^T y - (-g0^T lam - h0^T mu) is >= 0 by weak duality). When F(x, ., .) is affine in
    (y, lam, mu) (``F`` may be a rewrite of the leader's objective that equals it on this set, e.g.
    ``reformulate.price_strong_duality``), min and max of F over it are LPs: the optimistic and the
    pessimistic value over every follower-optimal reply and every multiplier of it. ``unique_y``
    is decided by a random direction d: max d^T y - min d^T y over the face (two more LPs).
    """
    F = lp.F if F is None else F
    if not (ca.is_linear(lp.f, lp.y) and (not lp.g.numel() or ca.is_linear(lp.g, lp.y))
            and (not lp.h.numel() or ca.is_linear(lp.h, lp.y))):
        return FaceRange(False, True, np.nan, np.nan, None, None, "the follower is not an LP in y")
    fn, affine = _face_data(lp, F)
    c, A, g0, E, h0, F0, dF = [np.asarray(v, float) for v in fn(x, p)]
    if not affine or not np.all(np.isfinite(dF)):
        return FaceRange(False, True, np.nan, np.nan, None, None, (
            "the leader's objective is not affine in (y, multipliers) at this x (a price x quantity term that no "
            "strong-duality rewrite removed), so its range over the follower's optimal face is not an LP"))
    ny, ng, nh = lp.n_y, int(lp.g.numel()), int(lp.h.numel())
    c, g0, h0, dF = c.reshape(-1), g0.reshape(-1), h0.reshape(-1), dF.reshape(-1)
    A, E = A.reshape(ng, ny), E.reshape(nh, ny)
    n = ny + ng + nh
    A_ub = [np.hstack([-A, np.zeros((ng, ng + nh))]), np.concatenate([c, g0, h0])[None, :]]
    b_ub = [g0, [0.0]]  # zero gap; HiGHS' own feasibility tolerance is the slack
    A_eq = [np.hstack([E, np.zeros((nh, ng + nh))]), np.hstack([np.zeros((ny, ny)), A.T, E.T])]
    b_eq = [-h0, c]
    kw = dict(A_ub=np.vstack(A_ub), b_ub=np.concatenate(b_ub), A_eq=np.vstack(A_eq), b_eq=np.concatenate(b_eq),
              bounds=[(None, None)] * ny + [(0.0, None)] * ng + [(None, None)] * nh, method="highs")
    lo, hi = linprog(dF, **kw), linprog(-dF, **kw)
    if lo.status == 2 or hi.status == 2:
        return FaceRange(False, True, np.nan, np.nan, None, None, "HiGHS found the follower's optimal face empty")
    if lo.status not in (0, 3) or hi.status not in (0, 3):
        return FaceRange(False, True, np.nan, np.nan, None, None, f"HiGHS: {lo.message}; {hi.message}")
    d = np.zeros(n)
    d[:ny] = np.random.default_rng(12345).standard_normal(ny)
    a, b = linprog(d, **kw), linprog(-d, **kw)
    spread = (-b.fun - a.fun) if a.status == 0 and b.status == 0 else np.inf
    F0 = float(F0.reshape(-1)[0])
    return FaceRange(True, bool(spread <= 1e-7 * (1 + np.abs(d).sum() * (1 + np.max(np.abs(a.x[:ny]), initial=0)))
                               if np.isfinite(spread) else False),
                     -np.inf if lo.status == 3 else F0 + float(lo.fun), np.inf if hi.status == 3 else F0 - float(hi.fun),
                     None if lo.status == 3 else lo.x, None if hi.status == 3 else hi.x)

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
    if _KEY not in lp.functions:
        nu = lp.nu_sym
        affine = not ca.depends_on(ca.jacobian(ca.vertcat(lp.F, lp.G, lp.H), nu), nu)
        zero = ca.DM.zeros(nu.shape)
        pieces = []
        for e in (lp.F, lp.G, lp.H):
            pieces += [ca.substitute(e, nu, zero), ca.substitute(ca.jacobian(e, nu), nu, zero)]  # exact when affine
        outs = [ca.gradient(lp.f, lp.y), ca.jacobian(lp.g, lp.y), ca.jacobian(lp.h, lp.y), lp.g] + pieces
        fn = ca.Function(_KEY, [lp.x, lp.y, lp.p], [ca.densify(o) for o in outs])
        lp.functions[_KEY] = (fn, bool(affine))
    return lp.functions[_KEY]


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

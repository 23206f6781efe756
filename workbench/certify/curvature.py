"""Disciplined-convex-programming (DCP) curvature of the follower at a fixed leader point.

Why: the quadratic test (``convexity.py``) misses convex followers such as (x + y - 20)^4,
exp(y1 + y2) + y1^2 or -log(y) + 1/y, and a follower that is not shown convex must be proven
by SCIP, whose spatial branch-and-bound can take seconds to close an absolute gap at a flat
minimum. The DCP rules of Grant, Boyd and Ye (as in CVXPY) decide convexity by composition:

    convex(h(e)) if h is convex and, for each argument, h nondecreasing & e convex,
                 or h nonincreasing & e concave, or e affine;

with the sign of each subexpression tracked where an atom needs it (x^3 is convex only on
x >= 0). The rules are sufficient, not necessary: "unknown" means "not shown", never
"nonconvex".

The analysis replays the problem's CasADi instruction tape (``lower/casadi2scip.py``, recorded
once per problem) with x and p as numbers, so every leader-dependent coefficient is a number
whose sign is known, and each y-dependent value is a :class:`Curv` (curvature and sign).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..lower import LoweredProblem
from ..lower.casadi2scip import Unsupported, _numeric, scip_tape

AFFINE, CONVEX, CONCAVE, UNKNOWN = "affine", "convex", "concave", "unknown"


@dataclass(frozen=True)
class Curv:
    """Curvature of a y-dependent value and its sign (+1 >= 0, -1 <= 0, 0 unknown)."""

    curv: str
    sign: int = 0

    def neg(self) -> "Curv":
        return Curv({CONVEX: CONCAVE, CONCAVE: CONVEX}.get(self.curv, self.curv), -self.sign)

    def scale(self, c: float) -> "Curv | float":
        if c == 0.0:
            return 0.0
        out = self if c > 0 else self.neg()
        return out


_Y = Curv(AFFINE, 0)


def _join(a: str, b: str) -> str:
    if a == AFFINE:
        return b
    if b == AFFINE or a == b:
        return a
    return UNKNOWN


def _sign_of(v: Any) -> int:
    if isinstance(v, float):
        return 1 if v >= 0 else -1
    return v.sign


def _add(a: Any, b: Any) -> Curv:
    ca_, cb = (v.curv if isinstance(v, Curv) else AFFINE for v in (a, b))
    sa, sb = _sign_of(a), _sign_of(b)
    sign = sa if sa == sb else 0
    return Curv(_join(ca_, cb), sign)


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, float):
        return b.scale(a)
    if isinstance(b, float):
        return a.scale(b)
    return Curv(UNKNOWN, a.sign * b.sign if a.sign and b.sign else 0)


def _even_power(a: Curv) -> Curv:
    """a^n for an even integer n >= 2 (convex and nondecreasing on a >= 0, nonincreasing on a <= 0)."""
    if a.curv == AFFINE or (a.curv == CONVEX and a.sign > 0) or (a.curv == CONCAVE and a.sign < 0):
        return Curv(CONVEX, 1)
    return Curv(UNKNOWN, 1)


def _power(a: Any, n: Any) -> Any:
    if not isinstance(n, float):
        return Curv(UNKNOWN)
    if n == 1.0:
        return a
    if n == 0.0:
        return 1.0
    if float(n).is_integer() and int(n) % 2 == 0 and n > 0:
        return _even_power(a)
    if n > 1 and a.sign > 0 and a.curv in (AFFINE, CONVEX):  # x^n, n > 1: convex increasing on x >= 0
        return Curv(CONVEX, 1)
    if 0 < n < 1 and a.sign > 0 and a.curv in (AFFINE, CONCAVE):  # concave increasing on x >= 0
        return Curv(CONCAVE, 1)
    if n < 0 and a.sign > 0 and a.curv in (AFFINE, CONCAVE):  # convex decreasing on x > 0
        return Curv(CONVEX, 1)
    return Curv(UNKNOWN, 1 if a.sign > 0 else 0)


def _inv(a: Curv) -> Curv:
    return _power(a, -1.0)


def _div(a: Any, b: Any) -> Any:
    if isinstance(b, float):
        return _mul(a, 1.0 / b) if b != 0.0 else Curv(UNKNOWN)
    if isinstance(a, float):
        r = _inv(b)
        return _mul(a, r) if isinstance(r, Curv) else r
    return Curv(UNKNOWN)


def _increasing(kind: str, sign: int):
    """An atom that is convex (or concave) and nondecreasing on its whole domain."""
    def atom(a: Curv) -> Curv:
        ok = a.curv in (AFFINE, kind)
        return Curv(kind if ok else UNKNOWN, sign)
    return atom


_CURV = {
    ca.OP_ADD: _add,
    ca.OP_SUB: lambda a, b: _add(a, b.neg() if isinstance(b, Curv) else -b),
    ca.OP_MUL: _mul,
    ca.OP_DIV: _div,
    ca.OP_NEG: lambda a: a.neg(),
    ca.OP_TWICE: lambda a: a,
    ca.OP_SQ: _even_power,
    ca.OP_INV: _inv,
    ca.OP_POW: _power,
    ca.OP_CONSTPOW: _power,
    ca.OP_SQRT: lambda a: Curv(CONCAVE if a.curv in (AFFINE, CONCAVE) else UNKNOWN, 1),
    ca.OP_EXP: _increasing(CONVEX, 1),
    ca.OP_LOG: _increasing(CONCAVE, 0),
    ca.OP_FABS: lambda a: Curv(CONVEX if a.curv == AFFINE else UNKNOWN, 1),
}


def _apply(op: int, args: list[Any]) -> Any:
    if any(isinstance(a, Unsupported) for a in args):
        return Curv(UNKNOWN)
    if all(isinstance(a, float) for a in args):
        v = _numeric(op, args)
        return v if isinstance(v, float) else Curv(UNKNOWN)
    fn = _CURV.get(op)
    if fn is None:
        return Curv(UNKNOWN)
    args = [a if isinstance(a, (float, Curv)) else Curv(UNKNOWN) for a in args]
    try:
        return fn(*args)
    except (AttributeError, TypeError):  # an atom met a value it has no rule for
        return Curv(UNKNOWN)


def _curvature_of(v: Any) -> str:
    if isinstance(v, float):
        return AFFINE if math.isfinite(v) else UNKNOWN
    return v.curv


def follower_is_dcp_convex(lp: LoweredProblem, x: np.ndarray, p: np.ndarray) -> bool:
    """True when, at (x, p), f is convex in y, every h affine and every g (g >= 0) concave by DCP
    rules or a second-order cone written the smooth way (``second_order_cone_row``)."""
    try:
        tape = scip_tape(lp)
    except Exception:  # an MX model that does not expand: not shown convex
        return False
    vals = tape.replay(np.asarray(x, float), [_Y] * lp.n_y, np.asarray(p, float), ("f", "g", "h"), apply=_apply)
    if _curvature_of(vals["f"][0]) not in (AFFINE, CONVEX):
        return False
    if not all(_curvature_of(v) == AFFINE for v in vals["h"]):
        return False
    return all(_curvature_of(v) in (AFFINE, CONCAVE) or second_order_cone_row(lp, i, x, p)
               for i, v in enumerate(vals["g"]))


# ----------------------------------------------------------------------------- second-order cones

def _row_quadratic(lp: LoweredProblem, i: int):
    """Function (x, p) -> (H, b, c) with g_i(y) = 1/2 y'Hy + b'y + c, or None if g_i is not quadratic in y."""
    cache = lp.cached("g_quadratic_rows", dict)
    if i not in cache:
        gi = lp.g[i]
        if not ca.is_quadratic(gi, lp.y):
            cache[i] = None
        else:
            H, b = ca.hessian(gi, lp.y)
            y0 = ca.DM.zeros(lp.n_y)
            parts = [ca.substitute(e, lp.y, y0) for e in (H, b, gi)]
            cache[i] = ca.Function(f"g{i}_quadratic", [lp.x, lp.p], parts)
    return cache[i]


def _affine_rows(lp: LoweredProblem, x, p) -> list[tuple[np.ndarray, float]]:
    """(a, a0) with g_j(y) = a'y + a0 for every affine row of g at (x, p)."""
    cache = lp.cached("g_affine_rows", dict)
    out = []
    for j in range(int(lp.g.numel())):
        if j not in cache:
            gj = lp.g[j]
            cache[j] = (ca.Function(f"g{j}_affine", [lp.x, lp.p], [ca.jacobian(gj, lp.y),
                        ca.substitute(gj, lp.y, ca.DM.zeros(lp.n_y))]) if ca.is_linear(gj, lp.y) else None)
        if cache[j] is not None:
            a, a0 = cache[j](x, p)
            out.append((np.asarray(a, float).reshape(-1), float(a0)))
    return out


def second_order_cone_row(lp: LoweredProblem, i: int, x, p, tol: float = 1e-9) -> bool:
    """Whether {g_i >= 0} intersected with an affine row of g is convex: one sheet of a cone.

    A quadratic g_i(y) = 1/2 (y - y0)'H(y - y0) + c' whose Hessian has exactly one positive
    eigenvalue (eigenvector v), with c' = g_i(y0) <= 0, is >= 0 on two convex sheets split by
    v'(y - y0); an affine row a'y + a0 >= 0 with a = k v keeps one sheet when its offset
    delta = (a'y0 + a0)/|k| is <= 0 or below the sheets' distance sqrt(-2c'/lambda_1) (e.g. t >= 0 with t^2 - |u - x|^2 >= 0).
    On that sheet g_i = phi (A + B) with phi concave and A + B >= 0, so grad g_i is a positive
    multiple of grad phi where g_i = 0: the KKT conditions stay sufficient for a convex f.
    """
    fn = _row_quadratic(lp, i)
    if fn is None:
        return False
    H, b, c = (np.asarray(v, float) for v in fn(x, p))
    b, c = b.reshape(-1), float(c.reshape(-1)[0])
    H = (H + H.T) / 2
    w, V = np.linalg.eigh(H)
    scale = max(1.0, float(np.max(np.abs(w))))
    pos = w > tol * scale
    if pos.sum() != 1:  # exactly one positive eigenvalue, the others <= 0 (up to rounding)
        return False
    y0, *_ = np.linalg.lstsq(H, -b, rcond=None)
    if np.max(np.abs(H @ y0 + b), initial=0.0) > 1e-9 * (1 + np.max(np.abs(b), initial=0.0)):
        return False  # a linear term outside the range of H: the square does not complete
    c_prime = c + 0.5 * float(y0 @ H @ y0) + float(b @ y0)
    if c_prime > tol * (1 + abs(c)):
        return False  # one-sheeted: not convex
    lam1, v = float(w[pos][0]), V[:, pos][:, 0]
    for a, a0 in _affine_rows(lp, x, p):
        na = np.linalg.norm(a)
        if na == 0.0:
            continue
        k = float(a @ v)
        if abs(abs(k) - na) > 1e-9 * na:
            continue  # not along the cone's axis
        delta = (float(a @ y0) + a0) / abs(k)
        if delta <= 0.0 or delta < np.sqrt(2.0 * max(-c_prime, 0.0) / lam1):
            return True
    return False

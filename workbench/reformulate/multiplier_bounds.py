"""Finite bounds on the follower's KKT multipliers, *derived* from dual vertices (not assumed).

For a follower whose constraints are affine in y with constant coefficients,

    g(x, y) = A y + a(x) >= 0,   h(x, y) = B y + b(x) = 0,     (A, B independent of x and y)

the KKT multipliers at (x, y), with r(x, y) = grad_y f(x, y), form the polyhedron

    Lambda(x, y) = {(lam, mu) : lam >= 0, A^T lam + B^T mu = r(x, y), lam_i = 0 for inactive i},

a face of D(x, y) = {lam >= 0, mu : A^T lam + B^T mu = r(x, y)}. The KKT relaxation only needs
*some* multiplier of every bilevel-feasible point inside its box, and:

* rows of B that are combinations of other rows (and rows with B_j = 0) can carry mu_j = 0 (the
  others absorb them); zero columns of A^T (g_i independent of y) can carry lam_i = 0. With
  the remaining rows J independent, D(x, y) is pointed, so the nonempty face Lambda(x, y) has a
  vertex, which is a vertex of D(x, y);
* at a vertex the columns [A_S^T, B_J^T] of its support S = {i : lam_i > 0} are linearly
  independent (else a kernel direction moves both ways inside D), so (lam_S, mu_J) = M_S^+ r(x, y)
  with M_S^+ the pseudo-inverse (the unique solution), and every other lam_i is 0.

Hence over the box of (x, y) derived from the constraints, every component of every vertex lies in
the union over the independent supports S of the range of M_S^+ r(x, y). For an affine gradient
(LP and QP followers) r = R [x; y] + r0 and the range of M_S^+ R [x; y] + M_S^+ r0 over the box is
exact interval arithmetic; otherwise the gradient is enclosed in a box [r_lo, r_hi] by interval
arithmetic replayed on its CasADi tape (:func:`gradient_enclosure`: +, -, *, /, integer powers,
sqrt, exp, log, sin, cos, tanh; anything else gives no bound), and M_S^+ r over that box is bounded
the same way (valid, looser). The supports are enumerated
depth-first (supersets of a dependent set are skipped), up to ``MAX_SUPPORTS``; beyond it, or when
the structure does not fit (coefficients depending on x or y, a nonaffine gradient, multipliers in
the leader's problem, where the leader's choice among multipliers matters), nothing is derived and
the caller's assumed box stays (reported as assumed).
"""
from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

MAX_SUPPORTS = 20000     # independent supports enumerated at most (beyond: no derived bound)
RANK_TOL = 1e-9          # relative singular-value tolerance for "linearly independent"
PAD = 1e-7               # outward rounding of the derived bounds, relative to 1 + |bound|


@dataclass(frozen=True)
class MultiplierBox:
    """Bounds on lam (one per g row) and mu (one per h row); +-inf where none was derived."""

    lam_lo: np.ndarray
    lam_hi: np.ndarray
    mu_lo: np.ndarray
    mu_hi: np.ndarray
    supports: int
    reason: str
    box_limited: bool = False   # infinite only because the (x, y) box is: a tighter box may help

    @property
    def derived(self) -> bool:
        return bool(np.all(np.isfinite(np.concatenate([self.lam_lo, self.lam_hi, self.mu_lo, self.mu_hi]))))


def _none(ng: int, nh: int, reason: str, box_limited: bool = False) -> MultiplierBox:
    return MultiplierBox(np.zeros(ng), np.full(ng, np.inf), np.full(nh, -np.inf), np.full(nh, np.inf), 0, reason,
                         box_limited)


def _numeric(e, lp, p_value):
    return ca.substitute(e, lp.p, ca.DM(np.asarray(p_value, float))) if lp.p.numel() and e.numel() else e


def _constant_matrix(e, wrt, lp, p_value, n_cols) -> np.ndarray | None:
    if not e.numel():
        return np.zeros((0, n_cols))
    e = _numeric(e, lp, p_value)
    J = ca.jacobian(e, wrt)
    if ca.depends_on(J, ca.vertcat(lp.x, lp.y)):
        return None
    return np.asarray(ca.evalf(J), float).reshape(int(e.numel()), n_cols)


def _independent_rows(B: np.ndarray) -> list[int]:
    keep: list[int] = []
    for j in range(B.shape[0]):
        trial = B[keep + [j]]
        if np.linalg.matrix_rank(trial, tol=RANK_TOL * max(1.0, np.abs(B).max(initial=0.0))) == len(keep) + 1:
            keep.append(j)
    return keep


def _interval(P: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of P w + c over lo <= w <= hi (componentwise; inf where a nonzero coefficient meets an infinite side)."""
    with np.errstate(invalid="ignore"):
        up = np.where(P > 0, P * hi, np.where(P < 0, P * lo, 0.0)).sum(axis=1) + c
        dn = np.where(P > 0, P * lo, np.where(P < 0, P * hi, 0.0)).sum(axis=1) + c
    return np.where(np.isnan(dn), -np.inf, dn), np.where(np.isnan(up), np.inf, up)


def multiplier_box(lp, p_value: np.ndarray, lo_xy: np.ndarray, hi_xy: np.ndarray,
                   max_supports: int = MAX_SUPPORTS) -> MultiplierBox:
    """Bounds on every vertex multiplier over the (derived) box lo_xy <= [x; y] <= hi_xy (module docstring)."""
    ng, nh, nx, ny = int(lp.g.numel()), int(lp.h.numel()), lp.n_x, lp.n_y
    if getattr(lp, "multiplier_dependent", False):
        return _none(ng, nh, "the leader's problem uses the follower's multipliers: every multiplier counts, "
                     "not only the vertices")
    A = _constant_matrix(lp.g, lp.y, lp, p_value, ny)
    B = _constant_matrix(lp.h, lp.y, lp, p_value, ny)
    if A is None or B is None:
        return _none(ng, nh, "a follower constraint's coefficients of y depend on x or y")
    xy = ca.vertcat(lp.x, lp.y)
    lo_xy, hi_xy = np.asarray(lo_xy, float), np.asarray(hi_xy, float)
    r = _numeric(ca.gradient(lp.f, lp.y), lp, p_value) if ny else ca.DM.zeros(0, 1)
    how = "affine grad_y f"
    if ny and not (ca.is_linear(r, xy) or not ca.depends_on(r, xy)):
        enc = gradient_enclosure(r, xy, lo_xy, hi_xy)
        if enc is None:
            return _none(ng, nh, "grad_y f is not affine in (x, y) and has no finite interval enclosure over the "
                         "derived box", box_limited=True)
        # r in [r_lo, r_hi]: the affine map of the box w = r itself (R = I over the r-box, r0 = 0)
        R, r0 = np.eye(ny), np.zeros(ny)
        lo_xy, hi_xy = enc
        how = "interval enclosure of grad_y f"
    elif ny:
        fr = ca.Function("r", [xy], [ca.jacobian(r, xy), r])
        R, r0 = (np.asarray(v, float) for v in fr(ca.DM.zeros(nx + ny)))
        R, r0 = R.reshape(ny, nx + ny), r0.reshape(-1)
    else:
        R, r0 = np.zeros((0, nx)), np.zeros(0)
    J = _independent_rows(B)
    cols = [i for i in range(ng) if np.any(A[i] != 0)]
    lam_lo, lam_hi = np.zeros(ng), np.zeros(ng)
    mu_lo, mu_hi = np.zeros(nh), np.zeros(nh)
    BJ = B[J].T                                   # ny x |J|
    scale = max(1.0, np.abs(A).max(initial=0.0), np.abs(B).max(initial=0.0))
    count = 0

    def visit(S: list[int]) -> None:
        nonlocal count
        M = np.hstack([A[S].T, BJ]) if S else BJ
        if M.shape[1]:
            Pinv = np.linalg.pinv(M)               # (|S| + |J|) x ny
            PR = Pinv @ R
            PR[np.abs(PR) < 1e-13 * max(1.0, np.abs(PR).max(initial=0.0))] = 0.0  # rounding noise, not structure
            dn, up = _interval(PR, Pinv @ r0, lo_xy, hi_xy)
            for k, i in enumerate(S):
                lam_hi[i] = max(lam_hi[i], up[k])  # lam_lo stays 0 (lam >= 0)
            for k, j in enumerate(J):
                mu_lo[j] = min(mu_lo[j], dn[len(S) + k])
                mu_hi[j] = max(mu_hi[j], up[len(S) + k])

    def independent_rank(M: np.ndarray) -> int:
        if M.shape[1] == 0:
            return 0
        sv = np.linalg.svd(M, compute_uv=False)
        return int(np.sum(sv > RANK_TOL * scale))

    def independent(S: list[int]) -> bool:
        M = np.hstack([A[S].T, BJ]) if S else BJ
        return M.shape[1] == 0 or independent_rank(M) == M.shape[1]

    if len(J) > ny or not independent([]):
        return _none(ng, nh, "the follower's equality rows are dependent in y")
    # When [A^T, B_J^T] has rank ny, every independent support extends to a basis (ny columns), whose
    # basic solution is the same vertex (zeros outside S): visiting the bases alone suffices.
    full = independent_rank(np.hstack([A[cols].T, BJ]) if cols else BJ) == ny
    stack: list[list[int]] = [[]]
    while stack:
        S = stack.pop()
        count += 1
        if count > max_supports:
            return _none(ng, nh, f"more than {max_supports} independent supports: no bound derived")
        leaf = len(S) + len(J) >= ny
        if leaf or not full:
            visit(S)
        if leaf:
            continue
        start = cols.index(S[-1]) + 1 if S else 0
        for i in cols[start:]:
            T = S + [i]
            if independent(T):
                stack.append(T)
    pad = lambda v, s: v + s * PAD * (1 + np.abs(v))  # noqa: E731
    lam_hi = np.where(np.isfinite(lam_hi), pad(lam_hi, 1.0), np.inf)
    mu_lo, mu_hi = pad(mu_lo, -1.0), pad(mu_hi, 1.0)
    box = MultiplierBox(lam_lo, lam_hi, np.where(np.isnan(mu_lo), -np.inf, mu_lo),
                        np.where(np.isnan(mu_hi), np.inf, mu_hi), count,
                        f"dual vertices: {count} independent supports of [A_S^T, B^T] over the derived (x, y) box ({how})")
    box = MultiplierBox(box.lam_lo, box.lam_hi, box.mu_lo, box.mu_hi, count, box.reason, not box.derived)
    return box


class _Interval:
    """A closed interval [lo, hi] (lo may be -inf, hi +inf) with the operations of ``gradient_enclosure``."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = float(lo), float(hi)


def _iv(a) -> _Interval:
    return a if isinstance(a, _Interval) else _Interval(a, a)


def _mul(a: _Interval, b: _Interval) -> _Interval:
    with np.errstate(invalid="ignore"):
        ps = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
    ps = [0.0 if np.isnan(v) else v for v in ps]  # 0 * inf: the factor is exactly 0 there
    return _Interval(min(ps), max(ps))


def _ipow(a: _Interval, n: int) -> _Interval:
    if n == 0:
        return _Interval(1.0, 1.0)
    if n < 0:
        return _inv(_ipow(a, -n))
    lo, hi = a.lo ** n, a.hi ** n
    if n % 2:
        return _Interval(lo, hi)
    if a.lo <= 0.0 <= a.hi:
        return _Interval(0.0, max(lo, hi))
    return _Interval(min(lo, hi), max(lo, hi))


def _inv(a: _Interval) -> _Interval:
    if a.lo <= 0.0 <= a.hi:
        return _Interval(-np.inf, np.inf)
    return _Interval(1.0 / a.hi, 1.0 / a.lo)


def _mono(fn, a: _Interval, lo_dom: float = -np.inf) -> _Interval:
    if a.lo < lo_dom:
        return _Interval(-np.inf, np.inf)
    with np.errstate(all="ignore"):
        return _Interval(fn(a.lo), fn(a.hi))


def _interval_apply(op: int, args: list):
    a = [_iv(v) for v in args]
    if op == ca.OP_ADD:
        return _Interval(a[0].lo + a[1].lo, a[0].hi + a[1].hi)
    if op == ca.OP_SUB:
        return _Interval(a[0].lo - a[1].hi, a[0].hi - a[1].lo)
    if op == ca.OP_MUL:
        return _mul(a[0], a[1])
    if op == ca.OP_DIV:
        return _mul(a[0], _inv(a[1]))
    if op == ca.OP_NEG:
        return _Interval(-a[0].hi, -a[0].lo)
    if op == ca.OP_SQ:
        return _ipow(a[0], 2)
    if op == ca.OP_TWICE:
        return _Interval(2 * a[0].lo, 2 * a[0].hi)
    if op == ca.OP_INV:
        return _inv(a[0])
    if op in (ca.OP_POW, ca.OP_CONSTPOW) and a[1].lo == a[1].hi and float(a[1].lo).is_integer():
        return _ipow(a[0], int(a[1].lo))
    if op == ca.OP_SQRT:
        return _mono(np.sqrt, a[0], 0.0)
    if op == ca.OP_EXP:
        return _mono(np.exp, a[0])
    if op == ca.OP_LOG:
        return _mono(np.log, a[0], 1e-300)
    if op in (ca.OP_SIN, ca.OP_COS, ca.OP_TANH):
        return _Interval(-1.0, 1.0)
    if op == ca.OP_FABS:
        m = max(abs(a[0].lo), abs(a[0].hi))
        return _Interval(0.0 if a[0].lo <= 0.0 <= a[0].hi else min(abs(a[0].lo), abs(a[0].hi)), m)
    return _Interval(-np.inf, np.inf)  # not enclosed: no finite bound from this term


def gradient_enclosure(r, w, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A box [r_lo, r_hi] containing r(w) for every lo <= w <= hi (interval arithmetic on the SX tape,
    padded outward by PAD for rounding); None when some component is not finite."""
    from ..lower.casadi2scip import record_function
    tape = record_function(ca.Function("r", [w], [ca.densify(r)]), ("r",), "gradient")
    ins = [[_Interval(a, b) for a, b in zip(lo, hi)]]
    out = tape.replay_inputs(ins, ("r",), apply=_interval_apply)["r"]
    rl = np.array([_iv(v).lo for v in out], float)
    rh = np.array([_iv(v).hi for v in out], float)
    if not (np.all(np.isfinite(rl)) and np.all(np.isfinite(rh))):
        return None
    return rl - PAD * (1 + np.abs(rl)), rh + PAD * (1 + np.abs(rh))

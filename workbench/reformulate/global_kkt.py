"""Bilevel -> single-level programs for a global solve: the KKT relaxation and the high-point relaxation.

**KKT relaxation with SOS1 complementarity** (:class:`Bilevel2SOS1KKT`). With L = f - lam^T g - mu^T h,

    min_{x,y,s,lam,mu} F   s.t.  G >= 0, H = 0, grad_y L = 0, h = 0, g - s = 0,
                                 s >= 0, lam >= 0, SOS1(s_i, lam_i)  for every i,
                                 f(x, y) <= f(x, y_k)  (optional value-function cuts, see below)

Why it is a *relaxation* of the bilevel problem, for every leader x: when a constraint
qualification holds at every follower-feasible y, every follower minimiser satisfies the KKT
conditions with some multipliers, so every bilevel-feasible (x, y) extends to a feasible point of
the program and its optimum is a valid lower bound on the bilevel optimum. What is checked
(:func:`follower_cq`), structurally on the lowered model so that it holds for *every* x:

* ``affine``: every g_i and h_j is affine in y (coefficients may depend on x and p). At a fixed x
  the follower's feasible set is a polyhedron and Abadie's CQ holds at each of its points.
* ``convex_fixed_set``: g and h do not depend on x (one feasible set Y for all x), every h_j is
  affine in y, every nonlinear g_i is concave in y (a quadratic with NSD constant Hessian) and a
  Slater point exists (y with h = 0, affine g >= 0, nonlinear g > 0: :func:`slater_program`,
  solved by the route). Slater's condition for a convex Y then gives KKT at every minimiser.

Anything else is refused (``MethodError`` naming the constraint). The follower need *not* be
convex in y: KKT is then not sufficient, the program's optimum may be a spurious point, and the
route checks the optimum with the global follower certificate. When that check passes, the
relaxation's optimum is bilevel feasible, hence a global optimum; when it fails, the optimum is
still a valid lower bound (and the route moves on to the bounding scheme for small leaders).

**Value-function cuts.** For a follower point y_k that is feasible for the follower at *every*
leader x (checked by the caller: e.g. a fixed feasible set Y), phi(x) <= f(x, y_k) for all x, so
f(x, y) <= f(x, y_k) holds at every bilevel-feasible point and may be added to either relaxation.

**High-point relaxation** (:class:`Bilevel2HighPoint`): drop follower optimality,
min F s.t. G >= 0, H = 0, g >= 0, h = 0 (+ cuts): a valid lower bound for any follower.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import casadi as ca
import numpy as np

from ..errors import MethodError
from ..lower import LoweredProblem
from ..values import Point
from .bilevel2mpcc import Bilevel2MPCC
from .multiplier_bounds import multiplier_box
from .program import ASSUMED_RADIUS, SingleLevelProgram, bound_program
from .reduction import Reduction


@dataclass(frozen=True)
class FollowerCQ:
    """Which constraint qualification holds for every leader x (see module docstring)."""

    kind: str | None                 # "affine", "convex_fixed_set" or None (none shown)
    reason: str
    nonlinear_rows: tuple[int, ...] = ()   # rows of g needing a Slater point (convex_fixed_set)

    @property
    def holds(self) -> bool:
        return self.kind is not None


def _constant_nsd(e: Any, y: Any, others: Any) -> bool:
    if not ca.is_quadratic(e, y):
        return False
    H = ca.hessian(e, y)[0]
    if ca.depends_on(H, ca.vertcat(y, others)):
        return False
    vals = np.linalg.eigvalsh(np.asarray(ca.evalf(H), float))
    return bool(np.all(vals <= 1e-12 * max(1.0, float(np.max(np.abs(vals))) if vals.size else 1.0)))


def follower_cq(lp: LoweredProblem) -> FollowerCQ:
    """Structural CQ check of the follower's constraints for every x (see module docstring)."""
    g, h, y = lp.g, lp.h, lp.y
    lin_g = [i for i in range(int(g.numel())) if ca.is_linear(g[i], y) or not ca.depends_on(g[i], y)]
    lin_h = [j for j in range(int(h.numel())) if ca.is_linear(h[j], y) or not ca.depends_on(h[j], y)]
    if len(lin_g) == g.numel() and len(lin_h) == h.numel():
        return FollowerCQ("affine", "every follower constraint is affine in y (Abadie's CQ holds for "
                          "polyhedral feasible sets at every x)")
    bad_h = [j for j in range(int(h.numel())) if j not in lin_h]
    if bad_h:
        return FollowerCQ(None, f"follower equality {lp.h_names[bad_h[0]]!r} is nonlinear in y: no constraint "
                          "qualification can be shown for every leader x")
    nonlin = [i for i in range(int(g.numel())) if i not in lin_g]
    xdep = [i for i in range(int(g.numel())) if ca.depends_on(g[i], lp.x)] + \
        [j for j in range(int(h.numel())) if ca.depends_on(h[j], lp.x)]
    if xdep:
        return FollowerCQ(None, f"follower constraint {lp.g_names[nonlin[0]]!r} is nonlinear in y and the "
                          "follower's feasible set depends on x: neither affine constraints nor Slater's "
                          "condition can be checked for every leader x")
    for i in nonlin:
        if not _constant_nsd(g[i], y, ca.vertcat(lp.x, lp.p)):
            return FollowerCQ(None, f"follower constraint {lp.g_names[i]!r} is nonlinear in y and not shown "
                              "concave (a quadratic with constant NSD Hessian), so Slater's condition does not "
                              "give KKT at every follower minimiser")
    return FollowerCQ("convex_fixed_set", "follower constraints independent of x, concave in y; Slater's "
                      "condition to be checked", tuple(nonlin))


def follower_convex_everywhere(lp: LoweredProblem) -> bool:
    """f quadratic in y with a constant (x-independent) PSD Hessian and g, h affine in y: KKT sufficient at every x."""
    if not ca.is_quadratic(lp.f, lp.y):
        return False
    if (lp.g.numel() and not ca.is_linear(lp.g, lp.y)) or (lp.h.numel() and not ca.is_linear(lp.h, lp.y)):
        return False
    H = ca.hessian(lp.f, lp.y)[0]
    if ca.depends_on(H, ca.vertcat(lp.x, lp.y, lp.p)):
        return False
    vals = np.linalg.eigvalsh(np.asarray(ca.evalf(H), float)) if lp.n_y else np.zeros(0)
    return bool(np.all(vals >= -1e-12 * max(1.0, float(np.max(np.abs(vals))) if vals.size else 1.0)))


def _names(lp: LoweredProblem, symbols: Sequence[str] | None, which: str, n: int) -> list[str]:
    return list(symbols) if symbols is not None else [f"{which}{i + 1}" for i in range(n)]


class Bilevel2SOS1KKT(Reduction):
    """The follower's KKT conditions with SOS1 complementarity pairs (see module docstring).

    ``derive_box(ineq_rows, eq_rows, n)`` derives variable bounds from affine rows (the global
    follower proof's derivation is injected by the route: reformulations import no later stage).
    """

    def __init__(self, p: np.ndarray, derive_box: Callable, integer: Sequence[int] = (), cuts: Sequence[Any] = (),
                 leader_names: Sequence[str] | None = None, follower_names: Sequence[str] | None = None,
                 radius: float = ASSUMED_RADIUS):
        self.p = np.asarray(p, float)
        self.derive_box = derive_box
        self.integer = tuple(int(i) for i in integer)
        self.cuts = [np.asarray(c, float) for c in cuts]
        self.leader_names, self.follower_names = leader_names, follower_names
        self.radius = radius

    def apply(self, lp: LoweredProblem) -> tuple[SingleLevelProgram, dict]:
        cq = follower_cq(lp)
        if not cq.holds:
            raise MethodError(f"the KKT relaxation is not valid for this follower: {cq.reason}")
        mpcc, inv = Bilevel2MPCC(self.cuts).apply(lp)
        b = mpcc.blocks
        names = (_names(lp, self.leader_names, "x", lp.n_x) + _names(lp, self.follower_names, "y", lp.n_y)
                 + [f"s[{n}]" for n in lp.g_names] + [f"lam[{n}]" for n in lp.g_names]
                 + [f"mu[{n}]" for n in lp.h_names])
        eq_names = ([f"stationarity[{n}]" for n in _names(lp, self.follower_names, "y", lp.n_y)]
                    + [f"h[{n}]" for n in lp.h_names] + [f"g[{n}] - s" for n in lp.g_names]
                    + [f"H[{n}]" for n in lp.H_names])
        ineq_names = [f"G[{n}]" for n in lp.G_names] + [f"cut[{k}]" for k in range(len(self.cuts))]
        pairs = tuple((int(s), int(l)) for s, l in zip(mpcc.comp_s, mpcc.comp_lam))
        ref = np.zeros(mpcc.lbw.size)
        ref[b["x"]], ref[b["y"]] = lp.x_start, lp.y_start
        prog = SingleLevelProgram(w=mpcc.w, p=lp.p, p_value=self.p, objective=lp.F, eq=mpcc.g_eq, ineq=mpcc.g_ineq,
                                  lb=mpcc.lbw.copy(), ub=mpcc.ubw.copy(), names=tuple(names), integer=self.integer,
                                  sos1=pairs, eq_names=tuple(eq_names), ineq_names=tuple(ineq_names),
                                  info={"cq": cq.kind, "cq_reason": cq.reason})
        mult = np.zeros(prog.n, bool)
        mult[b["lam"].start:b["mu"].stop] = True
        report: dict = {}

        def vertices(lo: np.ndarray, hi: np.ndarray, tighten: Callable) -> tuple[np.ndarray, np.ndarray, str]:
            """Multiplier bounds from the dual vertices over the (x, y) box derived so far; where that box
            is not enough, LP bounds on the unbounded x, y (linear ones get none in the first pass)."""
            lo2, hi2 = np.full(prog.n, -np.inf), np.full(prog.n, np.inf)
            if np.all(np.isfinite(lo[mult]) & np.isfinite(hi[mult])):
                report["how"] = "from the affine rows (simple bounds / LP propagation)"
                return lo2, hi2, ""
            xy = np.r_[b["x"].start:b["y"].stop]
            box = multiplier_box(lp, self.p, lo[xy], hi[xy])
            open_xy = np.zeros(prog.n, bool)
            open_xy[xy] = ~(np.isfinite(lo[xy]) & np.isfinite(hi[xy]))
            if not box.derived and box.box_limited and open_xy.any():
                lo, hi = tighten(open_xy)
                box = multiplier_box(lp, self.p, lo[xy], hi[xy])
            lo2[b["lam"]], hi2[b["lam"]] = box.lam_lo, box.lam_hi
            lo2[b["mu"]], hi2[b["mu"]] = box.mu_lo, box.mu_hi
            report.update(how=box.reason, supports=box.supports)
            return lo2, hi2, "multiplier bounds from dual vertices"

        prog = bound_program(prog, self.derive_box, ref, self.radius, defer=mult, refine=vertices)
        idx = np.flatnonzero(mult)
        prog.info["multiplier_bounds"] = {**report, "derived": [prog.names[i] for i in idx if i not in prog.assumed],
                                          "assumed": [prog.names[i] for i in idx if i in prog.assumed]}
        return prog, inv

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        return Bilevel2MPCC().invert(w, inverse_data)


class Bilevel2HighPoint(Reduction):
    """The high-point relaxation (+ value-function cuts) over w = [x, y, cut variables] (module docstring).

    ``plain[k]`` says that y_k is follower-feasible at every x, so cut k is f(x, y) <= f(x, y_k). Otherwise
    (the rows ``xrows`` of g depend on x) cut k is the disjunction "f(x, y) <= f(x, y_k) or g_j(x, y_k) <= 0
    for some j in xrows", which every bilevel-feasible point satisfies (if y_k is feasible at x, the cut
    holds; if not, some g_j(x, y_k) < 0). It is written without big-M, with SOS1 pairs:

        f(x, y_k) - f(x, y) + t_0 >= 0,  t_j - g_j(x, y_k) >= 0,  w_0 + sum_j z_j = 1,
        t >= 0, w_0 in [0, 1], z_j in {0, 1},  SOS1(t_0, w_0), SOS1(t_j, z_j):

    z_j = 1 forces t_j = 0, i.e. g_j(x, y_k) <= 0; no z_j = 1 means w_0 = 1, t_0 = 0: the cut.
    """

    def __init__(self, p: np.ndarray, derive_box: Callable, integer: Sequence[int] = (), cuts: Sequence[Any] = (),
                 leader_names: Sequence[str] | None = None, follower_names: Sequence[str] | None = None,
                 radius: float = ASSUMED_RADIUS, plain: Sequence[bool] | None = None, xrows: Sequence[int] = ()):
        self.p = np.asarray(p, float)
        self.derive_box = derive_box
        self.integer = tuple(int(i) for i in integer)
        self.cuts = [np.asarray(c, float) for c in cuts]
        self.plain = [True] * len(self.cuts) if plain is None else [bool(v) for v in plain]
        self.xrows = tuple(int(j) for j in xrows)
        self.leader_names, self.follower_names = leader_names, follower_names
        self.radius = radius

    def apply(self, lp: LoweredProblem) -> tuple[SingleLevelProgram, dict]:
        sym = type(lp.x)
        extra, ineq, eq, sos1, ints, lbx, ubx, names_x = [], [], [], [], list(self.integer), [], [], []
        n0 = lp.n_x + lp.n_y
        for k, (c, plain) in enumerate(zip(self.cuts, self.plain)):
            cut = ca.substitute(lp.f, lp.y, ca.DM(c)) - lp.f
            if plain or not self.xrows:
                ineq.append(cut)
                continue
            t0, w0 = sym.sym(f"t0_{k}"), sym.sym(f"w0_{k}")
            ts, zs = sym.sym(f"t_{k}", len(self.xrows)), sym.sym(f"z_{k}", len(self.xrows))
            base = n0 + sum(v.numel() for v in extra)
            extra += [t0, w0, ts, zs]
            ineq.append(cut + t0)
            gk = ca.substitute(lp.g, lp.y, ca.DM(c))
            ineq += [ts[i] - gk[j] for i, j in enumerate(self.xrows)]
            eq.append(w0 + ca.sum1(zs) - 1)
            m = len(self.xrows)
            sos1.append((base, base + 1))
            sos1 += [(base + 2 + i, base + 2 + m + i) for i in range(m)]
            ints += [base + 2 + m + i for i in range(m)]
            lbx += [0.0, 0.0] + [0.0] * m + [0.0] * m
            ubx += [np.inf, 1.0] + [np.inf] * m + [1.0] * m
            names_x += [f"t0[cut {k}]", f"w0[cut {k}]"] + [f"t[cut {k}, g{j}]" for j in self.xrows] \
                + [f"z[cut {k}, g{j}]" for j in self.xrows]
        w = ca.vertcat(lp.x, lp.y, *extra)
        names = _names(lp, self.leader_names, "x", lp.n_x) + _names(lp, self.follower_names, "y", lp.n_y) + names_x
        prog = SingleLevelProgram(
            w=w, p=lp.p, p_value=self.p, objective=lp.F, eq=ca.vertcat(lp.h, lp.H, *eq),
            ineq=ca.vertcat(lp.g, lp.G, *ineq),
            lb=np.concatenate([np.full(n0, -np.inf), lbx]), ub=np.concatenate([np.full(n0, np.inf), ubx]),
            names=tuple(names), integer=tuple(ints), sos1=tuple(sos1),
            eq_names=tuple([f"h[{n}]" for n in lp.h_names] + [f"H[{n}]" for n in lp.H_names]
                           + [f"cut choice {k}" for k in range(len(eq))]),
            ineq_names=tuple([f"g[{n}]" for n in lp.g_names] + [f"G[{n}]" for n in lp.G_names]
                             + [f"cut row {k}" for k in range(len(ineq))]))
        ref = np.concatenate([lp.x_start, lp.y_start, np.zeros(len(lbx))])
        prog = bound_program(prog, self.derive_box, ref, self.radius)
        return prog, {"nx": lp.n_x, "ny": lp.n_y}

    def invert(self, w: np.ndarray, inverse_data: dict) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(w, float).reshape(-1)
        nx = inverse_data["nx"]
        return w[:nx], w[nx:nx + inverse_data.get("ny", w.size - nx)]


def slater_program(lp: LoweredProblem, p: np.ndarray, rows: Sequence[int], derive_box: Callable) -> SingleLevelProgram:
    """max t s.t. h = 0, affine g >= 0, g_i >= t (i in rows), t <= 1, over w = [y, t] (x-free feasible set):
    Slater's condition holds iff the optimum is > 0."""
    t = ca.SX.sym("t") if isinstance(lp.y, ca.SX) else type(lp.y).sym("t")
    w = ca.vertcat(lp.y, t)
    x0 = ca.DM(lp.x_start)
    g = ca.substitute(lp.g, lp.x, x0) if lp.g.numel() else lp.g
    h = ca.substitute(lp.h, lp.x, x0) if lp.h.numel() else lp.h
    rows = set(rows)
    ineq = [g[i] - t if i in rows else g[i] for i in range(int(g.numel()))] + [1 - t]
    prog = SingleLevelProgram(w=w, p=lp.p, p_value=np.asarray(p, float), objective=-t, eq=h, ineq=ca.vertcat(*ineq),
                              lb=np.full(w.numel(), -np.inf), ub=np.full(w.numel(), np.inf),
                              names=tuple([f"y{i + 1}" for i in range(lp.n_y)] + ["t"]))
    return bound_program(prog, derive_box, np.concatenate([lp.y_start, [0.0]]))


def fixed_leader_program(lp: LoweredProblem, p: np.ndarray, x: np.ndarray, phi: float, eps: float,
                         derive_box: Callable) -> SingleLevelProgram:
    """The upper-bounding problem at a fixed leader x: the optimistic choice among eps-optimal replies,

        min_y F(x, y)  s.t.  G(x, y) >= 0, H(x, y) = 0, g(x, y) >= 0, h(x, y) = 0, f(x, y) <= phi + eps.
    """
    xd = ca.DM(np.asarray(x, float))
    sub = lambda e: ca.substitute(e, lp.x, xd) if e.numel() else e  # noqa: E731
    ineq = ca.vertcat(sub(lp.g), sub(lp.G), float(phi) + float(eps) - sub(lp.f))
    prog = SingleLevelProgram(
        w=lp.y, p=lp.p, p_value=np.asarray(p, float), objective=sub(lp.F), eq=ca.vertcat(sub(lp.h), sub(lp.H)),
        ineq=ineq, lb=np.full(lp.n_y, -np.inf), ub=np.full(lp.n_y, np.inf),
        names=tuple(f"y{i + 1}" for i in range(lp.n_y)))
    return bound_program(prog, derive_box, lp.y_start)


def interior_follower_program(lp: LoweredProblem, p: np.ndarray, x: np.ndarray, rows: Sequence[int], delta: float,
                              derive_box: Callable | None = None) -> SingleLevelProgram:
    """The follower at a fixed x with the rows ``rows`` of g tightened to g_j >= delta:

        min_y f(x, y)  s.t.  g(x, y) >= 0,  g_j(x, y) >= delta (j in rows),  h(x, y) = 0.

    Its minimiser y' is follower-feasible wherever g_j(x', y') >= 0 for j in rows, which holds on a
    neighbourhood of x; a value-function cut at y' therefore bites at x itself, where a cut at a
    minimiser on an x-dependent boundary (g_j(x, y_k) = 0) would not (see ``Bilevel2HighPoint``).
    """
    xd = ca.DM(np.asarray(x, float))
    g = ca.substitute(lp.g, lp.x, xd)
    rows = set(int(j) for j in rows)
    ineq = ca.vertcat(*[g[j] - delta if j in rows else g[j] for j in range(int(g.numel()))]) if g.numel() else g
    h = ca.substitute(lp.h, lp.x, xd) if lp.h.numel() else lp.h
    prog = SingleLevelProgram(w=lp.y, p=lp.p, p_value=np.asarray(p, float), objective=ca.substitute(lp.f, lp.x, xd),
                              eq=h, ineq=ineq, lb=np.full(lp.n_y, -np.inf), ub=np.full(lp.n_y, np.inf),
                              names=tuple(f"y{i + 1}" for i in range(lp.n_y)))
    return bound_program(prog, derive_box, lp.y_start)

"""Linear bilevel -> MILP: the follower's KKT complementarity as big-M disjunctions.

For an affine leader and a follower LP  min_y c^T y  s.t.  g(x, y) = A [x; y] + b >= 0,
h(x, y) = 0, y is follower-optimal iff there are lam >= 0, mu with
c = A_y^T lam + E_y^T mu and lam_i g_i = 0. A convex-QP follower (constant PSD Hessian
in y, gradient affine in (x, y)) works the same way with c replaced by grad_y f(x, y):
its KKT conditions are still linear apart from the complementarity, and sufficient.
With z = [x, y, lam, mu, b] each complementarity pair becomes

    g_i <= Ms_i b_i,   lam_i <= Ml_i (1 - b_i),   b_i in {0, 1}

and the MILP is  min F.A [x; y]  s.t. G >= 0, H = 0, g >= 0, h = 0, stationarity, the
disjunctions, 0 <= lam <= Ml. Ms_i, Ml_i are derived from the model
(``reformulate/bigm_bounds.py``), never guessed: ``apply`` refuses (MethodError) when a bound
cannot be derived. Pairs whose dual is always 0, always positive, or whose slack is always 0
need no binary. When a slack is unbounded, a bilevel-feasible incumbent gives the valid cut
F <= F(incumbent) (+ margin), which keeps every global optimum. ``invert`` reads
(x, y, lam, mu) through ``blocks``; the solver call (HiGHS) is ``solve/highs.py``'s.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import MethodError
from ..status import Status
from ..values import Point
from .bigm_bounds import DualBounds, RegionBounds, dual_vertex_bounds, incumbent, qp_multiplier_bounds, slack_bounds
from .linear import AffineRows, LinearBilevel
from .reduction import Reduction

SLACK_SOURCE = "max of g_i over the high-point relaxation {G>=0, H=0, g>=0, h=0} (LP, scipy linprog/HiGHS)"


@dataclass
class MILP:
    """min c.z + offset  s.t.  row_lb <= A z <= row_ub,  lb <= z <= ub,  z_j integer where integrality_j.

    ``pairs`` says how each follower inequality's complementarity is modelled (bounds, their
    sources, the treatment); ``verdict`` is set (with c, A, ... None) when the bound derivation
    already decides the problem: (INFEASIBLE, why) or (UNBOUNDED, why).
    """

    pairs: list[dict]
    n_dual_vertices: int
    objective_cut: float | None
    blocks: dict[str, slice] = field(default_factory=dict)
    c: np.ndarray | None = None
    A: np.ndarray | None = None
    row_lb: np.ndarray | None = None
    row_ub: np.ndarray | None = None
    lb: np.ndarray | None = None
    ub: np.ndarray | None = None
    integrality: np.ndarray | None = None
    offset: float = 0.0
    follower_rows: AffineRows | None = None
    verdict: tuple[Status, str] | None = None

    @property
    def n_binaries(self) -> int:
        return self.blocks["b"].stop - self.blocks["b"].start if "b" in self.blocks else 0

    def boxed(self, K: float) -> "MILP":
        """The same MILP with x and y boxed to [-K, K] (its optima are bilevel-feasible points)."""
        xy = slice(0, self.blocks["y"].stop)
        lb, ub = self.lb.copy(), self.ub.copy()
        lb[xy], ub[xy] = np.maximum(lb[xy], -K), np.minimum(ub[xy], K)
        return replace(self, lb=lb, ub=ub)

    def active_big_m(self, point: Point) -> list[str]:
        """Binary pairs whose slack or dual sits at its big-M bound (valid bounds, but worth a look)."""
        g = self.follower_rows(point.xy)
        out = []
        for i, r in enumerate(self.pairs):
            if r["treatment"] != "binary":
                continue
            if g[i] >= r["slack_bound"] - 1e-7 * (1 + r["slack_bound"]):
                out.append(f"{r['constraint']!r}: slack {g[i]:.6g} at its bound {r['slack_bound']:.6g}")
            if point.lam[i] >= r["dual_bound"] - 1e-7 * (1 + r["dual_bound"]):
                out.append(f"{r['constraint']!r}: dual {point.lam[i]:.6g} at its bound {r['dual_bound']:.6g}")
        return out


def _needs_slack_bound(region: RegionBounds, duals: DualBounds, tol: float) -> np.ndarray:
    return (duals.lam_max > tol) & (duals.lam_min <= tol) & (region.upper > tol) & ~np.isfinite(region.upper)


def big_m_pairs(m: LinearBilevel, max_bases: int, tol: float = 1e-9,
                allow_cut: bool = True) -> tuple[list[dict], RegionBounds, DualBounds, float | None]:
    """How each complementarity pair is modelled, with its bounds and their sources.

    When a slack is unbounded over the high-point relaxation, a bilevel-feasible
    incumbent (two LPs at a fixed x) gives the valid cut F <= F(incumbent), and the
    slack bounds are recomputed over the relaxation intersected with that cut. With integer
    leader variables the incumbent's x need not be integer, so no cut is made (``allow_cut``).
    """
    region = slack_bounds(m)
    duals = dual_vertex_bounds(m, max_bases) if m.is_lp else qp_multiplier_bounds(m, max_bases)
    cut, source = None, SLACK_SOURCE
    if allow_cut and m.is_lp and region.feasible and duals.feasible and _needs_slack_bound(region, duals, tol).any():
        inc = incumbent(m, region.points)
        if inc is not None:
            cut = inc[0] + 1e-6 * (1 + abs(inc[0]))
            region = slack_bounds(m, objective_cut=cut)
            source = (SLACK_SOURCE + f", cut by F <= {cut:.10g} (a bilevel-feasible incumbent with F = "
                      f"{inc[0]:.10g} at x = {np.round(inc[1][:m.nx], 8).tolist()}; follower LP solved at that x)")
    dual_source = (f"max of lam_i over the {duals.n_vertices} vertices of the follower's dual feasible set "
                   f"(enumerated from {duals.n_bases} bases)") if m.is_lp else (
        f"max of lam_i over the multiplier vertices z_B(x, y) of {duals.n_vertices} feasible bases (of "
        f"{duals.n_bases}), one LP per basis over the high-point relaxation (convex-QP follower)")
    pairs = []
    for i, name in enumerate(m.g.names):
        row = dict(constraint=name, slack_bound=float(region.upper[i]), slack_source=source,
                   dual_bound=float(duals.lam_max[i]) if duals.feasible else float("nan"), dual_source=dual_source)
        if not (region.feasible and duals.feasible):
            row["treatment"] = "none (problem infeasible)"
        elif duals.lam_max[i] <= tol:
            row["treatment"] = "lam fixed to 0 (no dual vertex has lam_i > 0)"
        elif duals.lam_min[i] > tol:
            row["treatment"] = f"constraint forced active (every dual vertex has lam_i >= {duals.lam_min[i]:.6g})"
        elif region.upper[i] <= tol:
            row["treatment"] = "slack is identically 0 on the relaxed region"
        elif not np.isfinite(duals.lam_max[i]):
            raise MethodError(
                f"no big-M bound for the multiplier of follower constraint {name!r}: it is unbounded over the "
                "high-point relaxation. Add bounds on the leader and follower variables or use method='kkt'.")
        elif not np.isfinite(region.upper[i]):
            raise MethodError(
                f"no big-M bound for follower constraint {name!r}: its slack is unbounded over the high-point "
                "relaxation (also after cutting with any bilevel-feasible incumbent found) and its dual can be "
                "positive, so the complementarity cannot be written as a valid big-M disjunction. Add bounds on "
                "the variables in that constraint (as leader or follower constraints) or use "
                "method='strong_duality'.")
        else:
            row["treatment"] = "binary"
        pairs.append(row)
    return pairs, region, duals, cut


class LinearBilevel2MILP(Reduction):
    """:class:`LinearBilevel` -> :class:`MILP` (module docstring); ``integer`` are the indices of
    integer leader variables (HiGHS integrality; no incumbent cut then)."""

    def __init__(self, max_bases: int = 200_000, integer: tuple[int, ...] = ()):
        self.max_bases = max_bases
        self.integer = tuple(integer)

    def accepts(self, m: Any) -> bool:
        return isinstance(m, LinearBilevel)

    def apply(self, m: LinearBilevel) -> tuple[MILP, dict]:
        pairs, region, duals, cut = big_m_pairs(m, self.max_bases, allow_cut=not self.integer)
        nx, ny, ng, nh = m.nx, m.ny, len(m.g.names), len(m.h.names)
        binaries = [i for i, r in enumerate(pairs) if r["treatment"] == "binary"]
        blocks, o = {}, 0
        for name, k in (("x", nx), ("y", ny), ("lam", ng), ("mu", nh), ("b", len(binaries))):
            blocks[name] = slice(o, o + k)
            o += k
        inverse = {"blocks": blocks, "integer": self.integer}
        if not region.feasible or not duals.feasible:
            # A feasible follower LP whose dual is infeasible is unbounded below at every x: the same
            # word as the KKT route's for a follower without a minimiser.
            verdict = (Status.INFEASIBLE, region.message) if not region.feasible else (Status.UNBOUNDED, (
                "the follower's dual feasible set is empty while its feasible set is not: the follower LP is "
                "unbounded below at every x (no follower-optimal response exists); bound the follower's variables"))
            return MILP(pairs, duals.n_vertices, cut, blocks, verdict=verdict), inverse
        n = o
        xy, lam, mu = slice(0, nx + ny), blocks["lam"], blocks["mu"]
        rows, lb, ub = [], [], []

        def add(coefs: list, lo: float, hi: float) -> None:
            r = np.zeros(n)
            for sl, v in coefs:
                r[sl] = v
            rows.append(r)
            lb.append(lo)
            ub.append(hi)

        for blk, kind in ((m.G, "ineq"), (m.H, "eq"), (m.g, "ineq"), (m.h, "eq")):
            for a, b in zip(blk.A, blk.b):
                add([(xy, a)], -b, np.inf if kind == "ineq" else -b)
        if cut is not None:  # F <= F(incumbent) + margin: keeps every global optimum
            add([(xy, m.F.A[0])], -np.inf, cut - m.F.b[0])
        Ay, Ey = m.Ay("g"), m.Ay("h")
        for j in range(ny):  # stationarity: (grad_y f)_j - sum lam_i A_ij - sum mu_k E_kj = 0
            add([(xy, m.grad.A[j]), (lam, -Ay[:, j]), (mu, -Ey[:, j])], -m.grad.b[j], -m.grad.b[j])
        lo_v, hi_v = np.full(n, -np.inf), np.full(n, np.inf)
        lo_v[lam] = 0.0
        for i, r in enumerate(pairs):
            hi_v[nx + ny + i] = r["dual_bound"]
            if r["treatment"].startswith("lam fixed"):
                hi_v[nx + ny + i] = 0.0
            if r["treatment"].startswith("constraint forced"):
                add([(xy, m.g.A[i])], -m.g.b[i], -m.g.b[i])
        for k, i in enumerate(binaries):
            zk = blocks["b"].start + k
            add([(xy, m.g.A[i]), (zk, -pairs[i]["slack_bound"])], -np.inf, -m.g.b[i])
            add([(nx + ny + i, 1.0), (zk, pairs[i]["dual_bound"])], -np.inf, pairs[i]["dual_bound"])
            lo_v[zk], hi_v[zk] = 0.0, 1.0
        c = np.zeros(n)
        c[xy] = m.F.A[0]
        integrality = np.zeros(n)
        integrality[blocks["b"]] = 1
        integrality[list(self.integer)] = 1
        return MILP(pairs, duals.n_vertices, cut, blocks, c=c, A=np.array(rows) if rows else np.zeros((0, n)),
                    row_lb=np.array(lb, float), row_ub=np.array(ub, float), lb=lo_v, ub=hi_v,
                    integrality=integrality, offset=float(m.F.b[0]), follower_rows=m.g), inverse

    def invert(self, z: np.ndarray, inverse_data: dict) -> Point:
        """(x, y, lam, mu) read through ``blocks``; integer leader variables rounded (HiGHS' integers
        are integral to its tolerance)."""
        b, z = inverse_data["blocks"], np.asarray(z, float).reshape(-1)
        x = z[b["x"]].copy()
        ints = list(inverse_data["integer"])
        x[ints] = np.round(x[ints])
        return Point(x, z[b["y"]], z[b["lam"]], z[b["mu"]])

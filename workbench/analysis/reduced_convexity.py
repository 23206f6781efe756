"""Is the reduced objective Phi(x) = F(x, y*(x)) convex on a region? A verdict with evidence.

Convex F and convex follower do not make Phi convex: where the follower's active
set changes, Phi has a kink whose slope can drop. The check reports

* per smooth piece: the second derivative / Hessian (SymPy) and whether it is
  provably >= 0 on the piece (1-D: ``solveset``; n-D: sampled eigenvalues);
* per kink (1-D): the one-sided slopes, a drop meaning non-convexity;
* a concrete midpoint-convexity counterexample  Phi((a+b)/2) > (Phi(a)+Phi(b))/2,
  searched on successively finer grids of the region (coarse, "nice" points first)
  and evaluated exactly when Phi has a closed form.

A counterexample proves non-convexity; "convex" is claimed only with a symbolic
proof on every piece and every kink; anything else is "unknown".
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from ..errors import MethodError
from ..lower import lower
from ..solve import box_from_constraints
from .reduced import ReducedObjective, reduced_objective

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class MidpointCounterexample:
    """Phi(xm) > (Phi(x0) + Phi(x1)) / 2 with xm the midpoint of x0 and x1."""

    x0: Any
    x1: Any
    xm: Any
    f0: Any
    f1: Any
    fm: Any
    average: Any
    violation: float

    def __str__(self) -> str:
        return (f"x0 = {self.x0}, x1 = {self.x1}: Phi({self.xm}) = {self.fm} > "
                f"(Phi(x0) + Phi(x1))/2 = ({self.f0} + {self.f1})/2 = {self.average}")


@dataclass
class PieceEvidence:
    """One smooth piece of Phi: its formula, where it applies, its Hessian and the verdict on it."""

    expr: sp.Expr
    region: Any
    hessian: sp.Matrix
    convex: bool | None
    note: str


@dataclass
class ConvexityVerdict:
    """``verdict`` is "convex", "nonconvex" or "unknown"; the rest is the evidence."""

    verdict: str
    region: dict
    reduced: ReducedObjective
    pieces: list[PieceEvidence] = field(default_factory=list)
    kinks: list[dict] = field(default_factory=list)
    counterexample: MidpointCounterexample | None = None
    message: str = ""

    @property
    def convex(self) -> bool | None:
        return {"convex": True, "nonconvex": False}.get(self.verdict)

    def summary(self) -> str:
        lines = [f"reduced objective is {self.verdict} on {self.region}: {self.message}"]
        for pc in self.pieces:
            lines.append(f"  piece {pc.expr} on {pc.region}: Hessian {pc.hessian.tolist()} -> {pc.note}")
        for k in self.kinks:
            lines.append(f"  kink at {k['at']}: slope {k['left_slope']} -> {k['right_slope']}"
                         + ("" if k["convex"] else " (drops: non-convex)"))
        if self.counterexample is not None:
            lines.append(f"  counterexample: {self.counterexample}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _region(problem: BilevelProblem, region: Any) -> dict:
    syms = problem.leader
    if region is None:
        lo, hi = box_from_constraints(lower(problem), "x")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise MethodError("check_convexity needs a bounded region: the leader has no finite box bounds; "
                              "pass region={x: (lo, hi)} (or (lo, hi) for one leader variable)")
        return {s: (float(a), float(b)) for s, a, b in zip(syms, lo, hi)}
    if isinstance(region, dict):
        missing = [s for s in syms if s not in region]
        if missing:
            raise MethodError(f"region gives no interval for leader variable {missing[0]}")
        out = {s: tuple(map(float, region[s])) for s in syms}
    elif len(syms) == 1 and len(region) == 2 and np.isscalar(region[0]):
        out = {syms[0]: (float(region[0]), float(region[1]))}
    else:
        out = {s: tuple(map(float, r)) for s, r in zip(syms, region)}
    bad = [s for s, (a, b) in out.items() if not (np.isfinite(a) and np.isfinite(b) and a < b)]
    if bad:
        raise MethodError(f"region interval for {bad[0]} is {out[bad[0]]}; give finite (lo, hi) with lo < hi")
    return out


def _piece_evidence_1d(x: sp.Symbol, expr: sp.Expr, cond: Any, box: sp.Interval) -> PieceEvidence:
    d2 = sp.simplify(sp.diff(expr, x, 2))
    dom = box if cond == sp.true else sp.Intersection(box, cond.as_set())
    bad = sp.solveset(d2 < 0, x, dom)
    if bad is sp.S.EmptySet:
        return PieceEvidence(expr, cond, sp.Matrix([[d2]]), True, f"Phi'' = {d2} >= 0 on {dom}")
    if isinstance(bad, sp.ConditionSet):
        return PieceEvidence(expr, cond, sp.Matrix([[d2]]), None, f"Phi'' = {d2}: sign not decided by SymPy")
    return PieceEvidence(expr, cond, sp.Matrix([[d2]]), False, f"Phi'' = {d2} < 0 on {bad}")


def _kinks_1d(x: sp.Symbol, pieces: list, box: sp.Interval) -> list[dict]:
    """One-sided slopes where consecutive (sorted, disjoint) pieces meet inside the box."""
    out = []
    for (e0, c0), (e1, c1) in zip(pieces, pieces[1:]):
        s0, s1 = c0.as_set(), c1.as_set()
        b = s0.sup
        if not (b.is_finite and box.inf < b < box.sup) or b != s1.inf:
            continue
        left, right = sp.diff(e0, x).subs(x, b), sp.diff(e1, x).subs(x, b)
        jump = sp.simplify(e1.subs(x, b) - e0.subs(x, b))
        out.append({"at": b, "left_slope": sp.nsimplify(left), "right_slope": sp.nsimplify(right),
                    "jump": jump, "convex": bool(left <= right) and jump == 0})
    return out


def _grid_search(ro: ReducedObjective, region: dict, levels: tuple, tol: float, seed: int):
    """First (coarsest) grid level with a midpoint violation; the largest violation on it."""
    syms = list(region)
    lo = np.array([region[s][0] for s in syms])
    hi = np.array([region[s][1] for s in syms])
    rng = np.random.default_rng(seed)
    for n in levels:
        if len(syms) == 1:
            ks = np.arange(n + 1)
            pairs = [(np.array([a]), np.array([b])) for a, b in itertools.combinations(ks, 2) if (a + b) % 2 == 0]
        else:
            pts = [rng.integers(0, n // 2 + 1, len(syms)) * 2 for _ in range(60)]
            pts += [rng.integers(0, n + 1, len(syms)) for _ in range(60)]
            pairs = [(a, b) for a, b in itertools.combinations(pts, 2) if np.all((a + b) % 2 == 0) and np.any(a != b)]
        cache: dict = {}

        def val(k: np.ndarray) -> float:
            key = tuple(int(v) for v in k)
            if key not in cache:
                cache[key] = ro(lo + (hi - lo) * np.asarray(key) / n)
            return cache[key]
        best = None
        for a, b in pairs:
            fa, fb, fm = val(a), val(b), val((a + b) // 2)
            if not np.all(np.isfinite([fa, fb, fm])):
                continue
            viol = fm - (fa + fb) / 2
            if viol > tol * (1 + abs(fa) + abs(fb)) and (best is None or viol > best[0]):
                best = (viol, a, b)
        if best is not None:
            return best, lo, hi, n
    return None


def _counterexample(ro: ReducedObjective, region: dict, found) -> MidpointCounterexample:
    (viol, a, b), lo, hi, n = found
    syms = list(region)
    pts = [[sp.nsimplify(lo[i] + (hi[i] - lo[i]) * sp.Rational(int(k[i]), n)) for i in range(len(syms))]
           for k in (a, b)]
    xm = [(u + v) / 2 for u, v in zip(*pts)]
    show = (lambda v: v[0]) if len(syms) == 1 else tuple
    if ro.closed_form:
        ev = [sp.nsimplify(ro.expr.subs(dict(zip(syms, q)))) for q in (pts[0], pts[1], xm)]
        viol = float(ev[2] - (ev[0] + ev[1]) / 2)
    else:
        ev = [ro(np.array(q, float)) for q in (pts[0], pts[1], xm)]
    return MidpointCounterexample(show(pts[0]), show(pts[1]), show(xm), ev[0], ev[1], ev[2],
                                  (ev[0] + ev[1]) / 2, float(viol))


def check_convexity(problem: BilevelProblem, region: Any = None, parameters: Any = None,
                    levels: tuple = (2, 4, 8, 16, 32, 64), tol: float = 1e-9, seed: int = 0) -> ConvexityVerdict:
    """Convexity of Phi(x) = F(x, y*(x)) on ``region`` ({x: (lo, hi)}, (lo, hi), or None = leader box)."""
    box = _region(problem, region)
    ro = reduced_objective(problem, parameters=parameters)
    pieces: list[PieceEvidence] = []
    kinks: list[dict] = []
    proven = False
    if ro.closed_form and problem.n_x == 1:
        x = problem.leader[0]
        interval = sp.Interval(sp.nsimplify(box[x][0]), sp.nsimplify(box[x][1]))
        pieces = [_piece_evidence_1d(x, e, c, interval) for e, c in ro.pieces]
        kinks = _kinks_1d(x, ro.pieces, interval)
        proven = all(pc.convex for pc in pieces) and all(k["convex"] for k in kinks)
    elif ro.closed_form:
        for e, c in ro.pieces:
            H = sp.hessian(e, problem.leader)
            minors_ok = len(ro.pieces) == 1 and H.is_positive_semidefinite
            pieces.append(PieceEvidence(e, c, H, True if minors_ok else None,
                                        "Hessian PSD (SymPy)" if minors_ok else "Hessian sign not proven"))
        proven = len(pieces) == 1 and bool(pieces[0].convex)
    found = _grid_search(ro, box, levels, tol, seed)
    if found is not None:
        ce = _counterexample(ro, box, found)
        msg = f"midpoint convexity fails: {ce}"
        drops = [k for k in kinks if not k["convex"]]
        if drops:
            msg += f"; the slope drops from {drops[0]['left_slope']} to {drops[0]['right_slope']} at x = {drops[0]['at']}"
        return ConvexityVerdict("nonconvex", box, ro, pieces, kinks, ce, msg)
    if proven:
        return ConvexityVerdict("convex", box, ro, pieces, kinks, None,
                                "every piece has a nonnegative second derivative and no kink has a slope drop")
    why = ro.reason or "no symbolic proof on every piece"
    return ConvexityVerdict("unknown", box, ro, pieces, kinks, None,
                            f"no midpoint counterexample on grids up to {levels[-1]} points per axis ({why})")

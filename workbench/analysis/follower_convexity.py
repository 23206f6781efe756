"""Is the follower convex in y? Checked before the KKT route is trusted.

KKT conditions are sufficient for the follower's optimality only when it is a
convex program in y: f convex, every g_i concave (g_i >= 0 convex), every h_j
affine. We first try to *prove* it with SymPy (Hessians that are constant, or
whose principal minors SymPy can show nonnegative, or univariate polynomials
whose minimum we compute exactly from the real roots of their derivative), and
otherwise *sample* the Hessians (CasADi-free ``sp.lambdify``) over a box to find
a counterexample. The verdict is "convex" (proved), "nonconvex" (counterexample
given) or "no counterexample found" (sampled, not a proof).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import sympy as sp

from ..lower import lower
from ..solve import box_from_constraints

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class FollowerConvexity:
    """Verdict with evidence, one entry per piece (objective, constraints)."""

    verdict: str                    # "convex", "nonconvex", "no counterexample found", "unknown"
    proved: bool                    # True when the verdict is a proof (either way)
    evidence: list[str] = field(default_factory=list)
    counterexample: dict | None = None
    hessian: sp.Matrix | None = None

    @property
    def convex(self) -> bool | None:
        return {"convex": True, "nonconvex": False}.get(self.verdict)

    @property
    def text(self) -> str:
        head = {"convex": "The follower is convex in y (proved symbolically): its KKT points are global minimisers.",
                "nonconvex": "The follower is NOT convex in y: a KKT point may be a local minimiser, saddle or "
                             "maximiser, and the KKT route can return a spurious follower response.",
                }.get(self.verdict, f"Follower convexity in y: {self.verdict} (not a proof).")
        return "\n".join([head] + [f"- {e}" for e in self.evidence])

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return "**Follower convexity**\n\n" + self.text


def _pieces(problem: BilevelProblem, values: dict) -> list[tuple[str, sp.Expr, int]]:
    """(label, expression, sign): sign +1 needs a PSD Hessian, -1 NSD, 0 zero Hessian."""
    out = [("lower objective f", problem.f.subs(values), 1)]
    out += [(f"lower constraint {c.name!r} ({c.source})", c.expr.subs(values), -1) for c in problem.g]
    out += [(f"lower equality {c.name!r} ({c.source})", c.expr.subs(values), 0) for c in problem.h]
    return out


def _exact_univariate_min(e: sp.Expr) -> tuple[sp.Expr, sp.Symbol, sp.Expr] | None:
    """Exact minimum of a univariate polynomial (value, variable, argmin), if SymPy can do it."""
    if len(e.free_symbols) != 1:
        return None
    (v,) = e.free_symbols
    if not e.is_polynomial(v) or sp.degree(e, v) % 2 or sp.LC(sp.Poly(e, v)) < 0:
        return None
    crit = [r for r in sp.real_roots(sp.Poly(sp.diff(e, v), v))] if sp.degree(e, v) > 0 else [sp.Integer(0)]
    if not crit:
        return None
    vals = [(sp.nsimplify(sp.simplify(e.subs(v, r))), r) for r in crit]
    val, arg = min(vals, key=lambda t: float(t[0]))
    return val, v, arg


def _symbolic(M: sp.Matrix) -> tuple[bool | None, str]:
    """(True = PSD proved, False = not PSD proved, None = undecided, explanation)."""
    if M.is_zero_matrix:
        return True, "Hessian is zero"
    if not M.free_symbols:
        ev = np.linalg.eigvalsh(np.array(M, dtype=float))
        return bool(ev.min() >= -1e-12), f"constant Hessian with eigenvalues {np.round(ev, 6).tolist()}"
    if M.shape == (1, 1):
        e = sp.simplify(M[0, 0])
        if e.is_nonnegative:
            return True, f"second derivative {e} is nonnegative (SymPy)"
        exact = _exact_univariate_min(sp.expand(e))
        if exact is not None:
            val, v, arg = exact
            ok = bool(val >= 0)
            return ok, f"second derivative {e} has minimum {val} (= {float(val):.6g}) at {v} = {arg}"
        return None, f"second derivative {e}: sign not decided symbolically"
    n = M.shape[0]
    if M.is_diagonal():
        if all(sp.simplify(M[i, i]).is_nonnegative for i in range(n)):
            return True, "diagonal Hessian with nonnegative entries (SymPy)"
        return None, "diagonal Hessian; the sign of its entries is not decided symbolically"
    if n > 3 or not all(e.is_polynomial() for e in M):  # minors of rational/transcendental or
        # large Hessians blow up in SymPy: leave them to sampling
        return None, f"{n}x{n} Hessian depends on the variables; PSD left to sampling"
    minors = [M.extract(list(S), list(S)).det() for k in range(1, n + 1) for S in itertools.combinations(range(n), k)]
    if all(sp.simplify(m).is_nonnegative for m in minors):
        return True, "all principal minors of the Hessian are nonnegative (SymPy)"
    return None, "Hessian depends on the variables; PSD not decided symbolically"


def _sample_box(problem: BilevelProblem, values: dict, n: int, seed: int) -> np.ndarray:
    lp = lower(problem)
    rng = np.random.default_rng(seed)
    cols = []
    for which, start in (("x", lp.x_start), ("y", lp.y_start)):
        lo, hi = box_from_constraints(lp, which)
        a = np.where(np.isfinite(lo), lo, start - 5 * (1 + np.abs(start)))
        b = np.where(np.isfinite(hi), hi, start + 5 * (1 + np.abs(start)))
        wide = a + (b - a) * rng.random((n, start.size))
        near = np.clip(start + rng.uniform(-1, 1, (n, start.size)), a, b)
        cols.append(np.vstack([wide, near]))
    return np.hstack(cols)


def follower_convexity_report(problem: BilevelProblem, parameters: Mapping | None = None, n_samples: int = 400,
                       seed: int = 0, tol: float = 1e-9) -> FollowerConvexity:
    """Convexity of the follower in y: proof where SymPy can, counterexample by sampling otherwise."""
    values = dict(zip(problem.parameter_symbols, problem.parameter_vector(parameters)))
    ys, xs = list(problem.follower), list(problem.leader)
    evidence, undecided, H_f = [], [], None
    terms = problem.nonsmooth_follower_terms()
    if terms:
        return FollowerConvexity("unknown", False, [f"{w} contains the non-smooth term {t}; no Hessian" for w, t in terms[:1]])
    for what, e, sign in _pieces(problem, values):
        H = sp.hessian(e, ys)
        if what == "lower objective f":
            H_f = H
        M = H if sign >= 0 else -H
        if sign == 0:
            if not H.is_zero_matrix and sp.simplify(H).is_zero_matrix is not True:
                return FollowerConvexity("nonconvex", True, [f"{what} is not affine in y (Hessian {H})"], hessian=H_f)
            continue
        ok, why = _symbolic(M)
        kind = "convex" if sign > 0 else "concave"
        if ok is False:
            return FollowerConvexity("nonconvex", True, evidence + [f"{what} is not {kind} in y: {why}"],
                                     counterexample={"piece": what, "detail": why}, hessian=H_f)
        if ok:
            evidence.append(f"{what}: {why}")
        else:
            evidence.append(f"{what}: {why}; sampling")
            undecided.append((what, M, kind))
    if not undecided:
        return FollowerConvexity("convex", True, evidence, hessian=H_f)
    pts = _sample_box(problem, values, n_samples, seed)
    for what, M, kind in undecided:
        f = sp.lambdify(xs + ys, M, "numpy")
        worst = (np.inf, None, None)
        for pt in pts:
            ev, vec = np.linalg.eigh(np.atleast_2d(np.asarray(f(*pt), float)))
            if ev[0] < worst[0]:
                worst = (float(ev[0]), pt, vec[:, 0])
        if worst[0] < -tol:
            pt = worst[1]
            point = {str(s): float(v) for s, v in zip(xs + ys, pt)}
            return FollowerConvexity(
                "nonconvex", True, evidence + [f"{what} is not {kind} in y: its Hessian has eigenvalue "
                                               f"{worst[0]:.6g} at {point} (direction {np.round(worst[2], 6).tolist()})"],
                counterexample={"piece": what, "point": point, "eigenvalue": worst[0],
                                "direction": worst[2].tolist()}, hessian=H_f)
        sd = "positive" if kind == "convex" else "negative"
        evidence.append(f"{what}: Hessian {sd} semidefinite at all {len(pts)} sampled points "
                        f"(smallest eigenvalue of the test matrix {worst[0]:.3g}); not a proof")
    return FollowerConvexity("no counterexample found", False, evidence, hessian=H_f)

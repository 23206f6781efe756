"""Certificate of a candidate bilevel point: is y* really the follower's best reply?

The follower is re-solved at the leader's x* from several starts (the returned
y*, the user's start, zero and random points in the follower's box) with
Ipopt's bound relaxation off. The value gap f(x*, y*) - phi(x*) (phi = the best
value found), the feasibility of both levels and the complementarity residual
are reported; ``passed`` is True only when all are within tolerance.

A multistart re-solve cannot prove global optimality of a nonconvex follower;
when the follower is convex (checked symbolically) the certificate says so and
the KKT point is provably optimal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lower import LoweredProblem
from ..solve import FollowerSolver, box_from_constraints


@dataclass
class Certificate:
    """Evidence that (x*, y*) is bilevel feasible with y* follower-optimal."""

    passed: bool
    value_gap: float                 # f(x*, y*) - phi(x*) >= 0 means the follower could do better
    follower_value: float            # f(x*, y*) (minimisation sense)
    phi: float                       # best follower value found at x*
    better_y: np.ndarray | None      # the better follower response, when gap > tol
    lower_infeasibility: float
    upper_infeasibility: float
    complementarity: float
    stationarity: float | None
    starts_used: int
    starts_succeeded: int
    follower_convex: bool
    tolerance: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    follower_unbounded: bool = False           # a re-solve diverged: no follower optimum at x
    follower_ipopt_status: str | None = None   # Ipopt's status of that re-solve

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED: " + "; ".join(self.reasons)
        return (f"certificate {verdict} (gap {self.value_gap:.3g}, lower infeas {self.lower_infeasibility:.2g}, "
                f"upper infeas {self.upper_infeasibility:.2g}, {self.starts_succeeded}/{self.starts_used} follower starts)")

    def _repr_latex_(self) -> str:
        from ..display import latex
        return "$\\displaystyle " + latex(self, mode="inline") + "$"

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["better_y"] = None if self.better_y is None else self.better_y.tolist()
        return d


def follower_starts(lp: LoweredProblem, y: np.ndarray, n_random: int, seed: int = 0,
                    grid: int = 0) -> list[np.ndarray]:
    """The returned y, the declared start, zero, the box centre and random points in the box.

    The box is the follower's simple bounds where declared, else y +- 10 (1 + |y|).
    """
    rng = np.random.default_rng(seed)
    lo, hi = box_from_constraints(lp, "y")
    starts = [np.asarray(y, float), lp.y_start, np.zeros(lp.n_y)]
    span = 10 * (1 + np.abs(y))
    a = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), np.minimum(hi, y) - span, y - span))
    b = np.where(np.isfinite(hi), hi, np.maximum(a, y) + span)
    starts.append((a + b) / 2)
    for _ in range(n_random):
        starts.append(a + (b - a) * rng.random(lp.n_y))
    if grid and lp.n_y <= 2:  # a small follower also gets a grid over its box
        axes = [np.linspace(a[i], b[i], grid) for i in range(lp.n_y)]
        starts += [np.array(pt) for pt in np.stack(np.meshgrid(*axes), -1).reshape(-1, lp.n_y)]
    return starts


def _infeasibility(lp: LoweredProblem, x, y, p, level: str) -> float:
    ineq = lp.evaluate("lower_ineq" if level == "lower" else "upper_ineq", x, y, p)
    eq = lp.evaluate("lower_eq" if level == "lower" else "upper_eq", x, y, p)
    v = [0.0]
    if ineq.size:
        v.append(float(np.max(np.maximum(-ineq, 0.0))))
    if eq.size:
        v.append(float(np.max(np.abs(eq))))
    return max(v)


def certify(lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
            lam: np.ndarray | None = None, follower: FollowerSolver | None = None,
            n_random: int = 8, gap_tol: float = 1e-6, feas_tol: float = 1e-6, seed: int = 0,
            follower_convex: bool = False, grid: int = 0) -> Certificate:
    """Re-solve the follower at ``x`` and compare with ``y`` (see module docstring)."""
    follower = follower or FollowerSolver(lp, tight=True)
    x, y, p = (np.asarray(v, float).reshape(-1) for v in (x, y, p))
    f_star = float(lp.evaluate("lower_objective", x, y, p)[0])
    lower_inf = _infeasibility(lp, x, y, p, "lower")
    upper_inf = _infeasibility(lp, x, y, p, "upper")
    # A convex follower's KKT points are global: one re-solve from y confirms the value.
    starts = [y] if follower_convex else follower_starts(lp, y, n_random, seed, grid)
    sols = follower.multistart(x, p, starts)
    good = [s for s in sols if s.success and _infeasibility(lp, x, s.y, p, "lower") <= feas_tol]
    diverged = [s for s in sols if s.status == "unbounded" or (np.isfinite(s.value) and s.value < -1e12
                and _infeasibility(lp, x, s.y, p, "lower") <= feas_tol)]
    phi = min([s.value for s in good], default=np.inf)
    best = good[0] if good else None
    scale = 1.0 + abs(f_star)
    gap = f_star - phi if np.isfinite(phi) else np.nan
    reasons = []
    if lower_inf > feas_tol * scale:
        reasons.append(f"follower constraints violated by {lower_inf:.3g}")
    if upper_inf > feas_tol * (1 + abs(float(lp.evaluate('upper_objective', x, y, p)[0]))):
        reasons.append(f"leader constraints violated by {upper_inf:.3g}")
    if diverged:
        reasons.append(f"the follower appears unbounded below at this x (Ipopt: {diverged[0].ipopt_status}, "
                       f"f = {diverged[0].value:.3g}): no follower-optimal response exists")
        gap = np.inf
    if not good:
        reasons.append("no follower re-solve succeeded: follower optimality unverified")
    elif gap > gap_tol * scale:
        reasons.append(f"the follower can do better by {gap:.3g} (y = {np.round(best.y, 6).tolist()})")
    comp = 0.0
    if lam is not None and np.size(lam):
        gv = lp.evaluate("lower_ineq", x, y, p)
        comp = float(np.max(np.abs(np.minimum(gv, lam))))
    return Certificate(
        passed=not reasons, value_gap=float(max(gap, 0.0)) if not np.isnan(gap) else float("nan"),
        follower_value=f_star, phi=float(phi),
        better_y=None if (best is None or diverged or gap <= gap_tol * scale) else best.y,
        lower_infeasibility=lower_inf, upper_infeasibility=upper_inf, complementarity=comp,
        stationarity=None, starts_used=len(starts), starts_succeeded=len(good),
        follower_convex=follower_convex,
        tolerance={"gap": gap_tol, "feasibility": feas_tol, "relative_to": "1 + |f(x*, y*)|"},
        reasons=reasons, follower_unbounded=bool(diverged),
        follower_ipopt_status=diverged[0].ipopt_status if diverged else None,
    )

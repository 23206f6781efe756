"""Infima that are not attained, and leader objectives without a lower bound.

Both are detected from *exact* bilevel points only (leader inside its bounds, follower's
exact reply, a certificate), never from points that exist only inside a tolerance.

* Not attained (Zlobec2001b: F = x for x > 0, but F(0) = 1 because the follower jumps):
  a solver point x_raw just outside the leader's bounds has value F_raw, while the
  projected point x_p is worse. The exact points x_t = x_p + t u (u pointing into the
  box, t = 10^-1 ... 10^-6) are evaluated; when their values fall towards F_raw and stay
  below every exact point found, the infimum F_raw is approached but not attained.
* Unbounded (DesignCentringP2: F = -pi x3 x4 with x3, x4 <= 1 only): along a ray from a
  low point x*, x_k = x* + (2^k - 1) d, the exact values keep falling, by more than
  ``factor`` (1 + |F*|) after ``steps`` doublings. Two rays are tried: away from the start
  (d = x* - x0) and the leader's steepest descent d = -grad_x F(x*, y*) on the coordinates
  whose bounds allow it, scaled to |x*|. This is evidence (finitely many exact points),
  reported with the points, not a proof.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class ExactValue:
    """F at an exact bilevel point, with what the certificate proved there."""

    x: np.ndarray
    y: np.ndarray
    upper: float
    feasible: bool        # both levels feasible (absolute tolerances), leader inside its bounds
    proof: str


Evaluate = Callable[[np.ndarray, np.ndarray], "ExactValue | None"]


def approach_infimum(evaluate: Evaluate, x_raw: np.ndarray, x_p: np.ndarray, y: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, raw_upper: float, best_exact: float,
                     tol: float = 1e-6) -> list[ExactValue] | None:
    """Exact points approaching ``raw_upper`` from inside the box, or None when they do not."""
    u = np.sign(x_p - x_raw)
    if not np.any(u):
        return None
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0 + np.abs(x_p))
    seq = []
    for k in range(1, 7):
        x_t = np.clip(x_p + 10.0 ** -k * u * span, lo, hi)
        v = evaluate(x_t, y)
        if v is None or not v.feasible:
            return None
        seq.append(v)
    values = [v.upper for v in seq]
    falling = all(b <= a + tol * (1 + abs(a)) for a, b in zip(values, values[1:]))
    close = abs(values[-1] - raw_upper) <= 1e-4 * (1 + abs(raw_upper))
    below = values[-1] < best_exact - tol * (1 + abs(best_exact))
    return seq if (falling and close and below) else None


def unbounded_ray(evaluate: Evaluate, x0: np.ndarray, x_best: np.ndarray, y: np.ndarray, upper: float,
                  lo: np.ndarray, hi: np.ndarray, descent: np.ndarray | None = None, steps: int = 4,
                  factor: float = 100.0) -> list[ExactValue] | None:
    """Exact points along a ray from x* whose values fall without bound, or None (see module docstring)."""
    x_best = np.asarray(x_best, float)
    rays = [x_best - np.asarray(x0, float)]
    if descent is not None:
        d = np.where(((descent > 0) & ~np.isfinite(hi)) | ((descent < 0) & ~np.isfinite(lo)), descent, 0.0)
        if np.any(d):
            rays.append(d / np.max(np.abs(d)) * (1 + np.max(np.abs(x_best))))
    for d in rays:
        seq = _ray(evaluate, x_best, d, y, upper, lo, hi, steps, factor)
        if seq is not None:
            return seq
    return None


def _ray(evaluate: Evaluate, x_best, d, y, upper, lo, hi, steps, factor):
    free = ~(np.isfinite(lo) & np.isfinite(hi))
    if not np.any(d[free]):
        return None
    seq, last, y_k = [], upper, y
    for k in range(1, steps + 1):
        x_k = np.clip(x_best + (2.0 ** k - 1) * d, lo, hi)
        v = evaluate(x_k, y_k)
        if v is None or not v.feasible or v.upper >= last:
            return None
        seq.append(v)
        last, y_k = v.upper, v.y
    return seq if last < upper - factor * (1 + abs(upper)) else None

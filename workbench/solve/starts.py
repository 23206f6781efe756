"""Starting points for local solves: leader points for the single-level NLPs, follower points
for multistart re-solves at a fixed x.

Both sample a box: the simple bounds read off the constraints (``box_from_constraints``)
where declared, else a span around the given point, so that an unbounded variable still
gets starts on both sides of it.
"""
from __future__ import annotations

import numpy as np

from ..lower import LoweredProblem
from .follower import box_from_constraints


def box_points(x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """x0, then n - 1 seeded points uniform in [lo, hi]; an unbounded side spans 5 (1 + |x0|) from x0."""
    rng = np.random.default_rng(seed)
    x0 = np.asarray(x0, float)
    span = 5 * (1 + np.abs(x0))
    a = np.where(np.isfinite(lo), lo, np.minimum(hi, x0) - span)
    b = np.where(np.isfinite(hi), hi, np.maximum(lo, x0) + span)
    return [x0] + [a + (b - a) * rng.random(x0.size) for _ in range(max(n - 1, 0))]


def leader_starts(lp: LoweredProblem, x0: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """The user's x0, then n - 1 random points in the leader's box (:func:`box_points`)."""
    lo, hi = box_from_constraints(lp, "x")
    return box_points(x0, lo, hi, n, seed)


def follower_starts(lp: LoweredProblem, y: np.ndarray, n_random: int, seed: int = 0,
                    grid: int = 0) -> list[np.ndarray]:
    """The returned y, the declared start, zero, the box centre and random points in the box.

    The box is the follower's simple bounds where declared, else y +- 10 (1 + |y|); with
    ``grid`` a follower with at most two variables also gets a grid x grid lattice of it.
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

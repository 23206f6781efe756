"""Sampling the reduced objective F(x, y*(x)), refined by a compass search.

y*(x) is the best follower reply a multistart finds at x (optimistic tie-break: among equally
good replies the one best for the leader). Every sample is bilevel feasible by construction,
so sampling finds the right branch where the reaction map jumps (nonconvex followers) and the
KKT homotopies cannot. The best samples are certified, kept and polished by the homotopy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..certify import follower_is_convex
from ..lower import LoweredProblem
from ..solve import FollowerSolver, box_from_constraints, follower_starts
from ..values import Point
from .homotopies import Homotopies, Start
from .pool import CandidatePool, Origin


@dataclass(frozen=True)
class Sample:
    """A bilevel-feasible point (the follower's best reply found at x, with its multipliers),
    F there and how far it violates the leader's constraints."""

    point: Point
    upper: float
    upper_infeasibility: float


def _upper_infeasibility(lp: LoweredProblem, x, y, p) -> float:
    ineq, eq = lp.evaluate("upper_ineq", x, y, p), lp.evaluate("upper_eq", x, y, p)
    return float(max(np.max(np.maximum(-ineq, 0), initial=0.0), np.max(np.abs(eq), initial=0.0)))


def best_reply(lp: LoweredProblem, follower: FollowerSolver, x, p, y_guess, n_random: int, seed: int,
               tie_tol: float = 1e-7) -> Sample | None:
    """Follower multistart at x; among the (near-)global replies, the one best for the leader.

    A follower that is provably a convex QP at x needs one start (its KKT point is global).
    """
    starts = [np.asarray(y_guess, float)] if follower_is_convex(lp, x, p) else follower_starts(lp, y_guess, n_random, seed)
    sols = [s for s in follower.multistart(x, p, starts) if s.success]
    if not sols:
        return None
    phi = min(s.value for s in sols)
    ties = [s for s in sols if s.value <= phi + tie_tol * (1 + abs(phi))]
    scored = [(_upper_infeasibility(lp, x, s.y, p) > 1e-7, float(lp.evaluate("upper_objective", x, s.y, p)[0]), s) for s in ties]
    bad, upper, s = min(scored, key=lambda t: (t[0], t[1]))
    return Sample(Point(np.asarray(x, float), s.y, s.lam, s.mu), upper, _upper_infeasibility(lp, x, s.y, p))


def _key(s: Sample) -> tuple:
    return (s.upper_infeasibility > 1e-7, s.upper_infeasibility if s.upper_infeasibility > 1e-7 else 0.0, s.upper)


def sample_reduced_objective(lp: LoweredProblem, follower: FollowerSolver, p, lo, hi, y_guess,
                             n_samples: int = 32, n_random: int = 3, refine: int = 2, seed: int = 0,
                             deadline: float | None = None, refine_below: float = np.inf) -> list[Sample]:
    """Quasi-random samples of the reduced objective in [lo, hi], best refined by compass search.

    Only samples whose leader value is below ``refine_below`` (e.g. the best point known so far)
    are refined: there the sampled branch beats what the KKT route found.
    """
    from scipy.stats import qmc  # imported here: scipy.stats costs a second to import

    sobol = qmc.Sobol(d=lp.n_x, scramble=True, seed=seed)
    pts = qmc.scale(sobol.random(n_samples), lo, hi) if np.all(hi > lo) else np.tile(lo, (n_samples, 1))
    samples = []
    for x in pts:
        if deadline is not None and time.monotonic() > deadline:
            break
        s = best_reply(lp, follower, x, p, y_guess, n_random, seed)
        if s is not None:
            samples.append(s)
    samples.sort(key=_key)
    refined = [_compass(lp, follower, p, lo, hi, s, n_random, seed, deadline) for s in samples[:refine]
               if s.upper_infeasibility <= 1e-7 and s.upper < refine_below]
    return sorted(refined + samples, key=_key)


def _compass(lp, follower, p, lo, hi, s: Sample, n_random, seed, deadline, max_evals: int = 40) -> Sample:
    """Derivative-free descent on the reduced objective (handles the jumps of y*(x))."""
    step = 0.25 * np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    best, evals = s, 0
    while evals < max_evals and np.max(step) > 1e-6 * (1 + np.max(np.abs(best.point.x))):
        if deadline is not None and time.monotonic() > deadline:
            break
        improved = False
        for i in range(lp.n_x):
            for sign in (1.0, -1.0):
                x = best.point.x.copy()
                x[i] = np.clip(x[i] + sign * step[i], lo[i], hi[i])
                if np.allclose(x, best.point.x):
                    continue
                cand = best_reply(lp, follower, x, p, best.point.y, n_random, seed)
                evals += 1
                if cand is not None and _key(cand) < _key(best):
                    best, improved = cand, True
                    break
            if improved:
                break
        if not improved:
            step = step / 2
    return best


def sample_and_polish(pool: CandidatePool, polish: Homotopies, x0, y0, seed: int, light: bool = False) -> None:
    """Sample the reduced objective, certify the best two feasible samples and polish them with
    the KKT homotopy (``polish(starts, rnd)``).

    The box is the leader's bounds, else the span of the points known so far, widened.
    ``light``: 16 samples; only a sample that beats the best certified point is refined and kept.
    """
    lo, hi = box_from_constraints(pool.lp, "x")
    xs = [x0] + [c.x for c in pool.candidates]
    span = 2 * (1 + np.max(np.abs(xs), axis=0))
    lo = np.where(np.isfinite(lo), lo, np.min(xs, axis=0) - span)
    hi = np.where(np.isfinite(hi), hi, np.max(xs, axis=0) + span)
    best = pool.best_value()
    margin = best - 1e-6 * (1 + abs(best)) if np.isfinite(best) else np.inf
    samples = sample_reduced_objective(pool.lp, pool.follower, pool.p, lo, hi, y0, seed=seed, deadline=pool.deadline,
                                       **(dict(n_samples=16, refine=1, refine_below=margin) if light else {}))
    feasible = [s for s in samples if s.upper_infeasibility <= 1e-7][:2]
    if light:
        feasible = [s for s in feasible if s.upper < margin]
    for s in feasible:
        pt = s.point
        pool.add(pt, pool.certify(pt.x, pt.y, pt.lam, pt.mu), Origin(-2, "Solve_Succeeded"))
    if feasible and not pool.late():
        polish([Start(s.point) for s in feasible], rnd=-1)

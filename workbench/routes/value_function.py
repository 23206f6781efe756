"""Global-search helpers of the KKT route: they produce candidates that the certificate then checks.

* :func:`sample_reduced_objective` evaluates the reduced objective F(x, y*(x)) at quasi-random
  leader points, with y*(x) the best follower reply found by a multistart (optimistic tie-break:
  among equally good replies the one best for the leader), then refines the best samples by a
  compass search. Every sample is a bilevel-feasible point by construction, so this finds the
  right branch when the reaction map jumps (nonconvex followers) where KKT homotopies cannot.
* :func:`value_function_cuts` solves the high-point relaxation (both levels' constraints, no
  optimality) with the cuts f(x, y) <= f(x, y_k) for follower replies y_k found so far
  (Mitsos, Lemonidis & Barton's discretisation, with local solves). The cuts are valid when
  the follower's feasible set does not depend on x; the route only uses them then.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np

from ..certify import follower_is_convex, follower_starts
from ..lower import LoweredProblem
from ..solve import FollowerSolver, IpoptSolver


@dataclass
class Sample:
    x: np.ndarray
    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
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
    return Sample(np.asarray(x, float), s.y, s.lam, s.mu, upper, _upper_infeasibility(lp, x, s.y, p))


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
    while evals < max_evals and np.max(step) > 1e-6 * (1 + np.max(np.abs(best.x))):
        if deadline is not None and time.monotonic() > deadline:
            break
        improved = False
        for i in range(lp.n_x):
            for sign in (1.0, -1.0):
                x = best.x.copy()
                x[i] = np.clip(x[i] + sign * step[i], lo[i], hi[i])
                if np.allclose(x, best.x):
                    continue
                cand = best_reply(lp, follower, x, p, best.y, n_random, seed)
                evals += 1
                if cand is not None and _key(cand) < _key(best):
                    best, improved = cand, True
                    break
            if improved:
                break
        if not improved:
            step = step / 2
    return best


def value_function_cuts(lp: LoweredProblem, follower: FollowerSolver, p, x0, y0, cuts: list[np.ndarray],
                        check, max_rounds: int = 8, ipopt_options: dict | None = None,
                        deadline: float | None = None) -> list[tuple]:
    """High-point relaxation plus value-function cuts, re-solved while the certificate finds better replies.

    ``check(x, y)`` snaps y to the follower's exact local reply and certifies it, returning
    ``(y, lam, mu, certificate)``. Returns (x, y, lam, mu, certificate) for every point solved.
    """
    out = []
    cuts = [np.asarray(c, float) for c in cuts]
    x, y = np.asarray(x0, float), np.asarray(y0, float)
    for _ in range(max_rounds):
        if deadline is not None and time.monotonic() > deadline:
            break
        cut_exprs = [ca.substitute(lp.f, lp.y, ca.DM(c)) - lp.f for c in cuts]
        g = ca.vertcat(lp.G, lp.g, *cut_exprs, lp.H, lp.h)
        n_in = int(lp.G.numel() + lp.g.numel()) + len(cut_exprs)
        n_eq = int(lp.H.numel() + lp.h.numel())
        solver = IpoptSolver({"x": ca.vertcat(lp.x, lp.y), "p": lp.p, "f": lp.F, "g": g}, ipopt_options, name="high_point")
        r = solver.solve(np.concatenate([x, y]), p, lbg=np.zeros(n_in + n_eq),
                         ubg=np.concatenate([np.full(n_in, np.inf), np.zeros(n_eq)]))
        if not r.success:
            break
        x, y = r.w[: lp.n_x], r.w[lp.n_x:]
        x, y, lam, mu, cert = check(x, y)
        out.append((x, y, lam, mu, cert))
        if cert.passed or cert.better_y is None:
            break
        if any(np.allclose(cert.better_y, c, atol=1e-8) for c in cuts):
            break
        cuts.append(cert.better_y)
    return out


class OptimisticSelection:
    """At a fixed x, the follower reply best for the leader among the follower's optimal replies.

        min_y F(x, y)  s.t.  g(x, y) >= 0, h(x, y) = 0, f(x, y) <= phi(x) + tol

    When the follower's solution set is not a single point (a face of an LP, a ridge of
    optimal points), this is the optimistic choice; the certificate is re-run on its answer.
    """

    def __init__(self, lp: LoweredProblem, ipopt_options: dict | None = None):
        self.lp = lp
        bound = ca.SX.sym("phi_plus_tol") if isinstance(lp.y, ca.SX) else ca.MX.sym("phi_plus_tol")
        g = ca.vertcat(lp.g, bound - lp.f, lp.h)
        self.n_in, self.n_eq = int(lp.g.numel()) + 1, int(lp.h.numel())
        nlp = {"x": lp.y, "p": ca.vertcat(lp.x, lp.p, bound), "f": lp.F, "g": g}
        self.solver = IpoptSolver(nlp, dict(ipopt_options or {}, **{"ipopt.bound_relax_factor": 0.0}),
                                  name="optimistic_selection")

    def __call__(self, x, p, y, phi: float, tol: float = 1e-9) -> np.ndarray | None:
        r = self.solver.solve(y, np.concatenate([x, p, [phi + tol * (1 + abs(phi))]]),
                              lbg=np.zeros(self.n_in + self.n_eq),
                              ubg=np.concatenate([np.full(self.n_in, np.inf), np.zeros(self.n_eq)]))
        return r.w if r.success else None

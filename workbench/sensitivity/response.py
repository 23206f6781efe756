"""The follower's reply at a fixed leader point: solve, polish, classify the active set.

Ipopt (tight) gives y and the multipliers to ~1e-10; a few Newton steps on the
active-set KKT equations then make them exact to rounding (one step for QPs),
so that the active set can be read off with tight tolerances and finite
differences of re-solved replies are meaningful.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Mapping

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from ..errors import SolverFailure, ValueInputError
from ..lower import LoweredProblem, lower
from ..values import MultiplierMap
from ..solve import FollowerSolver
from .identify import qp_active_set
from .kkt_matrix import KKTPieces
from .threads import per_thread, prepared

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

def follower_solver(lp: LoweredProblem) -> FollowerSolver:
    """One tight FollowerSolver per lowered problem *and thread* (an nlpsol's memory is not shared)."""
    return per_thread(lp, "follower_solver", lambda: FollowerSolver(lp, tight=True))


@dataclass
class FollowerResponse:
    """y*(x), multipliers and the active set at one leader point (our sign convention)."""

    problem: Problem
    lp: LoweredProblem
    x: np.ndarray
    p: np.ndarray
    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    active: np.ndarray          # bool per inequality: treated as equality (strongly or weakly active)
    weakly: np.ndarray          # bool per inequality: g ~ 0 and lam ~ 0
    status: str                 # Ipopt status word of the follower solve
    polished: bool
    tol: float
    info: dict = field(default_factory=dict)

    @property
    def g_names(self) -> list[Hashable]:
        return list(self.lp.g_names)

    @property
    def follower(self) -> dict:
        syms = getattr(self.problem, "follower", None) or range(self.lp.n_y)
        return {s: float(v) for s, v in zip(syms, self.y)}

    @property
    def multipliers(self) -> MultiplierMap:
        return MultiplierMap(list(self.lp.g_names) + list(self.lp.h_names), np.concatenate([self.lam, self.mu]))

    @property
    def active_set(self) -> list[Hashable]:
        """Names of the inequality constraints with g = 0 (strongly or weakly active)."""
        return [n for n, a, w in zip(self.lp.g_names, self.active, self.weakly) if a or w]

    @property
    def weakly_active(self) -> list[Hashable]:
        return [n for n, w in zip(self.lp.g_names, self.weakly) if w]

    def __repr__(self) -> str:
        return (f"FollowerResponse(follower={self.follower}, multipliers={self.multipliers!r}, "
                f"active_set={self.active_set}, weakly_active={self.weakly_active})")


def _vector(problem: Problem, values: Any, which: str, n: int) -> np.ndarray:
    if hasattr(problem, "point_vector") and isinstance(values, Mapping):
        return problem.point_vector(values, which)
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise ValueInputError(f"{which} point must be {n} finite numbers (or a dict keyed by symbols), got {values!r}")
    return arr


def parameter_vector(problem: Problem, lp: LoweredProblem, parameters: Any) -> np.ndarray:
    if parameters is None:
        return np.asarray(lp.p_default, dtype=float).reshape(-1)
    if hasattr(problem, "parameter_vector") and isinstance(parameters, Mapping):
        return problem.parameter_vector(parameters)
    return _vector(problem, parameters, "parameter", lp.n_p)


def _newton_polish(lp, x, y, p, lam, mu, active, iters=6):
    """Newton steps on [grad_y L; g_A; h] = 0 with the active set fixed; None if it fails."""
    y, lam, mu = y.copy(), lam.copy(), mu.copy()
    idx = np.flatnonzero(active)
    lam[~active] = 0.0
    previous = np.inf
    for it in range(iters + 1):
        k = KKTPieces(lp, x, y, p, lam, mu)
        res = np.concatenate([k.grad, k.g[idx], k.h])
        r = float(np.max(np.abs(res), initial=0.0))
        if r < 1e-14 * max(1.0, float(np.max(np.abs(y), initial=0.0))) or r > 0.1 * previous or it == iters:
            break  # converged, at the rounding floor (no more quadratic decrease), or out of steps
        previous = r
        K = k.matrix(active)
        try:
            step = spla.splu(K, permc_spec="MMD_AT_PLUS_A").solve(-res)
        except RuntimeError:  # singular (LICQ fails): least-squares step on the dense matrix
            if K.shape[0] > 3000:
                return None
            step = sla.lstsq(K.toarray(), -res)[0]
        n = lp.n_y
        y = y + step[:n]
        nu = -step[n:]  # the unknown's multiplier block is -dnu
        lam[idx] += nu[: idx.size]
        mu = mu + nu[idx.size:]
    if not np.all(np.isfinite(res)) or np.max(np.abs(res), initial=0.0) > 1e-9 * max(1.0, np.max(np.abs(y), initial=0.0)):
        return None
    return y, lam, mu, k.g


def follower_response(problem: Problem, leader: Any, parameters: Any = None, start: Any = None,
                      tol: float = 1e-7, polish: bool = True) -> FollowerResponse:
    """Solve the follower at ``leader`` (dict keyed by leader symbols, or a vector).

    ``tol`` separates zero from non-zero constraint values and multipliers after
    polishing (scaled by max(1, |grad f|)).
    """
    lp = prepared(problem)
    x = _vector(problem, leader, "leader", lp.n_x)
    p = parameter_vector(problem, lp, parameters)
    y0 = lp.y_start if start is None else _vector(problem, start, "follower", lp.n_y)
    solver = follower_solver(lp)
    t0 = time.perf_counter()
    sol = solver.solve(x, p, y0)
    t_solve = time.perf_counter() - t0
    if not sol.success:
        raise SolverFailure(
            f"the follower could not be solved at leader point {x.tolist()} (Ipopt: {sol.ipopt_status}); "
            "check that the follower is feasible there or pass start=... closer to its solution",
            status=sol.status, solver_status=sol.ipopt_status)
    return _classified(problem, lp, x, p, sol.y, sol.lam, sol.mu, tol, polish, sol.status,
                       {"ipopt_status": sol.ipopt_status, "ipopt_s": t_solve})


def _nonnegative_multipliers(lp, x, y, p, lam, mu, active):
    """Multipliers of dependent active rows are a set: pick one with lam_A >= 0 (bounded least squares).

    Solves min |J_A^T lam_A + J_h^T mu - grad_y f| over lam_A >= 0 (SciPy's lsq_linear); the
    input is returned unchanged when no such multiplier solves stationarity to 1e-9.
    """
    from scipy.optimize import lsq_linear
    k = KKTPieces(lp, x, y, p, np.zeros_like(lam), np.zeros_like(mu))  # grad = grad_y f
    J, _ = k.constraint_rows(active)
    idx = np.flatnonzero(active)
    lo = np.concatenate([np.zeros(idx.size), np.full(mu.size, -np.inf)])
    sol = lsq_linear(J.toarray().T, k.grad, bounds=(lo, np.full(lo.size, np.inf)), tol=1e-14, lsmr_tol="auto")
    if not sol.success or np.max(np.abs(J.T @ sol.x - k.grad), initial=0.0) > 1e-9 * max(1.0, np.max(np.abs(k.grad))):
        return lam, mu
    lam2 = np.zeros_like(lam)
    lam2[idx] = sol.x[: idx.size]
    return lam2, sol.x[idx.size:]


def _classified(problem: Problem, lp: LoweredProblem, x: np.ndarray, p: np.ndarray, y: np.ndarray, lam: np.ndarray,
                mu: np.ndarray, tol: float, polish: bool, status: str, info: dict) -> FollowerResponse:
    """Polish (y, lam, mu) on its active set and read off strongly / weakly active rows.

    The active-set guess lam_i > g_i (interior point: lam_i g_i ~ mu) can fail next to a
    degenerate point, where Ipopt leaves g_i and lam_i both ~1e-6; then the rows with
    g_i below growing thresholds are tried as the active set (least squares when they
    are dependent). The first guess whose Newton polish is primal and dual feasible wins.
    """
    g = lp.evaluate("lower_ineq", x, y, p)
    active = lam > g
    polished = False
    t0 = time.perf_counter()
    if polish:
        gscale = max(1.0, float(np.max(np.abs(y), initial=0.0)))
        def guesses():
            yield active
            qp = qp_active_set(lp, x, y, p, lam, mu)  # exact identification (see identify.py)
            if qp is not None:
                yield qp
            yield from (g <= thr * gscale for thr in (1e-8, 1e-6, 1e-4))
            near = np.flatnonzero((g <= 1e-4 * gscale) & (np.abs(lam) <= 1e-4 * max(1.0, float(np.max(np.abs(lam), initial=0.0)))))
            if 0 < near.size <= 8:  # rows where Ipopt cannot tell the side: try every split of them
                for bits in range(2 ** near.size):
                    guess = active.copy()
                    guess[near] = [(bits >> j) & 1 == 1 for j in range(near.size)]
                    yield guess
        tried: set[bytes] = set()
        best = None  # (violation, point): the guess whose polished point is the most feasible
        for guess in guesses():
            if guess.tobytes() in tried:
                continue
            tried.add(guess.tobytes())
            out = _newton_polish(lp, x, y, p, lam, mu, guess)
            if out is None:
                continue
            y2, lam2, mu2, g2 = out
            if np.any(lam2[guess] < 0):
                lam2, mu2 = _nonnegative_multipliers(lp, x, y2, p, lam2, mu2, guess)
            viol = max(0.0, -float(np.min(g2[~guess], initial=0.0)), -float(np.min(lam2[guess], initial=0.0)))
            if viol <= tol and (best is None or viol < best[0]):
                best = (viol, (y2, lam2, mu2, g2, guess))
            if viol <= 1e-13 * gscale:  # exactly feasible (to rounding): no other guess can be better
                break
        if best is not None:
            (y, lam, mu, g, active), polished = best[1], True
    info["polish_s"] = time.perf_counter() - t0
    scale = max(1.0, float(np.max(np.abs(KKTPieces(lp, x, y, p, 0 * lam, 0 * mu).grad), initial=0.0)))
    t = tol * scale
    weakly = (np.abs(g) <= t) & (np.abs(lam) <= t)
    active = active & ~weakly
    return FollowerResponse(problem, lp, x, p, y, lam, mu, active, weakly, status, polished, t, info=info)


def response_at(problem: Problem, leader: Any, y: Any, lam: Any = None, mu: Any = None, parameters: Any = None,
                tol: float = 1e-7, polish: bool = True) -> FollowerResponse:
    """The follower reply *given* by the caller (e.g. a bilevel result's y, lam, mu), polished.

    No follower solve: the point is only refined by Newton steps on its own active set, so
    the sensitivities are those of this reply, not of another local minimiser. Missing
    multipliers are estimated by least squares on the rows with g ~ 0. ``info["kkt_residual"]``
    says how far the given point is from a KKT point.
    """
    lp = prepared(problem)
    x = _vector(problem, leader, "leader", lp.n_x)
    p = parameter_vector(problem, lp, parameters)
    y = _vector(problem, y, "follower", lp.n_y).copy()
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    if lam is None or mu is None:
        g = lp.evaluate("lower_ineq", x, y, p)
        k = KKTPieces(lp, x, y, p, np.zeros(ng), np.zeros(nh))
        near = np.abs(g) <= 1e-6 * max(1.0, float(np.max(np.abs(y), initial=0.0)))
        J, _ = k.constraint_rows(near)
        nu = sla.lstsq(J.toarray().T, k.grad)[0] if J.shape[0] else np.zeros(0)
        lam_est = np.zeros(ng)
        lam_est[near] = np.maximum(nu[: int(near.sum())], 0.0)
        lam = lam_est if lam is None else lam
        mu = nu[int(near.sum()):] if mu is None else mu
    lam = np.asarray(lam, dtype=float).reshape(-1).copy()
    mu = np.asarray(mu, dtype=float).reshape(-1).copy()
    if lam.size != ng or mu.size != nh:
        raise ValueInputError(f"the given multipliers have sizes {lam.size}, {mu.size}; the follower has {ng} "
                              f"inequalities and {nh} equalities")
    r = _classified(problem, lp, x, p, y, lam, mu, tol, polish, "given", {"source": "given point"})
    k = KKTPieces(lp, x, r.y, r.p, r.lam, r.mu)
    r.info["kkt_residual"] = float(np.max(np.abs(np.concatenate(
        [k.grad, np.minimum(k.g, 0.0), k.h, np.minimum(r.lam, 0.0), r.lam * k.g])), initial=0.0))
    return r

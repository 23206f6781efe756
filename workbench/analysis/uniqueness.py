"""Is the follower's solution set Y*(x) a singleton at a leader point? Three pieces of evidence.

1. Multistart global comparison: the follower is solved from many starts; every
   feasible solution within a value tolerance of the best is a global minimiser
   (as far as multistart can tell); distinct ones are clustered.
2. Curvature: at each minimiser the Hessian of the follower's Lagrangian is
   projected on the null space of the strongly active constraints (the reduced
   Hessian). A zero eigenvalue means a flat direction; the point is moved along
   it to see whether the follower's value stays optimal (then Y*(x) is a continuum).
3. LP dual degeneracy: for a follower that is linear in y, the optimal face
   {y feasible : c^T y <= phi} is measured with 2 n_y LPs (HiGHS); positive
   width means alternative optima (a dual degenerate LP).

``singleton`` is False when two optima were exhibited, True when exactly one was
found with positive reduced curvature (``certain`` only for a provably convex
follower), and None when the evidence is inconclusive.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import casadi as ca
import numpy as np
from scipy.linalg import null_space
from scipy.optimize import linprog

from ..certify import follower_is_convex
from ..lower import lower
from ..reformulate.bilevel2mpcc import lagrangian
from ..solve import FollowerSolver, follower_starts

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class FollowerSetReport:
    """What is known about Y*(x): the distinct global minimisers found and the evidence."""

    leader_point: np.ndarray
    value: float                          # phi(x), the best follower value found
    minimizers: list[np.ndarray]          # distinct global minimisers found
    multipliers: list[np.ndarray]         # lam at each minimiser
    curvature: list[float]                # smallest reduced-Hessian eigenvalue at each minimiser
    flat_moves: list[np.ndarray]          # further optima found along zero-curvature directions
    lp_face_width: np.ndarray | None      # max - min of each y_i over the optimal face (LP follower)
    singleton: bool | None
    finite: bool                          # every minimiser isolated (positive curvature, no face)
    certain: bool
    reasons: list[str] = field(default_factory=list)
    value_scale: float = 1.0              # f-values are compared with tolerances times this

    def summary(self) -> str:
        word = {True: "a singleton", False: "NOT a singleton", None: "of unknown size"}[self.singleton]
        return f"Y*(x) at x = {np.round(self.leader_point, 6).tolist()} is {word}: " + "; ".join(self.reasons)

    def __repr__(self) -> str:
        return self.summary()


class FollowerSetProbe:
    """Compiled follower tools of one problem, reused over many leader points."""

    def __init__(self, problem: BilevelProblem, parameters: Mapping | None = None, n_starts: int = 10, seed: int = 0,
                 value_tol: float = 1e-9, dist_tol: float = 1e-5, curv_tol: float = 1e-7, lam_tol: float = 1e-9):
        self.problem, self.lp = problem, lower(problem)
        self.p = problem.parameter_vector(parameters)
        self.n_starts, self.seed = n_starts, seed
        self.value_tol, self.dist_tol, self.curv_tol, self.lam_tol = value_tol, dist_tol, curv_tol, lam_tol
        self.follower = FollowerSolver(self.lp, tight=True)
        lp = self.lp
        lam, mu = ca.SX.sym("lam", lp.g.numel()), ca.SX.sym("mu", lp.h.numel())
        L = lagrangian(lp, lam, mu)
        self.curv_fn = ca.Function("follower_curvature", [lp.x, lp.y, lp.p, lam, mu],
                                   [ca.hessian(L, lp.y)[0], ca.jacobian(lp.g, lp.y), ca.jacobian(lp.h, lp.y)])
        self.linear = bool(ca.is_linear(lp.f, lp.y) and (not lp.g.numel() or ca.is_linear(lp.g, lp.y))
                           and (not lp.h.numel() or ca.is_linear(lp.h, lp.y)))
        self.lin_fn = None if not self.linear else ca.Function("follower_linear_data", [lp.x, lp.p],
                                  [ca.gradient(lp.f, lp.y), ca.jacobian(lp.g, lp.y), ca.substitute(lp.g, lp.y, 0 * lp.y),
                                   ca.jacobian(lp.h, lp.y), ca.substitute(lp.h, lp.y, 0 * lp.y)])

    def _feasible(self, x: np.ndarray, y: np.ndarray, tol: float = 1e-7) -> bool:
        g = self.lp.evaluate("lower_ineq", x, y, self.p)
        h = self.lp.evaluate("lower_eq", x, y, self.p)
        return bool((g.size == 0 or g.min() >= -tol) and (h.size == 0 or np.abs(h).max() <= tol))

    def _f(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.lp.evaluate("lower_objective", x, y, self.p)[0])

    def _curvature(self, x, y, lam, mu) -> tuple[float, np.ndarray]:
        H, Jg, Jh = (np.asarray(a, float) for a in self.curv_fn(x, y, self.p, lam, mu))
        rows = [Jg[i] for i in range(Jg.shape[0]) if lam[i] > self.lam_tol] + [Jh[j] for j in range(Jh.shape[0])]
        Z = null_space(np.array(rows)) if rows else np.eye(self.lp.n_y)
        if Z.shape[1] == 0:
            return float("inf"), np.zeros((self.lp.n_y, 0))
        w, V = np.linalg.eigh(Z.T @ ((H + H.T) / 2) @ Z)
        return float(w[0]), Z @ V[:, w <= self.curv_tol * max(1.0, np.abs(w).max())]

    def _flat_moves(self, x, y, dirs, phi) -> list[np.ndarray]:
        found = []
        for d in dirs.T:
            for t in (1e-1, 1e-2, 1e-3):
                for s in (1, -1):
                    z = y + s * t * (1 + np.abs(y).max()) * d
                    if self._feasible(x, z) and self._f(x, z) <= phi + self.value_tol * (1 + abs(phi)):
                        found.append(z)
                        break
                if found:
                    return found
        return found

    def _lp_data(self, x: np.ndarray) -> tuple:
        c, Ag, g0, Ah, h0 = (np.asarray(a, float) for a in self.lin_fn(x, self.p))
        n = self.lp.n_y
        A_ub, b_ub = -Ag.reshape(-1, n), g0.reshape(-1)
        A_eq, b_eq = (Ah.reshape(-1, n), -h0.reshape(-1)) if Ah.size else (None, None)
        return c.reshape(-1), A_ub, b_ub, A_eq, b_eq, self._f(x, np.zeros(n))

    def _lp_probe(self, x: np.ndarray) -> FollowerSetReport:
        """Linear follower: HiGHS gives phi, a vertex, multipliers and the optimal face exactly."""
        c, A_ub, b_ub, A_eq, b_eq, f0 = self._lp_data(x)
        n = self.lp.n_y
        res = linprog(c, A_ub if A_ub.size else None, b_ub if A_ub.size else None, A_eq, b_eq,
                      bounds=(None, None), method="highs")
        if res.status != 0:
            why = {2: "infeasible", 3: "unbounded"}.get(res.status, res.message)
            return FollowerSetReport(x, float("nan"), [], [], [], [], None, None, False, False,
                                     [f"the follower LP is {why} at x"])
        y, phi = np.asarray(res.x, float), float(res.fun) + f0
        lam = -np.asarray(res.ineqlin.marginals, float) if A_ub.size else np.zeros(0)
        mu = np.asarray(res.eqlin.marginals, float) if A_eq is not None else np.zeros(0)
        scale = float(np.abs(c).sum() * (1 + np.abs(y).max()))
        A_face = np.vstack([A_ub.reshape(-1, n), c[None, :]])
        b_face = np.concatenate([b_ub, [res.fun + self.value_tol * scale]])
        width, mins = np.zeros(n), [y]
        for i in range(n):
            ends = [linprog(s * np.eye(n)[i], A_face, b_face, A_eq, b_eq, bounds=(None, None), method="highs")
                    for s in (1, -1)]
            if any(e.status == 3 for e in ends):
                width[i] = np.inf
            elif all(e.status == 0 for e in ends):
                width[i] = -ends[1].fun - ends[0].fun
                mins += [np.asarray(e.x, float) for e in ends
                         if all(np.linalg.norm(e.x - m) > self.dist_tol * (1 + np.linalg.norm(m)) for m in mins)]
        flat = bool(np.any(width > self.dist_tol))
        reasons = ([f"dual degenerate LP: the optimal face has width {np.round(width, 6).tolist()}"] if flat
                   else ["the follower LP has a unique optimal vertex (optimal face of zero width)"])
        return FollowerSetReport(x, phi, mins, [lam] * len(mins), [0.0 if flat else np.inf] * len(mins), [],
                                 width, not flat, not flat, True, reasons, value_scale=scale)

    def probe(self, x: Any, y_hint: Any = None) -> FollowerSetReport:
        """Evidence about Y*(x) (see module docstring)."""
        x = np.asarray(x, float).reshape(-1)
        lp = self.lp
        y0 = lp.y_start if y_hint is None else np.asarray(y_hint, float)
        if self.linear:
            return self._lp_probe(x)
        sols = self.follower.multistart(x, self.p, follower_starts(lp, y0, self.n_starts, self.seed))
        good = [s for s in sols if s.success and self._feasible(x, s.y)]
        if not good:
            return FollowerSetReport(x, float("nan"), [], [], [], [], None, None, False, False,
                                     ["no follower solve succeeded: the follower may be infeasible at x"])
        phi = min(s.value for s in good)
        opt = [s for s in good if s.value <= phi + self.value_tol * (1 + abs(phi))]
        mins, lams, mus = [], [], []
        for s in opt:
            if all(np.linalg.norm(s.y - m) > self.dist_tol * (1 + np.linalg.norm(m)) for m in mins):
                mins.append(s.y)
                lams.append(s.lam)
                mus.append(s.mu)
        curv, moves = [], []
        for y, lam, mu in zip(mins, lams, mus):
            k, dirs = self._curvature(x, y, lam, mu)
            curv.append(k)
            if dirs.shape[1]:
                moves += self._flat_moves(x, y, dirs, phi)
        width = None
        reasons = []
        if len(mins) > 1:
            reasons.append(f"{len(mins)} distinct global minimisers found by multistart, e.g. "
                           f"{np.round(mins[0], 6).tolist()} and {np.round(mins[1], 6).tolist()} (value {phi:.6g})")
        if moves:
            reasons.append(f"zero curvature of the reduced Hessian: moving to {np.round(moves[0], 6).tolist()} "
                           "keeps the follower optimal")
        flat = any(k <= self.curv_tol for k in curv)
        if reasons:
            singleton, certain = False, True
        elif flat:
            singleton, certain = None, False
            reasons.append("one minimiser found but the reduced Hessian has a zero eigenvalue (not isolated?)")
        else:
            convex = follower_is_convex(lp, x, self.p)
            singleton, certain = True, convex
            reasons.append("one minimiser with positive reduced curvature" +
                           (" of a convex follower" if convex else " (multistart evidence, not a proof)"))
        finite = not flat and not moves
        return FollowerSetReport(x, phi, mins, lams, curv, moves, width, singleton, finite, certain, reasons,
                                 value_scale=1 + abs(phi))


def follower_uniqueness(problem: BilevelProblem, leader_point: Any, parameters: Mapping | None = None,
                        n_starts: int = 10, seed: int = 0, **tolerances: float) -> FollowerSetReport:
    """Is Y*(x) a singleton at ``leader_point``? See module docstring.

    ``leader_point`` is a dict by symbol, a sequence, or a ``BilevelResult`` (its x and
    parameters are used), so ``follower_uniqueness(p, p.solve())`` checks a solution.
    """
    if hasattr(leader_point, "status") and hasattr(leader_point, "x"):
        if parameters is None and getattr(leader_point, "parameters", None) is not None:
            parameters = dict(zip(problem.parameter_symbols, leader_point.parameters))
        leader_point = leader_point.leader  # raises SolverFailure when the result has no point
    x = problem.point_vector(leader_point, "leader")
    return FollowerSetProbe(problem, parameters, n_starts, seed, **tolerances).probe(x)

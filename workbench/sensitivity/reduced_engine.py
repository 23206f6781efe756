"""The hypergradient route's follower side: which engine gives Φ(x) = F(x, y*(x)) and ∇Φ, and
the certificate of the final point.

* :func:`follower_engine` — the matrix engine (:class:`workbench.solve.smooth_follower.SmoothFollower`,
  unconstrained strictly convex vector followers, MX form only) or :class:`KKTFollower` (any
  follower the pipeline lowers: a tight Ipopt re-solve warm-started at the previous y, then the
  KKT sensitivity system of this stage; one-sided derivatives where the active set changes).
* :func:`strictly_convex_everywhere` — whether y*(x) is unique and smooth on the whole leader box
  (``method="auto"`` uses the route only then).
* :func:`certify_final` — the one call into the certificate stage, with the engine's own proof
  of convexity when it has one.

They live here, not in ``solve/``, because they use the sensitivity and certificate stages;
``solve/leader_descent.py`` only sees ``evaluate(x) -> Evaluation``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np
import scipy.sparse as sps

from ..errors import MethodError
from ..lower import LoweredProblem, lower, lower_matrix
from ..solve import box_from_constraints
from ..solve.smooth_follower import (Evaluation, LazyFollowerSolver, SmoothFollower, factor_pd,
                                     matrix_follower_solver, smooth_follower_applies)
from .response import follower_response, follower_solver
from .sensitivity import sensitivity

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


def follower_engine(problem: Problem, p: np.ndarray, follower: str = "auto") -> tuple[Any, LoweredProblem, str]:
    """(engine, lowered problem, "matrix" | "kkt") for ``follower`` = "auto" | "matrix" | "kkt".

    The matrix engine never needs the SX model: its leader rows, box and certificate read the MX
    form (``lower_matrix``); building the SX form of a dense data term is the expensive part.
    """
    applies = smooth_follower_applies(problem)
    if follower == "matrix" and not applies:
        raise MethodError("follower='matrix' needs a VectorBilevelProblem whose follower has no constraints; "
                          "use follower='kkt'")
    if applies and follower != "kkt":
        return SmoothFollower(problem, p), lower_matrix(problem), "matrix"
    return KKTFollower(problem, p), lower(problem), "kkt"


def strictly_convex_everywhere(problem: Problem) -> tuple[bool, str]:
    """Whether the follower is proven strictly convex at every point of the leader's box, and why.

    Proofs: the family's construction (``info["follower_convex_by_construction"]``), or a QP
    ½ yᵀQy + ½ Σ (E x)_i y_i² + ... with Q ≻ 0 (Cholesky) and diag(E x) ⪰ 0 on the box (E >= 0, x >= 0).
    """
    info = getattr(problem, "info", None)
    if isinstance(info, dict) and info.get("follower_convex_by_construction"):
        return True, f"follower strictly convex by construction ({info['follower_convex_by_construction']})"
    from ..model.vector_qp import _FollowerQP
    f = getattr(problem, "_f", None)
    if not isinstance(f, _FollowerQP):
        return False, "follower strict convexity is not proven for every leader point"
    lo, _ = box_from_constraints(lower_matrix(problem), "x")
    E = None if f.E is None else f.E.tocoo() if hasattr(f.E, "tocoo") else np.asarray(f.E)
    if E is not None and not (np.all(np.asarray(E.data if hasattr(E, "data") else E) >= 0) and np.all(lo >= 0)):
        return False, "diag(E x) may be negative on the leader's box: strict convexity not proven everywhere"
    try:
        factor_pd(sps.csc_matrix(f.Q))
    except MethodError:
        return False, "Q is not positive definite"
    return True, "follower QP with Q ≻ 0 (Cholesky) and diag(E x) ⪰ 0 on the box: strictly convex"


def certify_final(problem: Problem, lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                  lam: Any, engine: Any, n_random: int, gap_tol: float, feas_tol: float) -> Any:
    """The follower's optimality proven at the route's final x (the certificate stage).

    Convexity is proven by, cheapest first: the engine's factorisation of a stated constant
    Hessian (H ≻ 0 at x), the family's construction, or the certificate stage's own test (on
    the SX model, built on demand: its curvature analysis walks scalar graphs).
    With the matrix engine ``lp`` is the MX form: a convex follower's certificate needs only
    f, ∇_y f and (if the KKT residual does not check out) one re-solve, by Ipopt on the MX form
    (built only then). A follower not proven convex is certified on the SX model.
    """
    from .. import certify as cert
    info = getattr(problem, "info", None)
    declared = isinstance(info, dict) and bool(info.get("follower_convex_by_construction"))
    proven_at = getattr(engine, "hessian_proven_pd_at", None)
    proven = declared or (proven_at is not None and np.array_equal(proven_at, x))
    convex = proven or cert.follower_is_convex(lower(problem), x, p)
    follower = None
    if isinstance(engine, SmoothFollower) and convex:
        follower = LazyFollowerSolver(lambda: matrix_follower_solver(problem, lp))
    else:
        lp = lower(problem)
    return cert.certify(lp, x, y, p, lam, follower=follower, n_random=n_random, gap_tol=gap_tol,
                        feas_tol=feas_tol, follower_convex=convex, use_global=isinstance(lp.x, ca.SX))


class KKTFollower:
    """Tight Ipopt re-solve warm-started at the previous y, hypergradient from the KKT system."""

    def __init__(self, problem: Problem, p: np.ndarray):
        from ..lower import lower
        self.problem, self.p, self.lp = problem, np.asarray(p, float), lower(problem)
        self.y = np.asarray(self.lp.y_start, float).copy()
        self.last_grad: np.ndarray | None = None

    def evaluate(self, x: np.ndarray) -> Evaluation:
        x = np.asarray(x, float)
        fr = follower_response(self.problem, x, parameters=self.p, start=self.y)
        its = int(follower_solver(self.lp).solver.solver.stats().get("iter_count", 0))
        s = sensitivity(self.problem, x, parameters=self.p, response=fr)
        F = float(self.lp.evaluate("upper_objective", x, fr.y, self.p)[0])
        grad, kink, note, extra = kink_aware_gradient(s, self.last_grad)
        self.y, self.last_grad = fr.y.copy(), grad
        return Evaluation(x.copy(), F, grad, fr.y.copy(), fr.lam.copy(), its, kink, note, extra)


def kink_aware_gradient(s: Any, reference: np.ndarray | None) -> tuple[np.ndarray, bool, str, dict]:
    """∇Φ where it exists; at a kink a one-sided choice per coordinate, else the directional value.

    One-sided rule (g⁺ right, g⁻ left derivative along e_j): step right if g⁺_j < 0, left if
    g⁻_j > 0, else coordinate j is at a minimum of the kink (0). Along a direction d the
    directional derivative is dΦ·d, logged as ``directional``.
    """
    differentiable = bool(getattr(s, "differentiable", True))
    try:
        g = np.asarray(s.hypergradient, float).reshape(-1)
    except Exception as exc:  # noqa: BLE001 - the sensitivity stage's NotDifferentiable (being added)
        if type(exc).__name__ != "NotDifferentiable":
            raise
        g, differentiable = None, False
    if differentiable and g is not None and np.all(np.isfinite(g)):
        return g, False, "", {}
    extra: dict = {"sensitivity_status": getattr(s, "status", None)}
    one = None
    try:
        one = s.one_sided_hypergradient
    except Exception:  # noqa: BLE001 - not available at this kind of point
        one = None
    if one is not None:
        gp, gm = np.asarray(one["+"], float), np.asarray(one["-"], float)
        out = np.where(gp < 0, gp, np.where(gm > 0, gm, 0.0))
        return out, True, "one-sided derivatives (active set changes here)", extra
    fallback = np.nan_to_num(g) if g is not None else (np.zeros(s.lp.n_x) if reference is None else reference)
    if hasattr(s, "directional"):
        d = -(reference if reference is not None else fallback)
        try:
            val = s.directional(d)
            if isinstance(val, tuple):  # (dy, dlam): dΦ·d = F_x·d + F_y·dy
                Fx, Fy = s.upper_gradients()
                val = float(Fx @ d + Fy @ np.asarray(val[0]).reshape(-1))
            extra["directional"] = float(val)
        except Exception as exc:  # noqa: BLE001 - logged, the fallback gradient is used
            extra["directional_error"] = f"{type(exc).__name__}: {exc}"
    return fallback, True, "not differentiable here: the available hypergradient was used", extra



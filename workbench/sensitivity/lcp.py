"""The small monotone LCP both the directional QP and the active-set identification reduce to.

Find eta >= 0 with w = q + M eta >= 0 and eta' w = 0, where M = J_W Z J_W' is positive
semidefinite (Z: the primal block of the inverse KKT matrix of the rows kept as equalities,
positive semidefinite under the second-order condition). These are the optimality
conditions of the convex QP  min_eta 1/2 eta' M eta + q' eta, eta >= 0, which HiGHS solves
(through CasADi's ``conic``); the support it finds is then re-solved exactly (min-norm
least squares, since M is singular when the W rows are dependent).

Scaling: the LCP is homogeneous in (eta, q), and HiGHS's tolerances are absolute; with
q = O(1e-6) (a leader step of 1e-6 next to a kink) HiGHS can stop at its first vertex. So q
is handed over with unit size and eta scaled back.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..errors import MethodError
from .threads import per_thread


def _highs_qp(n: int) -> ca.Function:
    """HiGHS through CasADi's conic interface for min 1/2 e'Me + q'e, e >= 0 (dense, size n)."""
    return ca.conic("lcp_qp", "highs", {"h": ca.Sparsity.dense(n, n), "a": ca.Sparsity(0, n)},
                    {"highs": {"output_flag": False, "primal_feasibility_tolerance": 1e-10,
                               "dual_feasibility_tolerance": 1e-10}, "error_on_fail": False})


def solve_lcp(M: np.ndarray, q: np.ndarray, info: dict) -> np.ndarray:
    """eta >= 0 with w = q + M eta >= 0, eta'w = 0 (MethodError if HiGHS does not solve it)."""
    scale = max(1.0, float(np.max(np.abs(q), initial=0.0)), float(np.max(np.abs(M), initial=0.0)))
    if np.all(q >= 0):  # eta = 0 satisfies the optimality conditions exactly: nothing to solve
        info["qp"] = "eta = 0 optimal (every weakly active row is released or stays at 0)"
        return np.zeros(q.size)
    m = q.size
    solver = per_thread(solve_lcp, ("highs", m), lambda: _highs_qp(m))
    qs = float(np.max(np.abs(q)))
    res = solver(h=M, g=q / qs, lbx=np.zeros(m), ubx=np.full(m, np.inf))
    stats = solver.stats()
    eta = qs * np.maximum(np.asarray(res["x"]).reshape(-1), 0.0)
    info["qp"] = f"HiGHS: {stats.get('return_status')}"
    on = eta > 1e-9 * scale
    if on.any():
        e = np.zeros(m)
        e[on] = np.linalg.lstsq(M[np.ix_(on, on)], -q[on], rcond=None)[0]
        w = q + M @ e
        if np.all(e >= -1e-12 * scale) and np.all(w >= -1e-10 * scale) and np.all(np.abs(w[on]) <= 1e-10 * scale):
            eta = np.maximum(e, 0.0)
            info["qp"] += ", support re-solved exactly"
    w = q + M @ eta
    if not stats.get("success", False) or np.any(w < -1e-7 * scale) or abs(eta @ w) > 1e-7 * scale:
        raise MethodError(f"the directional QP was not solved (HiGHS: {stats.get('return_status')}, "
                          f"min slack {w.min():.2e}); the second-order conditions may fail at this point")
    return eta


__all__ = ["solve_lcp"]

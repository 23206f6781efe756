"""Candidates of a leader paid in shadow prices, valued over the multiplier set and checked.

A leader whose objective or constraints use follower multipliers (``wb.multiplier``) is judged on
them, so a candidate (x, y, lam, mu) from any route goes through :func:`price_candidate`:

1. the implemented point (x projected into the leader's simple bounds, y re-solved where needed);
2. the follower's certificate at it (``certify``: convexity + KKT residuals, or SCIP);
3. F's range over the follower's multiplier set M(x, y) (``multipliers.multiplier_range``, two HiGHS
   LPs when F is affine in the multipliers): the optimistic value min_M F, the pessimistic max_M F;
4. for an LP follower, F's range over its whole optimal face, every optimal reply y and every
   multiplier (``multipliers.face_range``: two HiGHS LPs, with F rewritten by strong duality when
   ``reformulate.price_strong_duality`` applies, so that it is affine there); when the face holds a
   better reply (optimistic) or a worse one (pessimistic) than the given y, the candidate moves to it;
5. the multipliers reported are checked to be multipliers of the follower at (x, y) (stationarity,
   sign, complementarity) and the multiplier-dependent leader rows are checked at them.

:func:`priced_result` turns valued candidates into the answer: ``unbounded`` when the leader can
drive F to -infinity through the multiplier set (or the optimal face) at a proven follower point,
else the best proven candidate (``optimal``) or the best unproven one (``not_certified``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MethodError
from ..reformulate.price_strong_duality import PriceStrongDuality
from ..result import BilevelResult
from ..status import SolverStats, Status
from .certificate import FEAS_TOL, KKT_TOL, certify
from .convexity import follower_is_convex
from .implement import implemented_point
from .multipliers import FaceRange, MultiplierRange, check_multipliers, face_range, multiplier_range

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


@dataclass
class Priced:
    """A candidate valued with its multipliers (minimisation sense)."""

    x: np.ndarray
    y: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    value: float
    certificate: Any
    range: MultiplierRange
    source: str
    ipopt_status: str = "Solve_Succeeded"
    face: FaceRange | None = None     # F over the LP follower's whole optimal face at x (y and multipliers)

    @property
    def ok(self) -> bool:
        return bool(self.certificate.passed) and np.isfinite(self.value)


def leader_infeasibility(lp, x, y, p, lam, mu) -> float:
    """Largest violation of the leader's constraints, multiplier-dependent rows included."""
    G = lp.evaluate("upper_ineq", x, y, p, lam, mu)
    H = lp.evaluate("upper_eq", x, y, p, lam, mu)
    return float(max(np.max(np.maximum(-G, 0.0), initial=0.0), np.max(np.abs(H), initial=0.0)))


def rewritten_objective(lp: Any, p: np.ndarray) -> Any:
    """F with its price x quantity terms rewritten by strong duality when that applies at p, else F
    (equal on the follower's KKT set; cached per lowered problem and parameter value)."""
    key = "price_rewrite_objective"
    p = np.asarray(p, float).reshape(-1)
    store = lp.cached(key, dict)
    k = p.tobytes()
    if k not in store:
        red = PriceStrongDuality(p)
        store[k] = red.apply(lp)[0].F if lp.multiplier_dependent and red.accepts(lp) else lp.F
    return store[k]


def _value_at(lp, view, follower, xp, y, lam, mu, p, pessimistic: bool, cert_opts: dict):
    """Certificate, multiplier range and value of (xp, y) with the multipliers chosen over M(xp, y)."""
    cert = certify(view, xp, y, p, lam, follower, mu=mu, follower_convex=follower_is_convex(view, xp, p), **cert_opts)
    if cert.lam is not None:  # multipliers that check out (a re-solve's when the given ones did not)
        lam, mu = cert.lam, cert.mu if cert.mu is not None else mu
    rng = multiplier_range(lp, xp, y, p)
    reasons = list(cert.reasons)
    ng = int(lp.g.numel())
    if rng.computed and rng.feasible:
        nu = rng.nu_high if pessimistic else rng.nu_low
        value = rng.high if pessimistic else rng.low
        if nu is not None:
            lam, mu = nu[:ng], nu[ng:]
    else:
        if pessimistic and not rng.computed:
            raise MethodError("formulation='pessimistic' with multipliers needs a leader objective and constraints "
                              f"affine in the multipliers (the worst multiplier is an LP): {rng.reason}")
        value = float(lp.evaluate("upper_objective", xp, y, p, lam, mu)[0]) if rng.feasible else np.inf
        if not rng.feasible:
            reasons.append(rng.reason)
    return cert, rng, float(value), np.asarray(lam, float), np.asarray(mu, float), reasons


def price_candidate(lp, view, follower, x, y, lam, mu, p, source: str, pessimistic: bool,
                    cert_opts: dict, ipopt_status: str = "Solve_Succeeded") -> Priced:
    """Implement the point, certify the follower's side, value F over the multiplier set (and, for an LP
    follower, over its whole optimal face: another optimal reply may be better for the optimistic leader,
    worse for the pessimistic one) and check the multipliers reported (see module docstring)."""
    xp, y, lam2, mu2, _ = implemented_point(view, follower, x, y, p, lam, mu)
    lam = lam2 if lam2 is not None else lam
    mu = mu2 if mu2 is not None else mu
    y = np.asarray(y, float)
    cert, rng, value, lam, mu, reasons = _value_at(lp, view, follower, xp, y, lam, mu, p, pessimistic, cert_opts)
    face = face_range(lp, xp, p, rewritten_objective(lp, p)) if lp.multiplier_dependent else None
    if face is not None and face.computed and np.isfinite(value):
        ny, ng = lp.n_y, int(lp.g.numel())
        z, target = (face.z_high, face.high) if pessimistic else (face.z_low, face.low)
        tol = 1e-9 * (1 + abs(value))
        if np.isfinite(target) and z is not None and (target > value + tol if pessimistic else target < value - tol):
            y2, lam_z, mu_z = z[:ny], z[ny:ny + ng], z[ny + ng:]
            if leader_infeasibility(lp, xp, y2, p, lam_z, mu_z) <= cert_opts.get("feas_tol", FEAS_TOL):
                y = y2
                cert, rng, value, lam, mu, reasons = _value_at(lp, view, follower, xp, y, lam_z, mu_z, p, pessimistic,
                                                               cert_opts)
        elif pessimistic and target == np.inf:
            value = np.inf
    res = check_multipliers(view, xp, y, p, lam, mu)
    extra = []
    if not res.holds(KKT_TOL):
        extra.append(f"the reported multipliers are not multipliers of the follower at this point (stationarity "
                     f"{res.stationarity:.3g}, sign {res.sign:.3g}, complementarity {res.complementarity:.3g})")
    feas_tol = cert_opts.get("feas_tol", FEAS_TOL)
    upper_inf = max(cert.upper_infeasibility, leader_infeasibility(lp, xp, y, p, lam, mu)) if rng.feasible else np.inf
    if upper_inf > feas_tol and cert.upper_infeasibility <= feas_tol:
        extra.append(f"leader constraints on multipliers violated by {upper_inf:.3g} (absolute tolerance {feas_tol:g})")
    cert = replace(cert, passed=bool(cert.passed and not extra), reasons=tuple(reasons + extra), lam=lam, mu=mu,
                   upper_infeasibility=float(upper_inf), stationarity=res.stationarity, sign=res.sign,
                   complementarity=res.complementarity)
    return Priced(xp, y, lam, mu, float(value), cert, rng, source, ipopt_status, face)


def user_sense(problem: Problem, v: float) -> float:
    """A minimisation-sense value in the user's sense."""
    return -v if problem.upper_sense == "max" else v


def multiplier_info(problem: Problem, lp: Any, c: Priced) -> dict:
    """What r.info["multipliers"] says about the chosen point's multiplier set."""
    rng = c.range
    names = [str(n) for n in lp.g_names] + [str(n) for n in lp.h_names]
    used = sorted({str(s.constraint) for s in problem.multiplier_symbols})
    out = {"licq": bool(rng.licq), "unique": bool(rng.unique), "used": used, "computed": rng.computed}
    if rng.computed and rng.feasible:
        best, worst = user_sense(problem, rng.low), user_sense(problem, rng.high)
        out.update(optimistic=best, pessimistic=worst,
                   F_range=(min(best, worst), max(best, worst)))
        if not rng.unique:
            spread = {}
            if rng.nu_low is not None and rng.nu_high is not None:
                spread = {names[i]: (float(min(a, b)), float(max(a, b))) for i, (a, b)
                          in enumerate(zip(rng.nu_low, rng.nu_high)) if abs(a - b) > 1e-9 * (1 + abs(a))}
            out["note"] = (f"LICQ fails at the solution, so the follower's multipliers are not unique and F depends on "
                           f"them: over the multiplier set the leader's objective ranges over "
                           f"[{out['F_range'][0]:.10g}, {out['F_range'][1]:.10g}] (optimistic {best:.10g}, "
                           f"pessimistic {worst:.10g})" + (f"; multipliers that differ: {spread}" if spread else ""))
    elif not rng.computed:
        out["note"] = rng.reason + (" (LICQ fails: the multipliers may not be unique)" if not rng.licq else "")
    face = c.face
    if face is not None and face.computed:
        lo, hi = user_sense(problem, face.low), user_sense(problem, face.high)
        out["follower_face"] = {"unique_y": face.unique_y, "F_range": (min(lo, hi), max(lo, hi)),
                                "optimistic": lo, "pessimistic": hi}
        if not face.unique_y:
            out["follower_face"]["note"] = (
                "the follower's reply y is not unique at the solution (its LP has an optimal face): over every "
                f"optimal reply and every multiplier the leader's objective ranges over [{min(lo, hi):.10g}, "
                f"{max(lo, hi):.10g}] (optimistic {lo:.10g}, pessimistic {hi:.10g}; two HiGHS LPs)")
    elif face is not None:
        out["follower_face"] = {"computed": False, "note": face.reason}
    return out


def priced_result(problem: Problem, lp: Any, p: np.ndarray, pool: list[Priced], rows: list, relaxation: str | None,
                  elapsed: float, pessimistic: bool, statuses: dict | None = None, method: str = "kkt",
                  extra_info: dict | None = None, optimality: str = "local",
                  stats: SolverStats | None = None) -> BilevelResult:
    """The answer from the valued candidates: unbounded through the multiplier set, the best proven
    point, or the best unproven one."""
    base = dict(problem=problem, method=method, parameters=p, log=rows, relaxation=relaxation, time_s=elapsed)
    info = {"formulation": "pessimistic" if pessimistic else "optimistic", **(extra_info or {}),
            "candidates": [(c.source, c.x.tolist(), user_sense(problem, c.value), bool(c.certificate.passed)) for c in pool]}
    stats = stats or SolverStats("ipopt", max(statuses, key=statuses.get) if statuses else "Solve_Succeeded")
    if not pool:
        return BilevelResult(status=Status.SOLVER_FAILED, solver_stats=stats, info=info,
                             message=f"no leader point gave a follower reply (statuses {statuses})", **base)
    follower_ok = [c for c in pool if c.certificate.proof in ("convex", "global") and not c.certificate.follower_unbounded]
    if not pessimistic:
        drop = [c for c in follower_ok if (c.range.computed and c.range.feasible and c.range.low == -np.inf)
                or (c.face is not None and c.face.computed and c.face.low == -np.inf)]
        if drop:
            c = drop[0]
            info["multipliers"] = multiplier_info(problem, lp, c)
            info["unbounded_at"] = {"x": c.x.tolist(), "y": c.y.tolist()}
            sign = "+" if problem.upper_sense == "max" else "-"
            at = np.round(c.x, 10).tolist()
            by_nu = c.range.computed and c.range.feasible and c.range.low == -np.inf
            return BilevelResult(status=Status.UNBOUNDED, solver_stats=stats, info=info, message=(
                f"the follower's multipliers are not unique at x = {at} (LICQ fails) and the leader's objective is "
                f"unbounded over the multiplier set: choosing the multiplier alone drives F to {sign}infinity (the "
                "KKT reformulation's pitfall; state each constraint once, or use formulation='pessimistic')"
                if by_nu else
                f"the follower's optimal replies are not unique at x = {at} and the leader's objective is unbounded "
                f"over them and their multipliers (an LP over the follower's optimal face): the optimistic leader "
                f"drives F to {sign}infinity by the choice among the follower's optima; use "
                "formulation='pessimistic'"), **base)
    proven = [c for c in pool if c.ok]
    best = min(proven or pool, key=lambda c: (not np.isfinite(c.value), c.value))
    status = Status.OPTIMAL if proven else Status.NOT_CERTIFIED
    info["multipliers"] = multiplier_info(problem, lp, best)
    info["proof"] = best.certificate.proof
    message = "" if proven else "; ".join(best.certificate.reasons)
    if pessimistic:
        info["note"] = ("pessimistic: each leader point is valued with the worst multiplier in the follower's multiplier "
                        "set (an LP) and, for an LP follower, the worst optimal reply y with its worst multiplier (an LP "
                        "over the follower's optimal face); otherwise y is the follower's own optimum")
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         solver_stats=stats, optimality=optimality if proven else "local", message=message,
                         info=info, **base)



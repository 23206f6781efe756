"""Explain in words what can be wrong with a bilevel point: the KKT pitfalls, made visible.

Given a result (or a point), the diagnosis

1. re-solves the follower at x from many starts and says whether the returned y
   is its best reply, and if not which follower point is better and by how much,
   and what the leader's value would be there;
2. classifies y for the follower: global minimiser (as far as the multistart
   sees), a local-but-not-global minimiser, a stationary point that is no local
   minimiser (saddle / maximiser: negative curvature), or not a KKT point at all;
3. reports the follower's convexity in y (a nonconvex follower is why KKT points
   can be spurious) and the constraint qualifications at y.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..certify import certify
from ..lower import lower
from ..solve import FollowerSolver
from .cq import CQReport, constraint_qualification
from .follower_convexity import FollowerConvexity, follower_convexity_report

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class Diagnosis:
    """Structured findings; ``text`` / ``str()`` say them in words."""

    x: np.ndarray
    y: np.ndarray
    follower_value: float
    best_y: np.ndarray
    best_follower_value: float
    gap: float                      # f(x, y) - best follower value found (>= 0)
    spurious: bool                  # the follower can do strictly better than y
    classification: str
    leader_value: float
    leader_value_at_best: float
    convexity: FollowerConvexity
    cq: CQReport
    certificate: Any
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        head = "**Diagnosis: spurious follower response**" if self.spurious else "**Diagnosis**"
        return head + "\n\n" + "\n".join(f"- {s}" for s in self.lines)


def _point(problem: BilevelProblem, result: Any, point: Mapping | None) -> tuple[np.ndarray, np.ndarray, Any]:
    if point is not None:
        leader = {s: v for s, v in point.items() if s in problem.leader}
        follower = {s: v for s, v in point.items() if s in problem.follower}
        return problem.point_vector(leader, "leader"), problem.point_vector(follower, "follower"), None
    if result is None:
        from ..errors import ValueInputError
        raise ValueInputError("diagnose needs a result (p.diagnose(r)) or a point (p.diagnose(point={x: 0, y: 0}))")
    result._point()  # raises SolverFailure when the result holds no point
    return np.asarray(result.x, float), np.asarray(result.y, float), result.parameters


def _classify(lp: Any, fs: FollowerSolver, x, y, p, gap: float, tol: float, cq: CQReport, cert_ok: bool) -> str:
    """Global / local-not-global / stationary-not-minimiser / not KKT."""
    if cq.multiplier_set_empty:
        return "not a KKT point of the follower"
    if cq.sosc is False and cq.reduced_hessian_min_eig is not None and cq.reduced_hessian_min_eig < -tol:
        return "a stationary (KKT) point with negative curvature: a saddle or maximiser of the follower"
    local = fs.solve(x, p, y)  # a local solve started at y stays at y iff y is a local minimiser
    stays = local.success and np.linalg.norm(local.y - y) <= 1e-5 * (1 + np.linalg.norm(y))
    if gap <= tol and cert_ok:
        return "the follower's global minimiser (as far as the multistart re-solve sees)"
    if gap <= tol:
        return "a KKT point of the follower whose optimality the re-solve could not check"
    if stays or cq.sosc:
        return "a local minimiser of the follower that is not global"
    return "a stationary (KKT) point of the follower that is not a minimiser"


def diagnose(problem: BilevelProblem, result: Any = None, point: Mapping | None = None, parameters: Mapping | None = None,
             n_starts: int = 24, seed: int = 0, tol: float = 1e-7) -> Diagnosis:
    """What the certificate found at a result (or point), in words, with the evidence as fields."""
    lp = lower(problem)
    x, y, p_res = _point(problem, result, point)
    p = problem.parameter_vector(parameters) if (parameters is not None or p_res is None) else np.asarray(p_res, float)
    fs = FollowerSolver(lp, tight=True)
    cert = certify(lp, x, y, p, None, fs, n_random=n_starts, gap_tol=tol, seed=seed)
    f_y = cert.follower_value
    best_y = cert.better_y if cert.better_y is not None else y
    best = cert.phi if cert.better_y is not None else f_y
    gap = max(f_y - best, 0.0)
    F_y = float(lp.evaluate("upper_objective", x, y, p)[0])
    F_best = float(lp.evaluate("upper_objective", x, best_y, p)[0])
    conv = follower_convexity_report(problem, parameters={s: v for s, v in zip(problem.parameter_symbols, p)})
    pvals = {s: float(v) for s, v in zip(problem.parameter_symbols, p)}
    cq = constraint_qualification(problem, x, parameters=pvals, follower_point=y)
    spurious = cert.better_y is not None
    checked = cert.starts_succeeded > 0 or cert.proof in ("convex", "global")
    cls = _classify(lp, fs, x, y, p, gap, tol * (1 + abs(f_y)), cq, checked)
    r6 = lambda v: (np.round(np.asarray(v, float), 6) + 0.0).tolist()  # noqa: E731
    sgn = -1 if problem.upper_sense == "max" else 1
    F_y, F_best = (v if abs(v) > 1e-12 else 0.0 for v in (F_y, F_best))
    lines = [f"At the leader's x = {r6(x)}, the follower point y = {r6(y)} has follower value "
             f"f = {f_y:.6g} (minimisation sense) and is {cls}."]
    if spurious:
        why = ("the KKT conditions accepted a spurious follower response." if not cq.multiplier_set_empty else
               "y does not even satisfy the follower's KKT conditions.")
        lines.append(f"The follower point y = {r6(best_y)} is better: f = {best:.6g}, lower by {gap:.6g}. A rational "
                     f"follower would not choose the returned y, so the point is NOT bilevel feasible: {why}")
        lines.append(f"The leader's objective is {sgn * F_y:.6g} at the returned point but {sgn * F_best:.6g} at "
                     f"(x, better y); the reported leader value is not achievable at this x.")
    elif cert.proof in ("convex", "global"):
        lines.append("Follower optimality is proven (" + ("convexity and checked KKT residuals" if cert.proof == "convex"
                     else f"SCIP's global lower bound {cert.phi_lower:.10g}") + ").")
    elif cert.starts_succeeded == 0:
        lines.append(f"No follower re-solve succeeded (0/{cert.starts_used} starts): the follower's optimality at "
                     "this x is unverified, not confirmed.")
    else:
        lines.append("No better follower point was found by the multistart re-solve "
                     f"({cert.starts_succeeded}/{cert.starts_used} starts succeeded).")
    if cert.lower_infeasibility > tol or cert.upper_infeasibility > tol:
        lines.append(f"Feasibility: follower constraints violated by {cert.lower_infeasibility:.3g}, leader "
                     f"constraints by {cert.upper_infeasibility:.3g}.")
    lines.append(conv.text.splitlines()[0] + ("" if conv.verdict == "convex" else " " + " ".join(conv.evidence[-1:])))
    cq_bits = [f"LICQ {'holds' if cq.licq else 'fails'}", f"MFCQ {'holds' if cq.mfcq else 'fails'}",
               "multipliers " + ("unique" if cq.multipliers_unique else
                                 "empty (not KKT)" if cq.multiplier_set_empty else
                                 f"not unique (set of dimension {cq.multiplier_set_dimension})")]
    if cq.sosc is not None:
        cq_bits.append(f"SOSC {'holds' if cq.sosc else 'fails'}")
    lines.append("At y: " + ", ".join(cq_bits) + ".")
    return Diagnosis(x=x, y=y, follower_value=f_y, best_y=np.asarray(best_y, float), best_follower_value=float(best),
                     gap=float(gap), spurious=spurious, classification=cls, leader_value=sgn * F_y,
                     leader_value_at_best=sgn * F_best, convexity=conv, cq=cq, certificate=cert, lines=lines)


class _CallableModule(types.ModuleType):
    """The package resolves ``analysis.diagnose`` lazily; once this module is imported, the import
    system binds the *module* under that name, so ``from workbench.analysis import diagnose`` can
    return the module. Calling it then calls the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Diagnosis:
        return diagnose(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

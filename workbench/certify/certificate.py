"""Certificate of a candidate bilevel point: is y* provably the follower's best reply at x*?

``proof`` says how follower optimality at the leader's x* was established:

* ``"convex"`` — the follower is proven convex in y at x* (``follower_is_convex``: f convex
  quadratic, g concave, h affine) **and** the multipliers satisfy stationarity, sign and
  complementarity (``residuals.kkt_residuals``, each residual reported). Then y* is a
  global minimiser (the inequality in ``residuals``' docstring).
* ``"global"`` — SCIP's spatial branch-and-bound at the fixed x* gives a dual bound
  phi_lb with f(x*, y*) - phi_lb <= gap_tol (1 + |f|) (``global_follower``).
* ``"sampled"`` — only multistart evidence: the follower re-solved from many starts found
  nothing better. That is not a proof, so ``passed`` is False.

``passed`` also needs both levels feasible with *absolute* tolerances and the leader inside
its simple bounds exactly. Certificates are frozen: a later check issues a new one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lower import LoweredProblem
from ..printing import LatexPrintable, aligned, number, text
from ..solve import FollowerSolver, box_from_constraints
from ..solve.starts import follower_starts
from .convexity import follower_is_convex
from .residuals import KKTResiduals, infeasibility, kkt_residuals, leader_bound_violation

GAP_TOL = 1e-9      # follower value gap, relative to 1 + |f(x*, y*)|
FEAS_TOL = 1e-7     # absolute, per constraint
KKT_TOL = 1e-7      # stationarity relative to 1 + max|grad_y f|; sign absolute
TIE_TOL = 1e-6      # a strictly better follower reply worsening F by more than this refutes the point
EXACT_EVAL_TOL = 1e-9


@dataclass(frozen=True)
class Certificate(LatexPrintable):
    """Evidence that (x*, y*) is bilevel feasible with y* follower-optimal (see module docstring)."""

    passed: bool
    proof: str                       # "convex", "global", "sampled" or "none"
    value_gap: float                 # f(x*, y*) - (best lower bound or best value found); > tol: not optimal
    follower_value: float            # f(x*, y*) (minimisation sense)
    phi: float                       # best follower value found at x*
    better_y: np.ndarray | None      # a strictly better follower reply, when one was found
    lower_infeasibility: float       # absolute
    upper_infeasibility: float       # absolute
    leader_bound_violation: float    # distance of x* outside the leader's simple bounds
    complementarity: float
    stationarity: float | None
    sign: float | None
    starts_used: int
    starts_succeeded: int
    follower_convex: bool
    phi_lower: float | None = None   # a valid lower bound on min_y f(x*, y) (global proof)
    lam: np.ndarray | None = None    # the multipliers the residuals were checked with
    mu: np.ndarray | None = None
    tolerance: dict = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    follower_unbounded: bool = False           # a re-solve diverged: no follower optimum at x
    follower_solver_status: str | None = None  # the solver's status of that re-solve
    assumed_box: tuple = ()                    # follower variables whose bound SCIP had to assume

    def summary(self) -> str:
        verdict = f"passed (proof {self.proof})" if self.passed else "FAILED: " + "; ".join(self.reasons)
        return (f"certificate {verdict} (gap {self.value_gap:.3g}, lower infeas {self.lower_infeasibility:.2g}, "
                f"upper infeas {self.upper_infeasibility:.2g}, {self.starts_succeeded}/{self.starts_used} follower starts)")

    def _latex(self, printer) -> str:
        verdict = r"\text{passed}" if self.passed else r"\text{failed}"
        lines = [r"\text{certificate} &: " + verdict,
                 r"f(x^*, y^*) - \varphi(x^*) &= " + number(self.value_gap)
                 + r" \quad (\varphi(x^*) = " + number(self.phi) + ")",
                 r"\text{follower infeasibility} &= " + number(self.lower_infeasibility),
                 r"\text{leader infeasibility} &= " + number(self.upper_infeasibility),
                 r"\max_i |\min(g_i, \lambda_i)| &= " + number(self.complementarity),
                 r"\text{follower re-solves} &: " + f"{self.starts_succeeded}/{self.starts_used}"
                 + (r" \; \text{(follower convex)}" if self.follower_convex else "")]
        lines += [r"& " + text("reason: " + r) for r in self.reasons]
        return aligned(lines)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("better_y", "lam", "mu"):
            d[k] = None if d[k] is None else np.asarray(d[k]).tolist()
        d["reasons"], d["notes"] = list(self.reasons), list(self.notes)
        return d


def leader_box(lp: LoweredProblem) -> tuple[np.ndarray, np.ndarray]:
    """The leader's simple bounds (read once per lowered problem)."""
    key = "leader_box"
    lo, hi = lp.cached(key, lambda: box_from_constraints(lp, "x"))
    return lo.copy(), hi.copy()


def _global_proof(lp: LoweredProblem, x, y, p, f_star: float, tol: float, time_limit: float, seed: int):
    """SCIP's verdict on min_y f(x, y) at the fixed x, or None when SCIP cannot be used here."""
    try:
        from .global_follower import prove_follower_optimal
    except ImportError:  # the SCIP back end is optional until it lands
        return None
    return prove_follower_optimal(lp, x, y, p, tol=tol, time_limit=time_limit, seed=seed)


def _counts(gain: float, v_other: float, v_here: float, tol: float, f_star: float) -> bool:
    """Whether a competing follower reply refutes y: better by more than the gap tolerance, and not
    merely by violating the constraints more than y does. Where the feasible set is nearly one point,
    a violation v lets the follower move by about sqrt(v) (Dempe1992b, DesignCentringP2), so extra
    violation dv discounts a gain below 1e3 sqrt(dv) (1 + |f|): such a reply neither refutes y nor
    proves it (the competitor is judged at y's own violation, not with an added slack)."""
    if not gain > tol:
        return False
    extra = max(float(v_other) - float(v_here), 0.0)
    return extra <= 0.0 or gain > 1e3 * np.sqrt(extra) * (1 + abs(f_star))


def _tie_exploited(lp: LoweredProblem, follower: FollowerSolver, x, y, p, f_star: float, y_other):
    """A distinct follower reply that is strictly better (beyond rounding) but inside the gap tolerance,
    and worse for the leader: the follower prefers it, so the leader cannot count on y.

    Returns ``(y_other, f(y_other), note)`` or None. y_other is polished by a local follower solve
    first, so its value is exact to rounding; "distinct" means a different basin (|dy| > 1e-3 (1 + |y|)),
    and "strictly better" means by more than 4 eps (1 + |f|) — floating-point noise, not a tolerance.
    """
    fs = follower.solve(x, p, y_other)
    if fs.success and infeasibility(lp, x, fs.y, p, "lower") <= EXACT_EVAL_TOL:
        y_other = fs.y
    if np.max(np.abs(y_other - y)) <= 1e-3 * (1 + np.max(np.abs(y))):
        return None
    f_other = float(lp.evaluate("lower_objective", x, y_other, p)[0])
    if not f_other < f_star - 4 * np.finfo(float).eps * (1 + abs(f_star)):
        return None
    F_here = float(lp.evaluate("upper_objective", x, y, p)[0])
    F_other = float(lp.evaluate("upper_objective", x, y_other, p)[0])
    if F_other <= F_here + TIE_TOL * (1 + abs(F_here)):
        return None
    return y_other, f_other, (f"a follower reply better by only {f_star - f_other:.3g} (inside the gap tolerance) "
                              f"gives F = {F_other:.10g} instead of {F_here:.10g}: the follower prefers it, so "
                              "the tolerance is not counted as leader gain")


def certify(lp: LoweredProblem, x: np.ndarray, y: np.ndarray, p: np.ndarray,
            lam: np.ndarray | None = None, follower: FollowerSolver | None = None, *,
            mu: np.ndarray | None = None, n_random: int = 8, gap_tol: float = GAP_TOL,
            feas_tol: float = FEAS_TOL, kkt_tol: float = KKT_TOL, seed: int = 0,
            follower_convex: bool | None = None, grid: int = 0, use_global: bool = True,
            global_time: float = 10.0, screen: int = 2) -> Certificate:
    """Prove (or refute) that y is the follower's best reply at x (see module docstring).

    Order: the convexity proof (no solve when the given multipliers check out, else one
    re-solve from y for multipliers), then a screen of ``screen`` random local re-solves (plus
    y, the declared start, zero and the box centre) that refutes most spurious points cheaply,
    then SCIP's global proof, then multistart evidence.
    A strictly better reply found on the way is returned in ``better_y``.
    """
    follower = follower or FollowerSolver(lp, tight=True)
    x, y, p = (np.asarray(v, float).reshape(-1) for v in (x, y, p))
    f_star = float(lp.evaluate("lower_objective", x, y, p)[0])
    lower_inf = infeasibility(lp, x, y, p, "lower")
    upper_inf = infeasibility(lp, x, y, p, "upper")
    lo, hi = leader_box(lp)
    bound_viol = leader_bound_violation(x, lo, hi)
    if follower_convex is None:
        follower_convex = follower_is_convex(lp, x, p)
    tol_f = gap_tol * (1.0 + abs(f_star))
    reasons: list[str] = []
    notes: list[str] = []
    proof, phi, phi_lower, gap, better_y = "none", np.nan, None, np.nan, None
    unbounded, solver_status, assumed = False, None, ()
    starts_used = starts_ok = 0
    res: KKTResiduals = kkt_residuals(lp, x, y, p, lam, mu)
    lam_used, mu_used = lam, mu

    if follower_convex:
        if not res.holds(kkt_tol):  # the given multipliers do not check out: one re-solve from y
            fs = follower.solve(x, p, y)
            starts_used = 1
            if fs.status == "unbounded":
                unbounded, solver_status = True, fs.ipopt_status
            elif fs.success and infeasibility(lp, x, fs.y, p, "lower") <= feas_tol:
                starts_ok = 1
                phi = fs.value
                if _counts(f_star - fs.value, infeasibility(lp, x, fs.y, p, "lower"), lower_inf, tol_f, f_star):
                    better_y, gap = fs.y, f_star - fs.value
                else:
                    res2 = kkt_residuals(lp, x, y, p, fs.lam, fs.mu)
                    if res2.holds(kkt_tol) or res2.stationarity < res.stationarity:
                        res, lam_used, mu_used = res2, fs.lam, fs.mu
        if better_y is None and not unbounded and res.holds(kkt_tol) and lower_inf <= feas_tol:
            proof, gap = "convex", 0.0
            phi = f_star if not np.isfinite(phi) else min(phi, f_star)
        elif better_y is None and not unbounded:
            notes.append(f"follower convex but its KKT conditions do not check out at y (stationarity "
                         f"{res.stationarity:.3g}, sign {res.sign:.3g}, complementarity {res.complementarity:.3g}; "
                         "a constraint qualification may fail)")

    if proof == "none" and better_y is None and not unbounded and use_global and screen > 0:
        # A few local re-solves first: most spurious KKT points are refuted by them in milliseconds,
        # and a global solve is only needed for the points they cannot refute.
        starts = follower_starts(lp, y, screen, seed)
        sols = follower.multistart(x, p, starts)
        starts_used += len(starts)
        good = [s for s in sols if s.success and infeasibility(lp, x, s.y, p, "lower") <= feas_tol]
        starts_ok += len(good)
        if any(s.status == "unbounded" for s in sols):
            unbounded = True
            solver_status = next(s.ipopt_status for s in sols if s.status == "unbounded")
        elif good:
            top = min(good, key=lambda s: s.value)
            if _counts(f_star - top.value, infeasibility(lp, x, top.y, p, "lower"), lower_inf, tol_f, f_star):
                better_y, gap, phi = top.y, f_star - top.value, top.value

    if proof == "none" and better_y is None and not unbounded and use_global:
        gp = _global_proof(lp, x, y, p, f_star, tol_f, global_time, seed)
        if gp is not None:
            scip = gp.result
            assumed = tuple(scip.assumed)
            if gp.passed:
                proof, phi_lower, gap = "global", gp.phi_lower, max(f_star - gp.phi_lower, 0.0)
                phi = min(f_star, scip.phi_upper) if np.isfinite(scip.phi_upper) else f_star
            elif gp.better_y is not None and _counts(f_star - scip.phi_upper, scip.violation, lower_inf, tol_f, f_star):
                better_y, phi, phi_lower = gp.better_y, scip.phi_upper, gp.phi_lower
                gap = f_star - scip.phi_upper
            elif scip.status == "unbounded":
                unbounded, solver_status = True, f"SCIP: {scip.message}"
            else:
                notes.append(f"no global follower proof: {gp.reason}")
            if proof == "global" and scip.y is not None:
                tie = _tie_exploited(lp, follower, x, y, p, f_star, scip.y)
                if tie is not None:  # never trade tolerance for leader gain
                    proof, better_y, phi = "none", tie[0], tie[1]
                    gap = f_star - tie[1]
                    notes.append(tie[2])

    if proof == "none" and better_y is None and not unbounded:
        starts = follower_starts(lp, y, n_random, seed, grid)
        sols = follower.multistart(x, p, starts)
        starts_used += len(starts)
        good = [s for s in sols if s.success and infeasibility(lp, x, s.y, p, "lower") <= feas_tol]
        starts_ok += len(good)
        diverged = [s for s in sols if s.status == "unbounded" or (np.isfinite(s.value) and s.value < -1e12
                    and infeasibility(lp, x, s.y, p, "lower") <= feas_tol)]
        if diverged:
            unbounded, solver_status = True, diverged[0].ipopt_status
        elif not good:
            reasons.append("no follower re-solve succeeded: follower optimality unverified")
        else:
            top = min(good, key=lambda s: s.value)
            phi = top.value
            if _counts(f_star - phi, infeasibility(lp, x, top.y, p, "lower"), lower_inf, tol_f, f_star):
                better_y, gap = top.y, f_star - phi
            else:
                proof, gap = "sampled", max(f_star - phi, 0.0)
                reasons.append(f"follower optimality only sampled ({len(good)} follower re-solves found nothing "
                               f"better, best gap {gap:.3g}); neither convexity nor a global bound proves it")

    if lower_inf > feas_tol:
        reasons.insert(0, f"follower constraints violated by {lower_inf:.3g} (absolute tolerance {feas_tol:g})")
    if upper_inf > feas_tol:
        reasons.insert(0, f"leader constraints violated by {upper_inf:.3g} (absolute tolerance {feas_tol:g})")
    if bound_viol > 0.0:
        reasons.insert(0, f"the leader point lies outside its simple bounds by {bound_viol:.3g}")
    if unbounded:
        reasons.append(f"the follower appears unbounded below at this x ({solver_status}): "
                       "no follower-optimal response exists")
        gap = np.inf
    if better_y is not None:
        reasons.append(f"the follower can do better by {gap:.3g} (y = {np.round(better_y, 6).tolist()})")
    comp = res.complementarity if np.isfinite(res.complementarity) else float("nan")
    return Certificate(
        passed=proof in ("convex", "global") and not reasons, proof=proof,
        value_gap=float(gap) if not np.isnan(gap) else float("nan"), follower_value=f_star, phi=float(phi),
        better_y=None if better_y is None else np.asarray(better_y, float),
        lower_infeasibility=lower_inf, upper_infeasibility=upper_inf, leader_bound_violation=bound_viol,
        complementarity=comp, stationarity=res.stationarity, sign=res.sign,
        starts_used=starts_used, starts_succeeded=starts_ok, follower_convex=bool(follower_convex),
        phi_lower=phi_lower, lam=None if lam_used is None else np.asarray(lam_used, float),
        mu=None if mu_used is None else np.asarray(mu_used, float),
        tolerance={"gap": gap_tol, "gap_relative_to": "1 + |f(x*, y*)|", "feasibility": feas_tol,
                   "feasibility_kind": "absolute", "kkt": kkt_tol},
        reasons=tuple(reasons), notes=tuple(notes), follower_unbounded=unbounded,
        follower_solver_status=solver_status, assumed_box=assumed,
    )

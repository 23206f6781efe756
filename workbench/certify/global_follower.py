"""Global follower solves and proofs with SCIP's spatial branch-and-bound.

At a fixed leader point x (and parameters p) the follower's problem

    phi(x) = min_y f(x, y)  s.t.  g(x, y) >= 0,  h(x, y) = 0

is solved globally by SCIP: branch-and-bound over a box of y with convex relaxations of
every nonlinear term, so SCIP's *dual bound* phi_lower satisfies phi_lower <= f(x, y') for
every feasible y' in the box (up to SCIP's floating-point tolerances; SCIP is not an exact
solver). A candidate reply y is then *proven* follower-optimal when

    f(x, y) - phi_lower <= tol        (absolute tol, default 1e-9 * (1 + |f(x, y)|)),

which needs no gap closure: a time limit with a dual bound already above f(x, y) - tol is a proof.

The box. Spatial B&B needs finite bounds on every y in a nonconvex term, and the dual bound
is valid only inside the box, so the box must contain the whole feasible set:
  (a) rows of g/h that at the fixed x are affine in ONE y_i give simple bounds exactly;
  (b) all rows that are affine in y at the fixed x form a polyhedron P ⊇ feasible set; min and
      max of each y_i over P (HiGHS, one warm-started model, rounded outward by 1e-7 (1 + |bound|) for
      HiGHS' tolerances) bound it further;
  (c) what remains infinite is ASSUMED: |y_i - y_ref_i| <= K_i with K_i = 1e3 (1 + |y_ref_i|)
      (``ASSUMED_RADIUS``), listed in ``assumed``. A proof under an assumed box only says
      "no better reply inside the box", and a minimiser found ON an assumed bound
      (``on_assumed_bound``) means the follower may be unbounded: then there is no proof.

Constraints are given to SCIP exactly as written (no slack: a follower whose feasible set is
nearly one point must not be widened), with ``numerics/feastol`` = 1e-9 instead of SCIP's
1e-6, and SCIP's returned point is re-evaluated with ``lp.evaluate`` (``violation``).
Near ties (|f(x, y) - phi_lower| small) are cross-checked by a second solve with another
random seed and a permutation of the variables; disagreement is ``solver_failed``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MethodError, UnsupportedExpressionError
from ..lower import LoweredProblem
from ..lower.casadi2scip import piece_name, scip_follower
from ..reformulate.program import BoxLP, simple_bounds

ASSUMED_RADIUS = 1e3  # K_i = ASSUMED_RADIUS * (1 + |y_ref_i|) for bounds that cannot be derived
LP_ROUNDING = 1e-7    # outward rounding of LP-derived bounds (HiGHS' feasibility tolerance)
FEASTOL = 1e-9        # SCIP's numerics/feastol (default 1e-6 would accept visibly infeasible points)
EPSILON = 1e-11       # SCIP's numerics/epsilon (default 1e-9 closes gaps only to ~1e-9)
_RESULTS_KEY = "scip_follower_results"
EPIGRAPH_SCALE = 100.0  # t >= f written as 100 (t - f) >= 0: feastol on t becomes 1e-11, not 1e-9

_STATUS = {"optimal": "optimal", "gaplimit": "optimal", "infeasible": "infeasible",
           "unbounded": "unbounded", "inforunbd": "unbounded", "timelimit": "time_limit"}


@dataclass(frozen=True)
class GlobalFollowerResult:
    """One global follower solve at a fixed (x, p).

    status: "optimal" (SCIP closed the gap), "infeasible", "unbounded", "time_limit",
    "unsupported" (an operation SCIP cannot represent; see ``message``), "solver_failed".
    phi_upper = f(x, y) at SCIP's best point (re-evaluated by CasADi), phi_lower = SCIP's dual
    bound (valid inside ``box``).
    """

    status: str
    phi_upper: float
    phi_lower: float
    y: np.ndarray | None
    box: tuple[np.ndarray, np.ndarray]
    assumed: list[int]
    derived_from: str
    solver_status: str
    time_s: float
    nodes: int
    on_assumed_bound: bool = False
    violation: float = math.nan
    message: str = ""
    seed: int = 0
    # min of an affine f over the box derived from the constraints alone (no assumed bound):
    # a valid lower bound on the follower's value everywhere (-inf when f is not affine)
    affine_lower: float = -math.inf


@dataclass(frozen=True)
class FollowerProof:
    """Whether a candidate reply y is globally follower-optimal at x (see module docstring)."""

    passed: bool
    value: float
    phi_lower: float
    gap: float
    tol: float
    better_y: np.ndarray | None
    reason: str
    result: GlobalFollowerResult
    cross_check: GlobalFollowerResult | None = None
    violation: float = 0.0  # the candidate's own max violation of g >= 0, h = 0 (reported, not judged)

    @property
    def conditional(self) -> bool:
        """True when the proof holds only inside an assumed box (``result.assumed``)."""
        return self.passed and bool(self.result.assumed)


def _require_scip() -> Any:
    try:
        import pyscipopt
    except ImportError:  # pragma: no cover - depends on the environment
        raise MethodError("global follower proofs need PySCIPOpt (pip install pyscipopt); "
                          "use method='kkt' evidence (the multistart certificate) instead") from None
    return pyscipopt


def _affine(e: Any, index: dict[str, int], n: int) -> tuple[np.ndarray, float] | None:
    """(a, c) with e = a·y + c when e is a number or a PySCIPOpt polynomial of degree <= 1."""
    if isinstance(e, float):
        return np.zeros(n), e
    from pyscipopt.scip import Expr  # polynomials (and Variable, a subclass); GenExpr is nonlinear
    if not isinstance(e, Expr) or e.degree() > 1:
        return None
    a, c = np.zeros(n), 0.0
    for term, coef in e.terms.items():
        if len(term.vartuple) == 0:
            c += float(coef)
        else:
            a[index[term.vartuple[0].name]] += float(coef)
    return a, c


def derive_box(rows_ineq: list[tuple[np.ndarray, float]], rows_eq: list[tuple[np.ndarray, float]],
               n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Box containing {y : a·y + c >= 0 (ineq rows), a·y + c = 0 (eq rows)}: steps (a) and (b)."""
    lo, hi, multi = simple_bounds(rows_ineq, rows_eq, n)
    how = ["simple bounds"] if np.isfinite(lo).any() or np.isfinite(hi).any() else []
    if multi and n:
        lo, hi, used = _lp_box(rows_ineq, rows_eq, lo, hi)
        if used:
            how.append("LP bound propagation")
    return lo, hi, " + ".join(how) or "none"


def _lp_box(rows_ineq, rows_eq, lo, hi):
    """Step (b): min and max of every y_i over the polyhedron (one warm-started HiGHS model, ``BoxLP``)."""
    n = lo.size
    lp = BoxLP([(a, c, False) for a, c in rows_ineq] + [(a, c, True) for a, c in rows_eq], lo, hi, n)
    new_lo, new_hi, used = lo.copy(), hi.copy(), False
    which = range(n) if n <= 50 else [i for i in range(n) if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
    for i in which:
        for sign in (1.0, -1.0):
            st, v = lp.minimise(i, sign)
            if st == "infeasible":  # the affine rows alone are infeasible: SCIP will say so; keep the box
                return lo, hi, False
            if st != "optimal":
                continue
            pad = LP_ROUNDING * (1 + abs(v))
            if sign > 0 and v - pad > new_lo[i]:
                new_lo[i], used = v - pad, True
            if sign < 0 and v + pad < new_hi[i]:
                new_hi[i], used = v + pad, True
    return new_lo, new_hi, used


def _empty(status: str, n: int, message: str, t0: float, box=None, assumed=None, how="", seed=0):
    lo, hi = box if box is not None else (np.full(n, -np.inf), np.full(n, np.inf))
    return GlobalFollowerResult(status=status, phi_upper=math.inf, phi_lower=-math.inf if status != "infeasible" else math.inf,
                                y=None, box=(lo, hi), assumed=list(assumed or []), derived_from=how,
                                solver_status="not run", time_s=time.perf_counter() - t0, nodes=0,
                                message=message, seed=seed)


def global_follower(lp: LoweredProblem, x: Any, p: Any = None, *, y_ref: Any = None, time_limit: float = 10.0,
                    gap_tol: float = 1e-9, seed: int = 0) -> GlobalFollowerResult:
    """Solve the follower at fixed (x, p) globally with SCIP (see the module docstring).

    SCIP stops when phi_upper - phi_lower <= ``gap_tol`` (absolute, ``limits/absgap``) or at
    ``time_limit`` seconds; ``seed`` != 0 shifts SCIP's random seeds and permutes the variables.
    ``y_ref`` centres assumed boxes (default: the declared start). Nothing passed is mutated.
    """
    x = np.asarray(x, dtype=float).reshape(-1).copy()
    p = np.asarray(lp.p_default if p is None else p, dtype=float).reshape(-1).copy()
    y_ref = np.asarray(lp.y_start if y_ref is None else y_ref, dtype=float).reshape(-1).copy()
    # One SCIP solve per leader point: the search, the bounding scheme and the certificate ask at the
    # same x. The result depends on y_ref only through an assumed box, so it is reused across y_ref
    # only when no bound had to be assumed; a closed gap (status "optimal") serves every request with a
    # gap tolerance at least as wide, whatever its time limit; anything else only the same request.
    cache = lp.cached(_RESULTS_KEY, dict)
    key = (x.tobytes(), p.tobytes(), int(seed))
    for ref, tl, gt, hit in cache.get(key, ()):
        if hit.assumed and not np.array_equal(ref, y_ref):
            continue
        if (hit.status == "optimal" and gt <= gap_tol) or (tl == float(time_limit) and gt == float(gap_tol)):
            return hit
    out = _global_follower(lp, x, p, y_ref, time_limit, gap_tol, seed)
    if len(cache) >= 256:
        cache.pop(next(iter(cache)))
    cache.setdefault(key, []).append((y_ref, float(time_limit), float(gap_tol), out))
    return out


def _global_follower(lp, x, p, y_ref, time_limit, gap_tol, seed) -> GlobalFollowerResult:
    ps = _require_scip()
    t0 = time.perf_counter()
    n = lp.n_y

    m = ps.Model(f"{lp.name}_follower")
    m.hideOutput()
    ys = [m.addVar(name=f"y{i}", lb=None, ub=None) for i in range(n)]
    try:
        f, g, h = scip_follower(lp, x, p, ys)
    except UnsupportedExpressionError as exc:
        return _empty("unsupported", n, str(exc), t0, seed=seed)
    pieces = [("f", 0, f)] + [("g", i, e) for i, e in enumerate(g)] + [("h", i, e) for i, e in enumerate(h)]

    index = {v.name: i for i, v in enumerate(ys)}
    ineq, eq = [], []
    for kind, i, e in pieces[1:]:
        if isinstance(e, float):
            bad = (e < -FEASTOL) if kind == "g" else (abs(e) > FEASTOL)
            if bad or math.isnan(e):
                what = piece_name(kind, i, lp.g_names if kind == "g" else lp.h_names)
                return _empty("infeasible", n, f"{what} does not depend on y and is violated at x "
                              f"(value {e:.3g})", t0, seed=seed)
            continue
        aff = _affine(e, index, n)
        if aff is not None:
            (ineq if kind == "g" else eq).append(aff)
    lo, hi, how = derive_box(ineq, eq, n)
    lo, hi = lo + 0.0, hi + 0.0  # no -0.0 in reports
    f_aff = _affine(f, index, n)
    affine_lower = -math.inf
    if f_aff is not None:
        a, c = f_aff
        with np.errstate(invalid="ignore"):
            terms = np.where(a > 0, a * lo, np.where(a < 0, a * hi, 0.0))
        affine_lower = float(c + np.sum(terms)) if np.all(np.isfinite(terms)) else -math.inf
    assumed = [i for i in range(n) if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
    K = ASSUMED_RADIUS * (1 + np.abs(y_ref))
    a_lo = np.where(np.isfinite(lo), lo, y_ref - K)
    a_hi = np.where(np.isfinite(hi), hi, y_ref + K)
    if assumed:
        how += f"; assumed |y_i - y_ref_i| <= {ASSUMED_RADIUS:g}(1 + |y_ref_i|) for i in {assumed}"
    box = (a_lo, a_hi)
    cross = a_lo > a_hi
    if np.any(cross):  # rows pinning y_i to (nearly) one point can cross by rounding: keep that point
        if np.any(a_lo[cross] - a_hi[cross] > FEASTOL * (1 + np.abs(a_lo[cross]))):
            return _empty("infeasible", n, "the derived bounds cross (lo > hi)", t0, box, assumed, how, seed)
        a_lo, a_hi = np.minimum(a_lo, a_hi), np.maximum(a_lo, a_hi)
        box = (a_lo, a_hi)
    for v, a, b in zip(ys, a_lo, a_hi):
        m.chgVarLb(v, float(a))
        m.chgVarUb(v, float(b))
    for kind, i, e in pieces[1:]:
        if isinstance(e, float):
            continue
        m.addCons(e >= 0 if kind == "g" else e == 0, name=f"{kind}{i}")
    if isinstance(f, float):
        if math.isnan(f):
            return _empty("solver_failed", n, "the lower objective is NaN at x", t0, box, assumed, how, seed)
        m.setObjective(0.0 * ys[0], "minimize")
        m.addObjoffset(f)
    elif _affine(f, index, n) is not None:
        m.setObjective(f, "minimize")
    else:
        t = m.addVar(name="t", lb=None, ub=None)
        m.addCons(EPIGRAPH_SCALE * (t - f) >= 0, name="epigraph")
        m.setObjective(t, "minimize")

    m.setParam("limits/time", float(time_limit))
    m.setParam("numerics/feastol", FEASTOL)
    m.setParam("numerics/dualfeastol", FEASTOL)
    m.setParam("limits/absgap", float(gap_tol))
    m.setParam("numerics/epsilon", EPSILON)
    if seed:
        m.setParam("randomization/randomseedshift", int(seed))
        m.setParam("randomization/permutationseed", int(seed))
        m.setParam("randomization/permutevars", True)
    try:
        m.optimize()
    except Exception as exc:  # SCIP errors surface as generic exceptions from the Cython layer
        return _empty("solver_failed", n, f"SCIP raised {type(exc).__name__}: {exc}", t0, box, assumed, how, seed)
    scip_status = str(m.getStatus())
    status = _STATUS.get(scip_status, "solver_failed")
    phi_lower = float(m.getDualbound())
    y = None
    phi_upper, viol, on_bound = math.inf, math.nan, False
    if m.getNSols() > 0:
        sol = m.getBestSol()
        y = np.array([m.getSolVal(sol, v) for v in ys], dtype=float)
        phi_upper = float(lp.evaluate("lower_objective", x, y, p)[0])
        gv = lp.evaluate("lower_ineq", x, y, p) if lp.g.numel() else np.zeros(0)
        hv = lp.evaluate("lower_eq", x, y, p) if lp.h.numel() else np.zeros(0)
        viol = float(max([0.0, *(-gv), *np.abs(hv)]))
        for i in assumed:
            for bnd, derived in ((a_lo[i], np.isfinite(lo[i])), (a_hi[i], np.isfinite(hi[i]))):
                if not derived and abs(y[i] - bnd) <= 1e-6 * (1 + abs(bnd)):
                    on_bound = True
    if status == "infeasible":
        phi_lower = math.inf
    msg = {"optimal": "SCIP closed the gap", "infeasible": "SCIP proved the follower infeasible in the box",
           "time_limit": f"SCIP hit the time limit ({time_limit:g} s)"}.get(status, f"SCIP status {scip_status}")
    if on_bound:
        msg += "; the minimiser lies on an assumed bound (the follower may be unbounded)"
    return GlobalFollowerResult(status=status, phi_upper=phi_upper, phi_lower=phi_lower, y=y, box=box,
                                assumed=assumed, derived_from=how, solver_status=scip_status,
                                time_s=time.perf_counter() - t0, nodes=int(m.getNTotalNodes()),
                                on_assumed_bound=on_bound, violation=viol, message=msg, seed=seed,
                                affine_lower=affine_lower)


def prove_follower_optimal(lp: LoweredProblem, x: Any, y: Any, p: Any = None, *, tol: float | None = None,
                           time_limit: float = 10.0, seed: int = 0, feas_tol: float = 1e-6) -> FollowerProof:
    """Prove (or refute) that y is a global minimiser of the follower at x.

    Passes when f(x, y) - phi_lower <= tol (default 1e-9 (1 + |f(x, y)|)), SCIP's minimiser is not
    on an assumed bound and, for a near tie, a second SCIP run (other seed, permuted variables)
    agrees. ``better_y`` is SCIP's point when it is feasible within ``feas_tol`` and better than
    y by more than tol. The feasibility of y itself is not checked here.
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    p = np.asarray(lp.p_default if p is None else p, dtype=float).reshape(-1)
    value = float(lp.evaluate("lower_objective", x, y, p)[0])
    tol = 1e-9 * (1 + abs(value)) if tol is None else float(tol)
    gv = lp.evaluate("lower_ineq", x, y, p) if lp.g.numel() else np.zeros(0)
    hv = lp.evaluate("lower_eq", x, y, p) if lp.h.numel() else np.zeros(0)
    viol = float(max([0.0, *(-gv), *np.abs(hv)]))
    if not (math.isfinite(value) and math.isfinite(tol)):  # e.g. a division by zero at this x
        r = _empty("unsupported", lp.n_y, f"the lower objective is {value} at (x, y)", time.perf_counter())
        return FollowerProof(passed=False, value=value, phi_lower=-math.inf, gap=math.nan, tol=tol, better_y=None,
                             reason=f"no proof: the lower objective is not finite at (x, y) ({value})", result=r,
                             cross_check=None, violation=viol)
    r = global_follower(lp, x, p, y_ref=y, time_limit=time_limit, gap_tol=tol / 10, seed=seed)
    better = None
    if r.y is not None and r.phi_upper < value - tol and r.violation <= feas_tol:
        better = r.y.copy()
    gap = value - r.phi_lower

    def out(passed, reason, gap=gap, second=None):
        return FollowerProof(passed=passed, value=value, phi_lower=value - gap, gap=float(gap), tol=tol,
                             better_y=better, reason=reason, result=r, cross_check=second, violation=viol)

    if r.status in ("unsupported", "solver_failed", "unbounded"):
        return out(False, f"no proof: {r.message}")
    if r.status == "infeasible":
        return out(False, f"no proof: {r.message}; the candidate cannot be a feasible reply")
    if not math.isfinite(r.phi_lower):
        return out(False, f"no proof: SCIP found no finite lower bound ({r.message})")
    if r.on_assumed_bound:
        if value - r.affine_lower <= tol:  # an affine f cannot go below its minimum over the derived box
            return out(True, f"proven: f(x, y) - min of the affine f over the box derived from the constraints "
                       f"= {value - r.affine_lower:.3g} <= tol {tol:.3g} (SCIP's minimiser lies on an assumed "
                       "bound, but no point outside that box can do better)", gap=value - r.affine_lower)
        return out(False, f"no proof: {r.message}")
    if gap > tol:
        if r.status == "time_limit" and better is None:
            return out(False, f"no proof: gap {gap:.3g} > tol {tol:.3g} and {r.message}")
        return out(False, f"refuted: f(x, y) - phi_lower = {gap:.3g} > tol {tol:.3g}"
                   + (f"; SCIP's reply is better by {value - r.phi_upper:.3g}" if better is not None else ""))
    near = max(1e3 * tol, 1e-6 * (1 + abs(value)))
    second = None
    if abs(gap) <= near:  # near tie: a second opinion from a differently seeded, permuted run
        second = global_follower(lp, x, p, y_ref=y, time_limit=time_limit, gap_tol=tol / 10, seed=seed + 1)
        gap2 = value - second.phi_lower
        if second.on_assumed_bound or not (gap2 <= tol):
            return out(False, f"solver_failed: SCIP runs disagree: phi_lower = {r.phi_lower:.12g} "
                       f"(seed {seed}) vs {second.phi_lower:.12g} (seed {seed + 1}, {second.message})",
                       second=second)
        if second.phi_lower < r.phi_lower:
            gap = gap2
    where = " inside the assumed box" if r.assumed else ""
    note = ""
    if gap < -tol:  # only an infeasible y (or a wrong SCIP bound) can beat the global minimum
        note = (f"; note f(x, y) is below SCIP's bound by {-gap:.3g}: y violates the follower's "
                f"constraints by {viol:.3g}")
    return out(True, f"proven: f(x, y) - phi_lower = {gap:.3g} <= tol {tol:.3g}{where} ({r.derived_from}){note}",
               gap=gap, second=second)

"""``method="global"``: proven global optima with SCIP (spatial branch-and-bound).

Chain: lower -> :class:`~workbench.reformulate.global_kkt.Bilevel2SOS1KKT` (the follower's KKT
conditions, complementarity as SOS1 pairs, bounds derived from the constraints) ->
:func:`~workbench.solve.scip.solve_program` -> NumPy re-evaluation -> global follower certificate.

1. **KKT relaxation.** Applicable when the follower's constraints satisfy a CQ at every x
   (``follower_cq``: affine in y, or x-independent, concave and Slater). Its global optimum F_R is a
   lower bound on the bilevel optimum; when the optimum's follower reply is *proven* optimal
   (certificate proof "convex" or "global"), the point is bilevel feasible with F = F_R, hence a
   global optimum: ``status="optimal"``, ``optimality="global"``, ``bound`` = SCIP's dual bound.
   Variables in nonlinear terms or SOS1 pairs without derived bounds get an assumed box
   (``info["assumed_box"]``; SCIP's answers without finite bounds there proved unreliable), and an
   optimum *on* an assumed bound is never global: the box is enlarged
   100-fold once, and a value that keeps falling is reported as ``unbounded`` (evidence, with the
   values), anything else ``not_certified``. ``info["global_scope"]`` says "derived bounds" or
   "inside the assumed box".
2. **Self-checks.** The answer is re-evaluated in NumPy on the user's SymPy expressions (objective
   and every constraint; CasADi for vectorised declarations) and must match SCIP's value; when the
   answer is near a tolerance (a violation above 1 % of the feasibility tolerance, SCIP's gap not
   closed to 1e-9, a follower proof gap above 1 % of its tolerance, or an SOS1 pair with both members
   below 1e-6) SCIP solves again with another seed and variable permutation; values that disagree
   give ``not_certified`` with both values in ``info["cross_check"]``.
3. **Nonconvex followers.** When the KKT optimum is spurious (the certificate finds a better reply)
   or no CQ can be shown, and n_x <= ``max_leader_bounding`` (5), the bounding scheme of Mitsos,
   Lemonidis & Barton (``solve.bounding``, assumptions there) runs with the high-point relaxation
   and value-function cuts, SCIP for every subproblem and the certificate on every incumbent.
   It ends "optimal" (gap closed), or ``time_limit`` with ``bound`` and the incumbent in ``x``/``y``
   (``info["incumbent"]``), or ``not_certified`` with the reason.

Integer leader variables (``BilevelProblem(..., integer=[...])``) are SCIP integer variables
throughout. ``method="auto"`` does not use this route (its cost is reported by the benchmark).
"""
from __future__ import annotations

import math
import time
import weakref
from typing import Any, Mapping

import numpy as np

from ..certify import certify, follower_is_convex, leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..certify.global_follower import global_follower
from ..errors import MethodError, UnsupportedExpressionError
from ..lower import lower
from ..reformulate.global_kkt import (Bilevel2HighPoint, Bilevel2SOS1KKT, fixed_leader_program, follower_convex_everywhere,
                                      follower_cq, interior_follower_program, slater_program)
from ..reformulate.program import ASSUMED_RADIUS, SingleLevelProgram
from ..result import BilevelResult
from ..solve import FollowerSolver
from ..solve.bounding import bounding_scheme
from ..solve.scip import ScipSolution, quiet_soplex, solve_program
from ..status import SolverStats, Status, failure_from_scip

CROSS_TOL = 1e-6        # two SCIP runs agree when their optimal values differ by <= CROSS_TOL (1 + |F|)
VALUE_TOL = 1e-6        # NumPy's F and SCIP's F agree to this (relative to 1 + |F|)
KKT_GAP = 1e-7          # SCIP's relative and absolute gap limit on the KKT relaxation
derive_box = None       # bounds: reformulate.program.propagate_bounds (the follower proof's derivation, LPs where needed)
FIRST_TRY = 0.0         # seconds for a solve without the assumed box (off: see _solve_kkt_program)
LBP_FEASTOL = 1e-8      # SCIP's feastol in the bounding scheme's relaxations (1e-9 stalls on cuts tight at a point)


def _names(problem: Any, which: str, n: int) -> list[str]:
    syms = getattr(problem, which, None)
    if syms is not None and len(syms) == n and all(hasattr(s, "name") for s in syms):
        return [str(s) for s in syms]
    return [f"{which[0]}{i + 1}" for i in range(n)]


_NUMPY: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def numpy_check(problem: Any, lp: Any, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[float, float, str]:
    """(F, max violation of G >= 0, H = 0, g >= 0, h = 0, evaluator) on the user's expressions.

    SymPy declarations are evaluated by ``sympy.lambdify`` to NumPy (independent of the CasADi lowering
    SCIP read); vectorised declarations only have CasADi expressions, evaluated by CasADi.
    """
    if hasattr(problem, "upper_constraints") and hasattr(problem, "F"):
        fn = _NUMPY.get(problem)
        if fn is None:
            import sympy as sp
            args = list(problem.leader) + list(problem.follower) + list(problem.parameter_symbols)
            exprs = [problem.F] + [c.expr for c in problem.G] + [c.expr for c in problem.H] \
                + [c.expr for c in problem.g] + [c.expr for c in problem.h]
            fn = (sp.lambdify(args, exprs, "numpy"), len(problem.G), len(problem.H), len(problem.g))
            _NUMPY[problem] = fn
        f, nG, nH, ng = fn
        with np.errstate(all="ignore"):
            vals = np.array(f(*x, *y, *p), dtype=float).reshape(-1)
        F, rest = vals[0], vals[1:]
        ineq = np.concatenate([rest[:nG], rest[nG + nH:nG + nH + ng]])
        eq = np.concatenate([rest[nG:nG + nH], rest[nG + nH + ng:]])
        how = "numpy (sympy.lambdify of the declaration)"
    else:
        F = float(lp.evaluate("upper_objective", x, y, p)[0])
        ineq = np.concatenate([lp.evaluate("upper_ineq", x, y, p), lp.evaluate("lower_ineq", x, y, p)])
        eq = np.concatenate([lp.evaluate("upper_eq", x, y, p), lp.evaluate("lower_eq", x, y, p)])
        how = "casadi (vectorised declaration)"
    viol = float(max([0.0, *(-ineq), *np.abs(eq)]))
    if not np.all(np.isfinite(np.concatenate([[F], ineq, eq]))):
        viol = math.inf
    return float(F), viol, how


def _stats(sol: ScipSolution, t0: float, extra: dict | None = None) -> SolverStats:
    return SolverStats("scip", sol.status, iterations=sol.nodes, solve_time=time.monotonic() - t0,
                       extra={"primal_bound": sol.primal, "dual_bound": sol.dual, "seed": sol.seed,
                              "scip_time_s": sol.time_s, **(extra or {})})


def _user(problem: Any, v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return v
    return -v if problem.upper_sense == "max" else v


def _round_integers(x: np.ndarray, ints: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x, float).copy()
    if ints:
        x[list(ints)] = np.round(x[list(ints)])
    return x


def _box_report(prog: SingleLevelProgram) -> list[dict]:
    return [{"variable": prog.names[i], "lb": float(prog.lb[i]), "ub": float(prog.ub[i]),
             "derived_lb": float(prog.derived_lb[i]), "derived_ub": float(prog.derived_ub[i])} for i in prog.assumed]


def _without_assumptions(prog: SingleLevelProgram) -> SingleLevelProgram:
    from dataclasses import replace
    return replace(prog, lb=prog.derived_lb.copy(), ub=prog.derived_ub.copy(), assumed=())


class _Context:
    """What every stage of the route needs: the lowered problem, parameters, names, clock."""

    def __init__(self, problem: Any, p: np.ndarray, time_limit: float, seed: int, certify_starts: int,
                 gap_tol: float, feas_tol: float):
        self.problem, self.p, self.seed = problem, p, seed
        self.lp = lower(problem)
        self.t0 = time.monotonic()
        self.time_limit = time_limit
        self.ints = tuple(problem.integer_indices()) if hasattr(problem, "integer_indices") else ()
        self.xn = _names(problem, "leader", self.lp.n_x)
        self.yn = _names(problem, "follower", self.lp.n_y)
        self.certify_starts, self.gap_tol, self.feas_tol = certify_starts, gap_tol, feas_tol
        self.follower = FollowerSolver(self.lp, tight=True)
        self.info: dict[str, Any] = {"integer": [self.xn[i] for i in self.ints]}
        self.bounding_possible = False

    def kkt_budget(self) -> float:
        """Time for the KKT stage: all of it when no bounding scheme can follow, else half."""
        share = 0.5 if (self.bounding_possible) else 1.0
        return max(share * self.time_limit - (time.monotonic() - self.t0), 0.1)

    def left(self) -> float:
        return max(self.time_limit - (time.monotonic() - self.t0), 0.1)

    def certify(self, x: np.ndarray, y: np.ndarray, lam=None, mu=None) -> Any:
        return certify(self.lp, x, y, self.p, lam, self.follower, mu=mu, n_random=self.certify_starts,
                       gap_tol=GAP_TOL, feas_tol=self.feas_tol, follower_convex=follower_is_convex(self.lp, x, self.p),
                       global_time=min(10.0, self.left()))

    def result(self, status: Status, **kw: Any) -> BilevelResult:
        info = {**self.info, **kw.pop("info", {})}
        return BilevelResult(status=status, problem=self.problem, method="global", parameters=self.p, info=info,
                             time_s=time.monotonic() - self.t0, **kw)


def solve_global(problem: Any, parameters: Mapping | None = None, time_limit: float | None = 60.0, seed: int = 0,
                 gap_tol: float = 1e-3, certify_starts: int = 4, feas_tol: float = FEAS_TOL,
                 bounding: bool = True, max_leader_bounding: int = 5, radius: float = ASSUMED_RADIUS,
                 **unused: Any) -> BilevelResult:
    """Solve to proven global optimality with SCIP (see the module docstring).

    ``gap_tol`` is the relative gap (to 1 + |F|) at which the bounding scheme stops; the KKT solve
    itself closes SCIP's gap to 1e-9. ``bounding=False`` skips the nonconvex-follower scheme.
    """
    if unused:
        raise MethodError(f"method='global' does not take the option(s) {sorted(unused)}")
    with quiet_soplex():  # the certificate's SCIP solves too
        return _solve_global(problem, parameters, time_limit, seed, gap_tol, certify_starts, feas_tol, bounding,
                             max_leader_bounding, radius)


def _solve_global(problem, parameters, time_limit, seed, gap_tol, certify_starts, feas_tol, bounding,
                  max_leader_bounding, radius) -> BilevelResult:
    ctx = _Context(problem, problem.parameter_vector(parameters), 60.0 if time_limit is None else float(time_limit),
                   int(seed), certify_starts, gap_tol, feas_tol)
    lp = ctx.lp
    ctx.bounding_possible = bool(bounding and lp.n_x <= max_leader_bounding)
    cq = follower_cq(lp)
    if cq.kind == "convex_fixed_set":
        cq = _slater(ctx, cq)
    ctx.info["cq"] = cq.reason
    ctx.info["follower_convex_everywhere"] = follower_convex_everywhere(lp)
    start: dict[str, Any] = {}
    if cq.holds:
        out = _kkt_stage(ctx, radius)
        if isinstance(out, BilevelResult):
            out.info["route"] = "global: KKT relaxation (SOS1) + global follower certificate"
            return out
        start = out
    if not bounding or lp.n_x > max_leader_bounding:
        why = (f"no constraint qualification for every x ({cq.reason})" if not cq.holds else start.get("why", ""))
        if not start:
            raise MethodError(f"method='global' cannot prove a global optimum here: {why}; and the bounding scheme for "
                              f"nonconvex followers needs n_x <= {max_leader_bounding} (this problem has n_x = "
                              f"{lp.n_x})" + ("" if bounding else " and was switched off (bounding=False)"))
        return _bound_only(ctx, start, why + (f"; the bounding scheme needs n_x <= {max_leader_bounding}"
                                              if bounding else "; bounding=False"))
    try:
        r = _bounding_stage(ctx, start, radius)
    except MethodError as why:
        if not start:
            raise
        return _bound_only(ctx, start, f"{start.get('why', '')}; {why}")
    r.info["route"] = "global: bounding scheme (Mitsos, Lemonidis & Barton 2008)" + (
        " after the KKT relaxation" if cq.holds else f" (KKT relaxation not valid: {cq.reason})")
    return r


# --------------------------------------------------------------------------- stage 1: KKT relaxation

def _slater(ctx: _Context, cq: Any) -> Any:
    from ..reformulate.global_kkt import FollowerCQ
    prog = slater_program(ctx.lp, ctx.p, cq.nonlinear_rows, derive_box)
    sol = solve_program(prog, time_limit=min(5.0, ctx.left()))
    if sol.status == "optimal" and sol.primal < -1e-7:  # max t = -primal > 0: a strictly feasible point
        return FollowerCQ("convex_fixed_set", f"follower constraints independent of x and concave in y, with a "
                          f"Slater point (min_i g_i = {-sol.primal:.3g} > 0 over the nonlinear rows)")
    return FollowerCQ(None, "follower constraints concave in y but no Slater point was found "
                      f"(SCIP: {sol.status}, max min_i g_i = {-sol.primal:.3g})")


def _solve_kkt_program(ctx: _Context, prog: SingleLevelProgram, seed: int) -> tuple[ScipSolution, SingleLevelProgram]:
    """SCIP on the program inside its (derived, else assumed) box.

    A first try without the assumed box (``FIRST_TRY`` > 0) is off by default: SCIP called a point at
    x = 1e10 "optimal" on an unbounded problem, and a feasible KKT system "infeasible" with unbounded
    SOS1 members, so an answer without finite bounds is not trusted."""
    budget = ctx.kkt_budget()
    if prog.assumed and FIRST_TRY > 0:
        free = _without_assumptions(prog)
        try:
            sol = solve_program(free, time_limit=min(FIRST_TRY, budget), seed=seed, rel_gap=KKT_GAP, abs_gap=KKT_GAP)
        except Exception:  # noqa: BLE001 - SCIP may reject unbounded nonlinear terms; the box then decides
            sol = None
        # SCIP treats |v| >= 1e20 as infinite and may call a point at x = 1e10 "optimal" on an unbounded
        # problem: the solve without the box counts only when its point lies inside the box it skipped.
        inside = sol is not None and sol.w is not None and bool(np.all((sol.w >= prog.lb) & (sol.w <= prog.ub)))
        if sol is not None and ((sol.status == "optimal" and inside) or sol.status == "infeasible"):
            return sol, free
    return solve_program(prog, time_limit=max(ctx.kkt_budget(), 0.1), seed=seed, rel_gap=KKT_GAP, abs_gap=KKT_GAP), prog


def _kkt_stage(ctx: _Context, radius: float) -> BilevelResult | dict:
    """The KKT relaxation solved globally (module docstring, point 1). Returns a final result or the
    starting data for the bounding scheme: {"lower", "incumbent", "cuts", "why"}."""
    lp = ctx.lp
    red = Bilevel2SOS1KKT(ctx.p, derive_box, ctx.ints, leader_names=ctx.xn, follower_names=ctx.yn, radius=radius)
    try:
        prog, inv = red.apply(lp)
        sol, used = _solve_kkt_program(ctx, prog, ctx.seed)
        if sol.status == "error":  # SCIP's LP solver gave up: once more with another seed and permutation
            sol, used = _solve_kkt_program(ctx, prog, ctx.seed + 7)
    except UnsupportedExpressionError as exc:
        raise MethodError(f"method='global': {exc}") from None
    ctx.info["bounds"] = used.bound_source if used.assumed else prog.bound_source.split(";")[0]
    ctx.info["assumed_box"] = _box_report(used)
    ctx.info["multiplier_bounds"] = used.info.get("multiplier_bounds")
    ctx.info["kkt_program"] = {"variables": used.n, "sos1_pairs": len(used.sos1), "scip_status": sol.status,
                               "scip_nodes": sol.nodes, "scip_time_s": sol.time_s}
    if sol.w is None:
        if sol.status == "infeasible":
            if not used.assumed:
                return ctx.result(Status.INFEASIBLE, solver_stats=_stats(sol, ctx.t0),
                                  message="SCIP proved the KKT relaxation infeasible (derived bounds only), so the "
                                          "bilevel problem is infeasible")
            return ctx.result(Status.SOLVER_FAILED, solver_stats=_stats(sol, ctx.t0),
                              message="SCIP found the KKT relaxation infeasible inside the assumed box "
                                      f"({used.bound_source}); nothing is proven outside it")
        if ctx.bounding_possible:
            valid = math.isfinite(sol.dual) and not used.assumed
            return {"lower": sol.dual if valid else -math.inf, "incumbent": None, "cuts": [], "sol": sol,
                    "why": f"the KKT relaxation gave no point ({sol.message})"}
        return ctx.result(failure_from_scip(sol.status), solver_stats=_stats(sol, ctx.t0),
                          bound=None, message=f"SCIP found no point for the KKT relaxation ({sol.message})",
                          info={"lower_bound": _user(ctx.problem, sol.dual) if not used.assumed else None})
    on_bound = used.on_assumed_bound(sol.w)
    if on_bound:
        return _on_assumed_bound(ctx, red, used, sol, on_bound, radius)
    kkt = red.invert(sol.w, inv)
    lo, hi = leader_box(lp)  # the implemented point: x inside its simple bounds exactly
    x, y = _round_integers(np.clip(kkt.x, lo, hi), ctx.ints), kkt.y
    return _judge(ctx, used, sol, x, y, kkt.lam, kkt.mu)


def _near_tolerance(sol: ScipSolution, prog: SingleLevelProgram, viol: float, cert: Any, feas_tol: float) -> list[str]:
    why = []
    if viol > 1e-2 * feas_tol:
        why.append(f"constraint violation {viol:.3g} above 1 % of the feasibility tolerance")
    if sol.gap > 0.1 * KKT_GAP * (1 + abs(sol.primal)):
        why.append(f"SCIP's gap {sol.gap:.3g} near its limit {KKT_GAP:g}")
    tol = cert.tolerance.get("gap", GAP_TOL) * (1 + abs(cert.follower_value))
    if cert.proof == "global" and np.isfinite(cert.value_gap) and cert.value_gap > 1e-2 * tol:
        why.append(f"follower proof gap {cert.value_gap:.3g} above 1 % of its tolerance")
    for a, b in prog.sos1:
        if 0 < abs(sol.w[a]) < 1e-6 and 0 < abs(sol.w[b]) < 1e-6:
            why.append(f"complementarity pair ({prog.names[a]}, {prog.names[b]}) both near 0")
            break
    return why


def _judge(ctx: _Context, prog: SingleLevelProgram, sol: ScipSolution, x, y, lam, mu) -> BilevelResult | dict:
    """NumPy check, follower certificate, cross-check; a result, or the start of the bounding scheme."""
    lp, problem = ctx.lp, ctx.problem
    F_np, viol, how = numpy_check(problem, lp, x, y, ctx.p)
    cert = ctx.certify(x, y, lam, mu)
    scope = "inside the assumed box" if prog.assumed else "derived bounds"
    info = {"numpy_check": {"F": F_np, "max_violation": viol, "evaluator": how}, "global_scope": scope}
    bound = sol.dual
    if not cert.passed:
        lower = sol.dual if (sol.optimal and not prog.assumed) else -math.inf
        inc = None
        if cert.better_y is not None:
            c2 = ctx.certify(x, cert.better_y)
            if c2.passed:
                inc = (float(lp.evaluate("upper_objective", x, cert.better_y, ctx.p)[0]), (x, cert.better_y, c2))
        return {"lower": lower, "incumbent": inc, "cuts": [] if cert.better_y is None else [cert.better_y],
                "why": "the KKT relaxation's optimum is not bilevel feasible (" + "; ".join(cert.reasons) + ")",
                "kkt": {"F": F_np, "x": x.tolist(), "y": y.tolist(), "bound": _user(problem, sol.dual),
                        "certificate": list(cert.reasons)}, "sol": sol}
    msgs = []
    status = Status.OPTIMAL
    if abs(F_np - sol.primal) > VALUE_TOL * (1 + abs(F_np)) or viol > ctx.feas_tol:
        status = Status.NOT_CERTIFIED
        msgs.append(f"NumPy re-evaluation disagrees with SCIP: F = {F_np:.12g} vs SCIP's {sol.primal:.12g}, "
                    f"max violation {viol:.3g}")
    near = _near_tolerance(sol, prog, viol, cert, ctx.feas_tol)
    if near and status == Status.OPTIMAL:
        sol2 = solve_program(prog, time_limit=ctx.left(), seed=ctx.seed + 1, rel_gap=KKT_GAP, abs_gap=KKT_GAP)
        info["cross_check"] = {"why": near, "first": {"primal": sol.primal, "dual": sol.dual, "seed": sol.seed},
                               "second": {"status": sol2.status, "primal": sol2.primal, "dual": sol2.dual,
                                          "seed": sol2.seed}}
        tol = CROSS_TOL * (1 + abs(sol.primal))
        # Disagreement: the second run finds a point below the first's bound, proves a bound above the first's
        # point, or closes its gap at another value. A second run stopped by the limit without either is no
        # second opinion (reported), not a disagreement.
        disagree = (sol2.primal < sol.dual - tol or sol2.dual > sol.primal + tol
                    or (sol2.status == "optimal" and abs(sol2.primal - sol.primal) > tol))
        if disagree:
            status = Status.NOT_CERTIFIED
            msgs.append(f"SCIP runs disagree: optimum {sol.primal:.12g}, bound {sol.dual:.12g} (seed {sol.seed}) vs "
                        f"{sol2.primal:.12g}, bound {sol2.dual:.12g} (seed {sol2.seed}, status {sol2.status})")
        elif sol2.status != "optimal":
            info["cross_check"]["verdict"] = "inconclusive: the second run stopped early without contradicting"
            msgs.append(f"cross-check inconclusive (second SCIP run {sol2.status}, no contradiction)")
        else:
            info["cross_check"]["verdict"] = "agree"
            bound = min(sol.dual, sol2.dual)
    if status == Status.OPTIMAL and not sol.optimal:
        status = Status.OPTIMAL  # follower-optimal point, but the leader's optimum is not proven
        msgs.append(f"SCIP stopped early ({sol.status}); the point is bilevel feasible but not proven global")
    optimality = "global" if (status == Status.OPTIMAL and sol.optimal) else "local"
    if prog.assumed and optimality == "global":
        msgs.append("global inside the assumed box " + ", ".join(f"{b['variable']} in [{b['lb']:.6g}, {b['ub']:.6g}]"
                                                                 for b in ctx.info["assumed_box"]))
    msgs += [r for r in cert.reasons]
    return ctx.result(status, x=x, y=y, lam=cert.lam if cert.lam is not None else lam,
                      mu=cert.mu if cert.mu is not None else mu, certificate=cert,
                      solver_stats=_stats(sol, ctx.t0), optimality=optimality,
                      bound=_user(problem, bound) if optimality == "global" or math.isfinite(bound) else None,
                      message="; ".join(msgs), info=info)


def _on_assumed_bound(ctx: _Context, red: Bilevel2SOS1KKT, prog: SingleLevelProgram, sol: ScipSolution,
                      on_bound: list[int], radius: float) -> BilevelResult:
    """An optimum on an assumed bound: enlarge the box 100-fold once; a falling value is unbounded evidence."""
    names = [prog.names[i] for i in on_bound]
    evidence = [{"radius": radius, "F": _user(ctx.problem, sol.primal), "on_bound": names}]
    big = Bilevel2SOS1KKT(ctx.p, derive_box, ctx.ints, leader_names=ctx.xn, follower_names=ctx.yn, radius=100 * radius)
    prog2, _ = big.apply(ctx.lp)
    sol2 = solve_program(prog2, time_limit=ctx.kkt_budget(), seed=ctx.seed, rel_gap=KKT_GAP, abs_gap=KKT_GAP)
    if sol2.w is not None:
        on2 = [prog2.names[i] for i in prog2.on_assumed_bound(sol2.w)]
        evidence.append({"radius": 100 * radius, "F": _user(ctx.problem, sol2.primal), "on_bound": on2})
    info = {"unbounded_evidence": evidence, "global_scope": "none: optimum on an assumed bound"}
    falls = (sol2.w is not None and evidence[-1]["on_bound"]
             and sol2.primal < sol.primal - 1e-6 * (1 + abs(sol.primal))
             and any(n in ctx.xn or n in ctx.yn for n in evidence[-1]["on_bound"]))
    text = ", ".join(f"radius {e['radius']:g}: F = {e['F']:.6g} on {e['on_bound']}" for e in evidence)
    if falls:
        return ctx.result(Status.UNBOUNDED, solver_stats=_stats(sol2, ctx.t0), info=info,
                          message=f"the KKT relaxation's optimum lies on an assumed bound and keeps falling as the box "
                                  f"grows ({text}): evidence (not a proof) that the bilevel problem is unbounded")
    w = sol2.w if sol2.w is not None else sol.w
    kkt = big.invert(w, {"blocks": _blocks(ctx.lp)})
    x = _round_integers(kkt.x, ctx.ints)
    cert = ctx.certify(x, kkt.y, kkt.lam, kkt.mu)
    return ctx.result(Status.NOT_CERTIFIED, x=x, y=kkt.y, lam=kkt.lam, mu=kkt.mu, certificate=cert,
                      solver_stats=_stats(sol2 if sol2.w is not None else sol, ctx.t0), optimality="local", info=info,
                      message=f"the KKT relaxation's optimum lies on an assumed bound ({text}), so it is not "
                              "proven global")


def _blocks(lp: Any) -> dict:
    o, out = 0, {}
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    for name, n in (("x", lp.n_x), ("y", lp.n_y), ("s", ng), ("lam", ng), ("mu", nh)):
        out[name] = slice(o, o + n)
        o += n
    return out


def _bound_only(ctx: _Context, start: dict, why: str) -> BilevelResult:
    inc = start.get("incumbent")
    lower = start.get("lower", -math.inf)
    info = {"kkt_relaxation": start.get("kkt"), "lower_bound": _user(ctx.problem, lower)}
    if inc is None:  # the relaxation's point, with the certificate that refutes it
        sol, kkt = start.get("sol"), start.get("kkt") or {}
        x, y = np.asarray(kkt.get("x", []), float), np.asarray(kkt.get("y", []), float)
        if x.size == 0:
            return ctx.result(Status.SOLVER_FAILED, info=info, message=f"no bilevel-feasible point proven: {why}")
        return ctx.result(Status.NOT_CERTIFIED, x=x, y=y, certificate=ctx.certify(x, y), info=info, optimality="local",
                          solver_stats=None if sol is None else _stats(sol, ctx.t0),
                          bound=_user(ctx.problem, lower) if math.isfinite(lower) else None,
                          message=f"no bilevel-feasible point proven: {why}")
    F, (x, y, cert) = inc
    return ctx.result(Status.OPTIMAL, x=x, y=y, certificate=cert, optimality="local",
                      bound=_user(ctx.problem, lower) if math.isfinite(lower) else None, info=info,
                      message=f"bilevel-feasible point (follower proven optimal), not proven global: {why}")


# --------------------------------------------------------------------------- stage 3: bounding scheme

def _bounding_stage(ctx: _Context, start: dict, radius: float) -> BilevelResult:
    lp, p = ctx.lp, ctx.p
    hpr0, _ = Bilevel2HighPoint(p, derive_box, ctx.ints, leader_names=ctx.xn, follower_names=ctx.yn,
                                radius=radius).apply(lp)
    assumed_x = [hpr0.names[i] for i in hpr0.assumed if i < lp.n_x]
    if assumed_x:
        raise MethodError(f"method='global': the bounding scheme for nonconvex followers needs a compact leader set, "
                          f"but no finite bound can be derived for {assumed_x}; add bounds on these leader variables")
    xbox = (hpr0.lb[:lp.n_x], hpr0.ub[:lp.n_x])
    assumed_y = [hpr0.names[i] for i in hpr0.assumed if i >= lp.n_x]
    ctx.info["bounding_box"] = _box_report(hpr0)
    ctx.info.setdefault("assumed_box", [])
    ctx.info["assumed_box"] = _box_report(hpr0)
    xrows = [j for j, d in enumerate(_dep(lp.g, lp.x)) if d]
    h_dep = any(_dep(lp.h, lp.x))
    last: dict[str, Any] = {}
    plain_cache: dict[tuple, bool] = {}

    def plain(yk) -> bool:
        """y_k feasible at every x of the leader box: the plain cut; else the disjunctive one."""
        key = tuple(np.round(np.asarray(yk, float), 12))
        if key not in plain_cache:
            plain_cache[key] = not xrows or _feasible_for_every_x(ctx, yk, xbox)[0]
        return plain_cache[key]

    def lower_bound(cuts, upper):
        prog, inv = Bilevel2HighPoint(p, derive_box, ctx.ints, cuts=cuts, leader_names=ctx.xn, follower_names=ctx.yn,
                                      radius=radius, plain=[plain(c) for c in cuts], xrows=xrows).apply(lp)
        cutoff = upper - 0.5 * ctx.gap_tol * (1 + abs(upper)) if math.isfinite(upper) else None
        try:
            return _lbp(prog, inv, cutoff)
        except UnsupportedExpressionError as exc:
            last["error"] = str(exc)
            return "unsupported", -math.inf, None

    def _lbp(prog, inv, cutoff):
        sol = solve_program(prog, time_limit=min(ctx.left(), max(2.0, ctx.left() / 3)), seed=ctx.seed,
                            feastol=LBP_FEASTOL, rel_gap=ctx.gap_tol / 4, abs_gap=ctx.gap_tol / 4, objlimit=cutoff)
        last["sol"] = sol
        if sol.status == "infeasible" and cutoff is not None:
            return "infeasible", cutoff, None  # no point of the relaxation below the cutoff
        if sol.w is None:
            return sol.status, sol.dual, None
        x, _ = Bilevel2HighPoint(p, derive_box).invert(sol.w, inv)
        lo, hi = leader_box(lp)  # SCIP's x may sit outside its bounds by the feasibility tolerance
        return sol.status, sol.dual, _round_integers(np.clip(x, lo, hi), ctx.ints)

    def follower(x):
        r = global_follower(lp, x, p, time_limit=min(10.0, ctx.left()))
        if r.on_assumed_bound:
            return "on_assumed_bound", r.phi_upper, None
        return r.status, r.phi_upper, r.y

    def cut_valid(yk):
        if h_dep:
            return False, "a follower equality depends on x (no valid disjunctive cut is implemented for it)"
        return True, "plain cut" if plain(yk) else "disjunctive cut"

    def upper_bound(x, phi, yk):
        """Certified points at x (the optimistic eps-optimal reply, and y_k) and at x rounded to 6
        decimals: an optimum at a point like x = 0 is met by the relaxation only to SCIP's tolerance."""
        best = None
        snapped = _round_integers(np.round(x, 6), ctx.ints) + 0.0
        points = [(x, phi, yk)]
        if not np.array_equal(snapped, x):
            st, phi_s, y_s = follower(snapped)
            if st == "optimal" and y_s is not None:
                points.append((snapped, phi_s, y_s))
        for xc, ph, yc in points:
            cands = [yc]
            try:
                ubp = fixed_leader_program(lp, p, xc, ph, 1e-10 * (1 + abs(ph)), derive_box)
                s = solve_program(ubp, time_limit=min(10.0, ctx.left()), seed=ctx.seed)
                if s.w is not None:
                    cands.insert(0, s.w)
            except UnsupportedExpressionError:
                pass
            for y in cands:
                F = float(lp.evaluate("upper_objective", xc, y, p)[0])
                if best is not None and F >= best[0]:
                    continue
                cert = ctx.certify(xc, y)
                if cert.passed:
                    best = (F, (xc.copy(), np.asarray(y, float).copy(), cert))
        return best

    def extra_cuts(x, yk):
        """Where y_k sits on an x-dependent boundary (g_j(x_k, y_k) < delta), cuts at the minimisers of the
        follower with those rows tightened to g_j >= delta, delta = 1e-1, 1e-2, 1e-3 (1 + |g_j| scale): each
        is a valid follower point on a neighbourhood of x_k, so its cut bites at x_k (see
        reformulate.global_kkt.interior_follower_program)."""
        if not xrows:
            return []
        gv = lp.evaluate("lower_ineq", x, yk, p)
        out = []
        for d in (1e-1, 1e-2, 1e-3):
            rows = [j for j in xrows if gv[j] < d]
            if not rows:
                continue
            try:
                s = solve_program(interior_follower_program(lp, p, x, rows, d), time_limit=min(5.0, ctx.left()),
                                  seed=ctx.seed)
            except UnsupportedExpressionError:
                return out
            if s.w is not None and s.status == "optimal" and plain(s.w) is not None:
                out.append(s.w)
        return out

    inc = start.get("incumbent")
    res = bounding_scheme(lower_bound, follower, cut_valid, upper_bound, extra_cuts=extra_cuts,
                          cuts=start.get("cuts", []),
                          lower=start.get("lower", -math.inf), upper=inc[0] if inc else math.inf,
                          incumbent=inc[1] if inc else None, gap_tol=ctx.gap_tol, time_limit=ctx.left())
    sol = last.get("sol")
    stats = None if sol is None else _stats(sol, ctx.t0, {"iterations": len(res.steps)})
    info = {"bounding": {"status": res.status, "reason": res.reason, "lower": _user(ctx.problem, res.lower),
                         "upper": _user(ctx.problem, res.upper), "iterations": len(res.steps),
                         "cuts": [c.tolist() for c in res.cuts],
                         "steps": [s.__dict__ for s in res.steps]},
            "kkt_relaxation": start.get("kkt"),
            "global_scope": ("inside the assumed box" if assumed_y else "derived bounds")}
    bound = _user(ctx.problem, res.lower) if math.isfinite(res.lower) else None
    if res.status == "infeasible":
        return ctx.result(Status.INFEASIBLE, solver_stats=stats, info=info, message=res.reason)
    if res.incumbent is None:
        st = Status.TIME_LIMIT if res.status == "time_limit" else Status.SOLVER_FAILED
        return ctx.result(st, solver_stats=stats, info=info, bound=bound,
                          message=f"no bilevel-feasible point proven: {res.reason}")
    x, y, cert = res.incumbent
    info["incumbent"] = {"x": x.tolist(), "y": y.tolist(), "F": _user(ctx.problem, res.upper)}
    info["gap"] = res.gap
    if res.status == "optimal":
        msg = res.reason + (f"; global inside the assumed box for {assumed_y}" if assumed_y else "")
        return ctx.result(Status.OPTIMAL, x=x, y=y, certificate=cert, solver_stats=stats, optimality="global",
                          bound=bound, info=info, message=msg)
    if res.status == "time_limit":
        return ctx.result(Status.TIME_LIMIT, x=x, y=y, certificate=cert, solver_stats=stats, optimality="local",
                          bound=bound, info=info, message=f"{res.reason}: incumbent F = {res.upper:.10g}, bound "
                                                          f"{res.lower:.10g}")
    return ctx.result(Status.OPTIMAL, x=x, y=y, certificate=cert, solver_stats=stats, optimality="local", bound=bound,
                      info=info, message=f"bilevel-feasible (follower proven optimal), not proven global: {res.reason}")


def _dep(block: Any, v: Any) -> list[bool]:
    import casadi as ca
    return [bool(ca.depends_on(block[i], v)) for i in range(int(block.numel()))]


def _feasible_for_every_x(ctx: _Context, yk: np.ndarray, xbox: tuple[np.ndarray, np.ndarray]) -> tuple[bool, str]:
    """Is y_k follower-feasible at every x of the leader box? min_x g_j(x, y_k) >= 0 by SCIP for each
    x-dependent row; an x-dependent equality is not checked (refused)."""
    import casadi as ca
    lp = ctx.lp
    if any(_dep(lp.h, lp.x)):
        return False, "a follower equality depends on x"
    yd = ca.DM(np.asarray(yk, float))
    for j, dep in enumerate(_dep(lp.g, lp.x)):
        if not dep:
            gv = float(lp.evaluate("lower_ineq", ctx.lp.x_start, yk, ctx.p)[j])
            if gv < -1e-9:
                return False, f"g[{lp.g_names[j]}] < 0 at y_k"
            continue
        gj = ca.substitute(lp.g[j], lp.y, yd)
        prog = SingleLevelProgram(w=lp.x, p=lp.p, p_value=ctx.p, objective=gj, eq=ca.SX(0, 1), ineq=ca.SX(0, 1),
                                  lb=xbox[0].copy(), ub=xbox[1].copy(), names=tuple(ctx.xn), integer=ctx.ints,
                                  derived_lb=xbox[0].copy(), derived_ub=xbox[1].copy())
        try:
            s = solve_program(prog, time_limit=min(5.0, ctx.left()))
        except UnsupportedExpressionError as exc:
            return False, str(exc)
        if not (s.status == "optimal" and s.dual >= -1e-9):
            return False, f"min over the leader box of g[{lp.g_names[j]}](x, y_k) = {s.dual:.3g} < 0"
    return True, "y_k is feasible at every x of the leader box"

"""``method="global"``: proven global optima with SCIP (spatial branch-and-bound).

Chain: lower -> :class:`~workbench.reformulate.global_kkt.Bilevel2SOS1KKT` (KKT conditions, SOS1
complementarity, bounds derived from the constraints, multipliers from dual vertices) ->
:func:`~workbench.solve.scip.solve_retrying` -> :mod:`~workbench.certify.global_checks` (NumPy
re-evaluation, cross-check) -> the follower certificate; for nonconvex followers with small leaders
-> :class:`~workbench.solve.bounding.HighPointBounding` (Mitsos, Lemonidis & Barton 2008).

1. **KKT relaxation**, where the follower's constraints satisfy a CQ at every x (``follower_cq``;
   concave x-free rows need a Slater point, ``solve.scip.slater_cq``). Its global optimum is a
   lower bound; when the optimum's follower reply is *proven* optimal by the certificate it is a
   global optimum: ``optimality="global"``, ``bound`` = SCIP's dual bound. Variables that keep no
   derived bound get an assumed box (``info["assumed_box"]``; SCIP's answers without finite bounds
   proved unreliable: a point at x = 1e10 called optimal, a feasible system called infeasible), and an
   optimum *on* an assumed bound is never global: the box grows 100-fold once, a falling value is
   ``unbounded`` evidence, anything else ``not_certified``. ``info["global_scope"]`` says
   "derived bounds" or "inside the assumed box", ``info["multiplier_bounds"]`` which multiplier
   bounds are derived.
2. **Self-checks** (``certify.global_checks``): NumPy on the user's expressions must match SCIP; near
   a tolerance SCIP solves again with another seed; disagreement gives ``not_certified`` with both
   values in ``info["cross_check"]``.
3. **Nonconvex followers**: when the KKT optimum is spurious or no CQ is shown and n_x <=
   ``max_leader_bounding``, the bounding scheme (assumptions in ``solve.bounding``); it ends
   "optimal" (gap closed), ``time_limit`` with ``bound`` and the incumbent, or ``not_certified``.

``algorithm`` picks the stages: ``"auto"`` (default) as above; ``"kkt"`` the KKT relaxation only
(the scheme never runs; same as ``bounding=False``); ``"bounding"`` the bounding scheme alone from
the high-point relaxation, skipping the KKT stage even where it would suffice (to measure the scheme
on its own; it still needs a compact leader set and n_x <= ``max_leader_bounding``).

Integer leader variables (``BilevelProblem(..., integer=[...])``) are SCIP integer variables throughout.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..certify import certify, follower_is_convex, leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..certify.global_checks import VALUE_TOL, compare_runs, near_tolerance, numpy_check
from ..certify.global_follower import global_follower
from ..errors import MethodError, UnsupportedExpressionError
from ..lower import lower
from ..reformulate.global_kkt import Bilevel2SOS1KKT, follower_convex_everywhere, follower_cq
from ..reformulate.program import ASSUMED_RADIUS, box_report
from ..result import BilevelResult
from ..solve import FollowerSolver
from ..solve.bounding import HighPointBounding, round_integers
from ..solve.scip import ScipSolution, quiet_soplex, slater_cq, solve_retrying
from ..status import SolverStats, Status, failure_from_scip

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

KKT_GAP = 1e-7          # SCIP's relative and absolute gap limit on the KKT relaxation
ALGORITHMS = ("auto", "kkt", "bounding")
SCHEME_FOLLOWER_GAP = 1e-10  # the scheme's follower solves close to the certificate's gap (GAP_TOL / 10), so that
#                              the certificate at the same x reuses them (``global_follower``'s cache)


def _names(problem: Problem, which: str, n: int) -> list[str]:
    syms = getattr(problem, which, None)
    if syms is not None and len(syms) == n and all(hasattr(s, "name") for s in syms):
        return [str(s) for s in syms]
    return [f"{which[0]}{i + 1}" for i in range(n)]


def _stats(sol: ScipSolution, t0: float, extra: dict | None = None) -> SolverStats:
    return SolverStats("scip", sol.status, iterations=sol.nodes, solve_time=time.monotonic() - t0,
                       extra={"primal_bound": sol.primal, "dual_bound": sol.dual, "seed": sol.seed,
                              "scip_time_s": sol.time_s, **(extra or {})})


class _LazyFollower:
    """The Ipopt follower solver, compiled on first use: a global follower proof needs none, and building
    it (``nlpsol``) cost ~7 ms of a typical 50 ms solve."""

    def __init__(self, lp: Any):
        self.lp, self._solver = lp, None

    def __getattr__(self, name: str) -> Any:
        if self._solver is None:
            self._solver = FollowerSolver(self.lp, tight=True)
        return getattr(self._solver, name)


class _Context:
    """What every stage of the route needs: the lowered problem, parameters, names, clock, certificate."""

    def __init__(self, problem: Problem, p: np.ndarray, time_limit: float, seed: int, certify_starts: int,
                 gap_tol: float, feas_tol: float, radius: float):
        self.problem, self.p, self.seed, self.radius = problem, p, seed, radius
        self.lp = lower(problem)
        self.t0 = time.monotonic()
        self.time_limit = time_limit
        self.ints = tuple(problem.integer_indices()) if hasattr(problem, "integer_indices") else ()
        self.xn = _names(problem, "leader", self.lp.n_x)
        self.yn = _names(problem, "follower", self.lp.n_y)
        self.certify_starts, self.gap_tol, self.feas_tol = certify_starts, gap_tol, feas_tol
        self.follower = _LazyFollower(self.lp)
        self.info: dict[str, Any] = {"integer": [self.xn[i] for i in self.ints]}
        self.bounding_possible = False

    def user(self, v: float | None) -> float | None:
        if v is None or not math.isfinite(v):
            return v
        return -v if self.problem.upper_sense == "max" else v

    def kkt_budget(self) -> float:
        """Time for the KKT stage: all of it when no bounding scheme can follow, else half."""
        share = 0.5 if self.bounding_possible else 1.0
        return max(share * self.time_limit - (time.monotonic() - self.t0), 0.1)

    def left(self) -> float:
        return max(self.time_limit - (time.monotonic() - self.t0), 0.1)

    def kkt(self, radius: float) -> Bilevel2SOS1KKT:
        return Bilevel2SOS1KKT(self.p, None, self.ints, leader_names=self.xn, follower_names=self.yn, radius=radius)

    def certify(self, x: np.ndarray, y: np.ndarray, lam=None, mu=None) -> Any:
        return certify(self.lp, x, y, self.p, lam, self.follower, mu=mu, n_random=self.certify_starts,
                       gap_tol=GAP_TOL, feas_tol=self.feas_tol, follower_convex=follower_is_convex(self.lp, x, self.p),
                       global_time=min(10.0, self.left()))

    def result(self, status: Status, **kw: Any) -> BilevelResult:
        info = {**self.info, **kw.pop("info", {})}
        return BilevelResult(status=status, problem=self.problem, method="global", parameters=self.p, info=info,
                             time_s=time.monotonic() - self.t0, **kw)


def refuse_pessimistic() -> None:
    """``formulation="pessimistic"`` with ``method="global"``: not built, so refused with the reason."""
    raise MethodError("method='global' with formulation='pessimistic' is not built: a global pessimistic optimum "
                      "needs min_x max_{y in Y*(x)} F proven over the follower's whole optimal set (a three-level "
                      "proof), which the SOS1 KKT relaxation and the bounding scheme do not give; use "
                      "formulation='pessimistic' with method='kkt' (a sampled scan, not a global proof)")


def solve_global(problem: Problem, parameters: Mapping | None = None, time_limit: float | None = 60.0, seed: int = 0,
                 gap_tol: float = 1e-3, certify_starts: int = 4, feas_tol: float = FEAS_TOL,
                 bounding: bool = True, max_leader_bounding: int = 5, radius: float = ASSUMED_RADIUS,
                 algorithm: str = "auto", **unused: Any) -> BilevelResult:
    """Solve to proven global optimality with SCIP (see the module docstring).

    ``gap_tol`` is the relative gap (to 1 + |F|) at which the bounding scheme stops; the KKT solve
    itself closes SCIP's gap to ``KKT_GAP``. ``bounding=False`` (or ``algorithm="kkt"``) skips the
    nonconvex-follower scheme; ``algorithm="bounding"`` runs the scheme alone (module docstring).
    """
    if unused:
        raise MethodError(f"method='global' does not take the option(s) {sorted(unused)}")
    if algorithm not in ALGORITHMS:
        raise MethodError(f"method='global': algorithm={algorithm!r} is not one of {sorted(ALGORITHMS)} "
                          "('auto': KKT relaxation then the bounding scheme; 'kkt': the KKT relaxation only; "
                          "'bounding': the bounding scheme alone)")
    bounding = bounding and algorithm != "kkt"
    ctx = _Context(problem, problem.parameter_vector(parameters), 60.0 if time_limit is None else float(time_limit),
                   int(seed), certify_starts, gap_tol, feas_tol, radius)
    ctx.bounding_possible = bool(bounding and ctx.lp.n_x <= max_leader_bounding)
    if algorithm == "bounding" and not ctx.bounding_possible:
        raise MethodError(f"method='global', algorithm='bounding': the bounding scheme needs n_x <= "
                          f"{max_leader_bounding} (this problem has n_x = {ctx.lp.n_x})"
                          + ("" if bounding else " and bounding=True"))
    with quiet_soplex():  # the certificate's SCIP solves too
        if algorithm == "bounding":
            r = _bounding_stage(ctx, {})
            r.info["route"] = "global: bounding scheme (Mitsos, Lemonidis & Barton 2008), forced (algorithm='bounding')"
            return r
        return _solve_global(ctx, bounding, max_leader_bounding)


def _solve_global(ctx: _Context, bounding: bool, max_leader_bounding: int) -> BilevelResult:
    lp = ctx.lp
    cq = follower_cq(lp)
    if cq.kind == "convex_fixed_set":
        cq = slater_cq(lp, ctx.p, cq, time_limit=min(5.0, ctx.left()))
    ctx.info["cq"] = cq.reason
    ctx.info["follower_convex_everywhere"] = follower_convex_everywhere(lp)
    start: dict[str, Any] = {}
    if cq.holds:
        out = _kkt_stage(ctx)
        if isinstance(out, BilevelResult):
            out.info["route"] = "global: KKT relaxation (SOS1) + global follower certificate"
            return out
        start = out
    if not ctx.bounding_possible:
        why = f"no constraint qualification for every x ({cq.reason})" if not cq.holds else start.get("why", "")
        if not start:
            raise MethodError(f"method='global' cannot prove a global optimum here: {why}; and the bounding scheme for "
                              f"nonconvex followers needs n_x <= {max_leader_bounding} (this problem has n_x = "
                              f"{lp.n_x})" + ("" if bounding else " and was switched off (bounding=False)"))
        return _bound_only(ctx, start, why + (f"; the bounding scheme needs n_x <= {max_leader_bounding}"
                                              if bounding else "; bounding=False"))
    try:
        r = _bounding_stage(ctx, start)
    except MethodError as why:
        if not start:
            raise
        return _bound_only(ctx, start, f"{start.get('why', '')}; {why}")
    r.info["route"] = "global: bounding scheme (Mitsos, Lemonidis & Barton 2008)" + (
        " after the KKT relaxation" if cq.holds else f" (KKT relaxation not valid: {cq.reason})")
    return r


# --------------------------------------------------------------------------- stage 1: KKT relaxation

def _kkt_stage(ctx: _Context) -> BilevelResult | dict:
    """The KKT relaxation solved globally. Returns a final result or the starting data for the bounding
    scheme: {"lower", "incumbent", "cuts", "why"}."""
    red = ctx.kkt(ctx.radius)
    try:
        prog, inv = red.apply(ctx.lp)
        sol = solve_retrying(prog, time_limit=ctx.kkt_budget(), seed=ctx.seed, gap=KKT_GAP)
    except UnsupportedExpressionError as exc:
        raise MethodError(f"method='global': {exc}") from None
    ctx.info.update(bounds=prog.bound_source, assumed_box=box_report(prog),
                    multiplier_bounds=prog.info.get("multiplier_bounds"),
                    kkt_program={"variables": prog.n, "sos1_pairs": len(prog.sos1), "scip_status": sol.status,
                                 "scip_nodes": sol.nodes, "scip_time_s": sol.time_s})
    if sol.w is None:
        if sol.status == "infeasible":
            if not prog.assumed:
                return ctx.result(Status.INFEASIBLE, solver_stats=_stats(sol, ctx.t0),
                                  message="SCIP proved the KKT relaxation infeasible (derived bounds only), so the "
                                          "bilevel problem is infeasible")
            return ctx.result(Status.SOLVER_FAILED, solver_stats=_stats(sol, ctx.t0),
                              message="SCIP found the KKT relaxation infeasible inside the assumed box "
                                      f"({prog.bound_source}); nothing is proven outside it")
        if ctx.bounding_possible:
            valid = math.isfinite(sol.dual) and not prog.assumed
            return {"lower": sol.dual if valid else -math.inf, "incumbent": None, "cuts": [], "sol": sol,
                    "why": f"the KKT relaxation gave no point ({sol.message})"}
        return ctx.result(failure_from_scip(sol.status), solver_stats=_stats(sol, ctx.t0),
                          bound=None, message=f"SCIP found no point for the KKT relaxation ({sol.message})",
                          info={"lower_bound": ctx.user(sol.dual) if not prog.assumed else None})
    on_bound = prog.on_assumed_bound(sol.w)
    if on_bound:
        return _on_assumed_bound(ctx, prog, sol, on_bound)
    kkt = red.invert(sol.w, inv)
    lo, hi = leader_box(ctx.lp)  # the implemented point: x inside its simple bounds exactly
    return _judge(ctx, prog, sol, round_integers(np.clip(kkt.x, lo, hi), ctx.ints), kkt.y, kkt.lam, kkt.mu)


def _judge(ctx: _Context, prog: Any, sol: ScipSolution, x, y, lam, mu) -> BilevelResult | dict:
    """NumPy check, follower certificate, cross-check; a result, or the start of the bounding scheme."""
    lp = ctx.lp
    F_np, viol, how = numpy_check(ctx.problem, lp, x, y, ctx.p)
    cert = ctx.certify(x, y, lam, mu)
    info = {"numpy_check": {"F": F_np, "max_violation": viol, "evaluator": how},
            "global_scope": "inside the assumed box" if prog.assumed else "derived bounds"}
    bound = sol.dual
    if not cert.passed:
        inc = None
        if cert.better_y is not None:
            c2 = ctx.certify(x, cert.better_y)
            if c2.passed:
                inc = (float(lp.evaluate("upper_objective", x, cert.better_y, ctx.p)[0]), (x, cert.better_y, c2))
        return {"lower": sol.dual if (sol.optimal and not prog.assumed) else -math.inf, "incumbent": inc,
                "cuts": [] if cert.better_y is None else [cert.better_y],
                "why": "the KKT relaxation's optimum is not bilevel feasible (" + "; ".join(cert.reasons) + ")",
                "kkt": {"F": F_np, "x": x.tolist(), "y": y.tolist(), "bound": ctx.user(sol.dual),
                        "certificate": list(cert.reasons)}, "sol": sol}
    msgs, status = [], Status.OPTIMAL
    if abs(F_np - sol.primal) > VALUE_TOL * (1 + abs(F_np)) or viol > ctx.feas_tol:
        status = Status.NOT_CERTIFIED
        msgs.append(f"NumPy re-evaluation disagrees with SCIP: F = {F_np:.12g} vs SCIP's {sol.primal:.12g}, "
                    f"max violation {viol:.3g}")
    near = near_tolerance(sol, prog, viol, cert, ctx.feas_tol, KKT_GAP)
    if near and status == Status.OPTIMAL:
        sol2 = solve_retrying(prog, time_limit=ctx.left(), seed=ctx.seed + 1, gap=KKT_GAP)
        verdict, info["cross_check"] = compare_runs(sol, sol2)
        info["cross_check"]["why"] = near
        if verdict == "disagree":
            status = Status.NOT_CERTIFIED
            msgs.append(f"SCIP runs disagree: optimum {sol.primal:.12g}, bound {sol.dual:.12g} (seed {sol.seed}) vs "
                        f"{sol2.primal:.12g}, bound {sol2.dual:.12g} (seed {sol2.seed}, status {sol2.status})")
        elif verdict == "inconclusive":
            msgs.append(f"cross-check inconclusive (second SCIP run {sol2.status}, no contradiction)")
        else:
            bound = min(sol.dual, sol2.dual)
    if status == Status.OPTIMAL and not sol.optimal:
        msgs.append(f"SCIP stopped early ({sol.status}); the point is bilevel feasible but not proven global")
    optimality = "global" if (status == Status.OPTIMAL and sol.optimal) else "local"
    if prog.assumed and optimality == "global":
        msgs.append("global inside the assumed box " + ", ".join(f"{b['variable']} in [{b['lb']:.6g}, {b['ub']:.6g}]"
                                                                 for b in ctx.info["assumed_box"]))
    return ctx.result(status, x=x, y=y, lam=cert.lam if cert.lam is not None else lam,
                      mu=cert.mu if cert.mu is not None else mu, certificate=cert,
                      solver_stats=_stats(sol, ctx.t0), optimality=optimality,
                      bound=ctx.user(bound) if optimality == "global" or math.isfinite(bound) else None,
                      message="; ".join(msgs + list(cert.reasons)), info=info)


def _on_assumed_bound(ctx: _Context, prog: Any, sol: ScipSolution, on_bound: list[int]) -> BilevelResult:
    """An optimum on an assumed bound: enlarge the box 100-fold once; a falling value is unbounded evidence."""
    evidence = [{"radius": ctx.radius, "F": ctx.user(sol.primal), "on_bound": [prog.names[i] for i in on_bound]}]
    big = ctx.kkt(100 * ctx.radius)
    prog2, inv2 = big.apply(ctx.lp)
    sol2 = solve_retrying(prog2, time_limit=ctx.kkt_budget(), seed=ctx.seed, gap=KKT_GAP)
    if sol2.w is not None:
        evidence.append({"radius": 100 * ctx.radius, "F": ctx.user(sol2.primal),
                         "on_bound": [prog2.names[i] for i in prog2.on_assumed_bound(sol2.w)]})
    info = {"unbounded_evidence": evidence, "global_scope": "none: optimum on an assumed bound"}
    falls = (sol2.w is not None and evidence[-1]["on_bound"]
             and sol2.primal < sol.primal - 1e-6 * (1 + abs(sol.primal))
             and any(n in ctx.xn or n in ctx.yn for n in evidence[-1]["on_bound"]))
    text = ", ".join(f"radius {e['radius']:g}: F = {e['F']:.6g} on {e['on_bound']}" for e in evidence)
    if falls:
        return ctx.result(Status.UNBOUNDED, solver_stats=_stats(sol2, ctx.t0), info=info,
                          message=f"the KKT relaxation's optimum lies on an assumed bound and keeps falling as the box "
                                  f"grows ({text}): evidence (not a proof) that the bilevel problem is unbounded")
    kkt = big.invert(sol2.w if sol2.w is not None else sol.w, inv2)  # the same layout in both programs
    x = round_integers(kkt.x, ctx.ints)
    return ctx.result(Status.NOT_CERTIFIED, x=x, y=kkt.y, lam=kkt.lam, mu=kkt.mu,
                      certificate=ctx.certify(x, kkt.y, kkt.lam, kkt.mu), optimality="local", info=info,
                      solver_stats=_stats(sol2 if sol2.w is not None else sol, ctx.t0),
                      message=f"the KKT relaxation's optimum lies on an assumed bound ({text}), so it is not "
                              "proven global")


def _bound_only(ctx: _Context, start: dict, why: str) -> BilevelResult:
    inc, lower_ = start.get("incumbent"), start.get("lower", -math.inf)
    info = {"kkt_relaxation": start.get("kkt"), "lower_bound": ctx.user(lower_)}
    bound = ctx.user(lower_) if math.isfinite(lower_) else None
    if inc is None:  # the relaxation's point, with the certificate that refutes it
        sol, kkt = start.get("sol"), start.get("kkt") or {}
        x, y = np.asarray(kkt.get("x", []), float), np.asarray(kkt.get("y", []), float)
        if x.size == 0:
            return ctx.result(Status.SOLVER_FAILED, info=info, message=f"no bilevel-feasible point proven: {why}")
        return ctx.result(Status.NOT_CERTIFIED, x=x, y=y, certificate=ctx.certify(x, y), info=info, optimality="local",
                          solver_stats=None if sol is None else _stats(sol, ctx.t0), bound=bound,
                          message=f"no bilevel-feasible point proven: {why}")
    F, (x, y, cert) = inc
    return ctx.result(Status.OPTIMAL, x=x, y=y, certificate=cert, optimality="local", bound=bound, info=info,
                      message=f"bilevel-feasible point (follower proven optimal), not proven global: {why}")


# --------------------------------------------------------------------------- stage 3: bounding scheme

def _bounding_stage(ctx: _Context, start: dict) -> BilevelResult:
    scheme = HighPointBounding(
        ctx.lp, ctx.p, ctx.ints, (ctx.xn, ctx.yn), ctx.radius, left=ctx.left, seed=ctx.seed, gap_tol=ctx.gap_tol,
        certify=ctx.certify, leader_box=leader_box(ctx.lp), follower_tol=GAP_TOL,
        follower_global=lambda x, time_limit: global_follower(ctx.lp, x, ctx.p, time_limit=time_limit,
                                                              gap_tol=SCHEME_FOLLOWER_GAP))
    ctx.info["bounding_box"] = ctx.info["assumed_box"] = box_report(scheme.hpr0)
    res = scheme.run(start, ctx.left())
    sol = scheme.last.get("sol")
    stats = None if sol is None else _stats(sol, ctx.t0, {"iterations": len(res.steps)})
    info = {"bounding": {"status": res.status, "reason": res.reason, "lower": ctx.user(res.lower),
                         "upper": ctx.user(res.upper), "iterations": len(res.steps),
                         "cuts": [c.tolist() for c in res.cuts], "steps": [s.__dict__ for s in res.steps]},
            "kkt_relaxation": start.get("kkt"),
            "global_scope": "inside the assumed box" if scheme.assumed_y else "derived bounds"}
    bound = ctx.user(res.lower) if math.isfinite(res.lower) else None
    if res.status == "infeasible":
        return ctx.result(Status.INFEASIBLE, solver_stats=stats, info=info, message=res.reason)
    if res.incumbent is None:
        st = Status.TIME_LIMIT if res.status == "time_limit" else Status.SOLVER_FAILED
        return ctx.result(st, solver_stats=stats, info=info, bound=bound,
                          message=f"no bilevel-feasible point proven: {res.reason}")
    x, y, cert = res.incumbent
    info["incumbent"] = {"x": x.tolist(), "y": y.tolist(), "F": ctx.user(res.upper)}
    info["gap"] = res.gap
    kw = dict(x=x, y=y, certificate=cert, solver_stats=stats, bound=bound, info=info)
    if res.status == "optimal":
        msg = res.reason + (f"; global inside the assumed box for {scheme.assumed_y}" if scheme.assumed_y else "")
        return ctx.result(Status.OPTIMAL, optimality="global", message=msg, **kw)
    if res.status == "time_limit":
        return ctx.result(Status.TIME_LIMIT, optimality="local", **kw,
                          message=f"{res.reason}: incumbent F = {res.upper:.10g}, bound {res.lower:.10g}")
    return ctx.result(Status.OPTIMAL, optimality="local", **kw,
                      message=f"bilevel-feasible (follower proven optimal), not proven global: {res.reason}")

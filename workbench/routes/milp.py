"""Global solution of a linear bilevel problem: follower KKT as big-M disjunctions, HiGHS MILP.

For an affine leader and a follower LP  min_y c.y s.t. g(x, y) = A [x; y] + b >= 0,
h(x, y) = 0, y is follower-optimal iff there are lam >= 0, mu with
c = A_y^T lam + E_y^T mu and lam_i g_i = 0. A convex-QP follower (constant PSD Hessian
in y, gradient affine in (x, y)) works the same way with c replaced by grad_y f(x, y):
its KKT conditions are still linear apart from the complementarity, and sufficient.
Each complementarity pair becomes

    g_i <= Ms_i z_i,   lam_i <= Ml_i (1 - z_i),   z_i in {0, 1}

with Ms_i, Ml_i derived from the model (``workbench.reformulate.bigm_bounds``), never
guessed: the solve refuses (MethodError) when a bound cannot be derived. Pairs
whose dual is always 0, always positive, or whose slack is always 0 need no
binary. ``scipy.optimize.milp`` (HiGHS) then solves to global optimality
(mip_rel_gap 1e-9); the point is certified like every other route's.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from ..reformulate.bigm_bounds import dual_vertex_bounds, incumbent, qp_multiplier_bounds, slack_bounds
from ..reformulate.linear import LinearBilevel, linear_bilevel
from ..certify import certify, follower_is_convex, implemented_point
from ..errors import MethodError
from ..lower import lower
from ..solve import FollowerSolver
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..result import BilevelResult
from ..status import SolverStats, Status, failure_from_highs

SLACK_SOURCE = "max of g_i over the high-point relaxation {G>=0, H=0, g>=0, h=0} (LP, scipy linprog/HiGHS)"


def _needs_slack_bound(region: Any, duals: Any, tol: float) -> np.ndarray:
    return (duals.lam_max > tol) & (duals.lam_min <= tol) & (region.upper > tol) & ~np.isfinite(region.upper)


def _pairs(m: LinearBilevel, max_bases: int, tol: float = 1e-9,
           allow_cut: bool = True) -> tuple[list[dict], Any, Any, float | None]:
    """How each complementarity pair is modelled, with its bounds and their sources.

    When a slack is unbounded over the high-point relaxation, a bilevel-feasible
    incumbent (two LPs at a fixed x) gives the valid cut F <= F(incumbent), and the
    slack bounds are recomputed over the relaxation intersected with that cut. With integer
    leader variables the incumbent's x need not be integer, so no cut is made (``allow_cut``).
    """
    region = slack_bounds(m)
    duals = dual_vertex_bounds(m, max_bases) if m.is_lp else qp_multiplier_bounds(m, max_bases)
    cut, source = None, SLACK_SOURCE
    if allow_cut and m.is_lp and region.feasible and duals.feasible and _needs_slack_bound(region, duals, tol).any():
        inc = incumbent(m, region.points)
        if inc is not None:
            cut = inc[0] + 1e-6 * (1 + abs(inc[0]))
            region = slack_bounds(m, objective_cut=cut)
            source = (SLACK_SOURCE + f", cut by F <= {cut:.10g} (a bilevel-feasible incumbent with F = "
                      f"{inc[0]:.10g} at x = {np.round(inc[1][:m.nx], 8).tolist()}; follower LP solved at that x)")
    dual_source = (f"max of lam_i over the {duals.n_vertices} vertices of the follower's dual feasible set "
                   f"(enumerated from {duals.n_bases} bases)") if m.is_lp else (
        f"max of lam_i over the multiplier vertices z_B(x, y) of {duals.n_vertices} feasible bases (of "
        f"{duals.n_bases}), one LP per basis over the high-point relaxation (convex-QP follower)")
    pairs = []
    for i, name in enumerate(m.g.names):
        row = dict(constraint=name, slack_bound=float(region.upper[i]), slack_source=source,
                   dual_bound=float(duals.lam_max[i]) if duals.feasible else float("nan"), dual_source=dual_source)
        if not (region.feasible and duals.feasible):
            row["treatment"] = "none (problem infeasible)"
        elif duals.lam_max[i] <= tol:
            row["treatment"] = "lam fixed to 0 (no dual vertex has lam_i > 0)"
        elif duals.lam_min[i] > tol:
            row["treatment"] = f"constraint forced active (every dual vertex has lam_i >= {duals.lam_min[i]:.6g})"
        elif region.upper[i] <= tol:
            row["treatment"] = "slack is identically 0 on the relaxed region"
        elif not np.isfinite(duals.lam_max[i]):
            raise MethodError(
                f"no big-M bound for the multiplier of follower constraint {name!r}: it is unbounded over the "
                "high-point relaxation. Add bounds on the leader and follower variables or use method='kkt'.")
        elif not np.isfinite(region.upper[i]):
            raise MethodError(
                f"no big-M bound for follower constraint {name!r}: its slack is unbounded over the high-point "
                "relaxation (also after cutting with any bilevel-feasible incumbent found) and its dual can be "
                "positive, so the complementarity cannot be written as a valid big-M disjunction. Add bounds on "
                "the variables in that constraint (as leader or follower constraints) or use "
                "method='strong_duality'.")
        else:
            row["treatment"] = "binary"
        pairs.append(row)
    return pairs, region, duals, cut


def _build(m: LinearBilevel, pairs: list[dict], cut: float | None,
           integer: tuple[int, ...] = ()) -> tuple[np.ndarray, list, Bounds, np.ndarray, list[int]]:
    nx, ny, ng, nh = m.nx, m.ny, len(m.g.names), len(m.h.names)
    binaries = [i for i, r in enumerate(pairs) if r["treatment"] == "binary"]
    n = nx + ny + ng + nh + len(binaries)
    xy, lam, mu = slice(0, nx + ny), slice(nx + ny, nx + ny + ng), slice(nx + ny + ng, nx + ny + ng + nh)
    rows, lb, ub = [], [], []

    def add(coefs: list, lo: float, hi: float) -> None:
        r = np.zeros(n)
        for sl, v in coefs:
            r[sl] = v
        rows.append(r)
        lb.append(lo)
        ub.append(hi)

    for blk, kind in ((m.G, "ineq"), (m.H, "eq"), (m.g, "ineq"), (m.h, "eq")):
        for a, b in zip(blk.A, blk.b):
            add([(xy, a)], -b, np.inf if kind == "ineq" else -b)
    if cut is not None:  # F <= F(incumbent) + margin: keeps every global optimum
        add([(xy, m.F.A[0])], -np.inf, cut - m.F.b[0])
    Ay, Ey = m.Ay("g"), m.Ay("h")
    for j in range(ny):  # stationarity: (grad_y f)_j - sum lam_i A_ij - sum mu_k E_kj = 0
        add([(xy, m.grad.A[j]), (lam, -Ay[:, j]), (mu, -Ey[:, j])], -m.grad.b[j], -m.grad.b[j])
    lo_v = np.full(n, -np.inf)
    hi_v = np.full(n, np.inf)
    lo_v[lam] = 0.0
    for i, r in enumerate(pairs):
        hi_v[nx + ny + i] = r["dual_bound"]
        if r["treatment"].startswith("lam fixed"):
            hi_v[nx + ny + i] = 0.0
        if r["treatment"].startswith("constraint forced"):
            add([(xy, m.g.A[i])], -m.g.b[i], -m.g.b[i])
    for k, i in enumerate(binaries):
        zk = nx + ny + ng + nh + k
        add([(xy, m.g.A[i]), (zk, -pairs[i]["slack_bound"])], -np.inf, -m.g.b[i])
        add([(nx + ny + i, 1.0), (zk, pairs[i]["dual_bound"])], -np.inf, pairs[i]["dual_bound"])
        lo_v[zk], hi_v[zk] = 0.0, 1.0
    c = np.zeros(n)
    c[xy] = m.F.A[0]
    integrality = np.zeros(n)
    integrality[nx + ny + ng + nh:] = 1
    integrality[list(integer)] = 1  # integer leader variables (HiGHS integrality)
    A = np.array(rows) if rows else np.zeros((0, n))
    cons = [LinearConstraint(A, lb, ub)] if rows else []
    return c, cons, Bounds(lo_v, hi_v), integrality, binaries


def _active_bounds(m: LinearBilevel, pairs: list[dict], x: np.ndarray, y: np.ndarray, lam: np.ndarray) -> list[str]:
    """Pairs whose slack or dual sits at its big-M bound (valid bounds, but worth a look)."""
    g = m.g(np.concatenate([x, y]))
    out = []
    for i, r in enumerate(pairs):
        if r["treatment"] != "binary":
            continue
        if g[i] >= r["slack_bound"] - 1e-7 * (1 + r["slack_bound"]):
            out.append(f"{r['constraint']!r}: slack {g[i]:.6g} at its bound {r['slack_bound']:.6g}")
        if lam[i] >= r["dual_bound"] - 1e-7 * (1 + r["dual_bound"]):
            out.append(f"{r['constraint']!r}: dual {lam[i]:.6g} at its bound {r['dual_bound']:.6g}")
    return out


def _boxed_values(m: LinearBilevel, c, cons, bounds: Bounds, integrality, opts) -> list[tuple[float, float]]:
    """Optimal F with x and y boxed to [-K, K]: evidence (not proof) that an unbounded MILP is unbounded
    through bilevel-feasible points, since each boxed optimum is one."""
    out = []
    n_xy = m.nx + m.ny
    for K in (1e2, 1e3, 1e4):
        lo, hi = bounds.lb.copy(), bounds.ub.copy()
        lo[:n_xy], hi[:n_xy] = np.maximum(lo[:n_xy], -K), np.minimum(hi[:n_xy], K)
        r = milp(c, integrality=integrality, bounds=Bounds(lo, hi), constraints=cons, options=opts)
        if r.status == 0:
            out.append((K, float(r.fun + m.F.b[0])))
    return out


def solve_milp(problem: Any, parameters: Mapping | None = None, time_limit: float | None = 60.0,
               mip_rel_gap: float = 1e-9, max_bases: int = 200_000, certify_starts: int = 4,
               gap_tol: float = GAP_TOL, feas_tol: float = FEAS_TOL, **unused: Any) -> BilevelResult:
    """Solve a linear bilevel problem to global optimality (see module docstring)."""
    if unused:
        raise MethodError(f"method='milp' does not take the option(s) {sorted(unused)}")
    t0 = time.monotonic()
    p = problem.parameter_vector(parameters)
    m = linear_bilevel(problem, p, "milp", allow_qp=True)
    ints = tuple(problem.integer_indices()) if hasattr(problem, "integer_indices") else ()
    pairs, region, duals, cut = _pairs(m, max_bases, allow_cut=not ints)
    base = dict(problem=problem, method="milp", parameters=p)
    info: dict = {"big_m": pairs, "dual_vertices": duals.n_vertices, "objective_cut": cut, "integer": list(ints)}
    if not region.feasible or not duals.feasible:
        # A feasible follower LP whose dual is infeasible is unbounded below at every x: the same
        # word as the KKT route's for a follower without a minimiser.
        status = Status.INFEASIBLE if not region.feasible else Status.UNBOUNDED
        why = region.message if not region.feasible else (
            "the follower's dual feasible set is empty while its feasible set is not: the follower LP is "
            "unbounded below at every x (no follower-optimal response exists); bound the follower's variables")
        return BilevelResult(status=status, solver_stats=SolverStats("highs", "not_run"), message=why, info=info,
                             time_s=time.monotonic() - t0, **base)
    c, cons, bounds, integrality, binaries = _build(m, pairs, cut, ints)
    opts = {"mip_rel_gap": mip_rel_gap, "disp": False}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    res = milp(c, integrality=integrality, bounds=bounds, constraints=cons, options=opts)
    info.update(highs_status=int(res.status), highs_message=str(res.message), n_binaries=len(binaries),
                mip_gap=getattr(res, "mip_gap", None), mip_nodes=getattr(res, "mip_node_count", None),
                mip_dual_bound=None if getattr(res, "mip_dual_bound", None) is None else
                float(res.mip_dual_bound) + float(m.F.b[0]))
    hs = f"HiGHS status {res.status}: {res.message}"
    stats = SolverStats("highs", str(res.message), iterations=getattr(res, "mip_node_count", None),
                        solve_time=time.monotonic() - t0)
    if res.x is None:
        msg = f"the MILP has no solution ({hs})"
        if res.status == 3:
            info["unbounded_evidence"] = _boxed_values(m, c, cons, bounds, integrality, opts)
            msg += ("; with every variable boxed to |v| <= K the optimum keeps falling: "
                    + ", ".join(f"K = {K:g}: F = {F:.6g}" for K, F in info["unbounded_evidence"]))
        return BilevelResult(status=failure_from_highs(res.status), solver_stats=stats,
                             message=msg, info=info, time_s=time.monotonic() - t0, **base)
    nx, ny, ng, nh = m.nx, m.ny, len(m.g.names), len(m.h.names)
    z = np.asarray(res.x, float)
    x, y = z[:nx].copy(), z[nx:nx + ny]
    x[list(ints)] = np.round(x[list(ints)])  # HiGHS' integers are integral to its tolerance
    lam, mu = z[nx + ny:nx + ny + ng], z[nx + ny + ng:nx + ny + ng + nh]
    info["global"] = res.status == 0
    info["big_m_active"] = _active_bounds(m, pairs, x, y, lam)
    lp = lower(problem)
    follower = FollowerSolver(lp, tight=True)
    x, y, lam, mu, _ = implemented_point(lp, follower, x, y, p, lam, mu)
    cert = certify(lp, x, y, p, lam, follower, mu=mu, n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol,
                   follower_convex=follower_is_convex(lp, x, p))
    if cert.lam is not None:
        lam, mu = cert.lam, cert.mu
    status = Status.OPTIMAL if (res.status == 0 and cert.passed) else Status.NOT_CERTIFIED
    msgs = [] if res.status == 0 else [f"HiGHS stopped early ({hs}); the point is not proven global"]
    msgs += cert.reasons
    if info["big_m_active"]:
        msgs.append("big-M bound active at the solution (the bounds are derived, hence valid; listed in "
                    "info['big_m_active'])")
    return BilevelResult(status=status, x=x, y=y, lam=lam, mu=mu, certificate=cert, solver_stats=stats,
                         optimality="global" if status == Status.OPTIMAL else "local",
                         bound=info["mip_dual_bound"] if status == Status.OPTIMAL else None,
                         message="; ".join(msgs), info=info, time_s=time.monotonic() - t0, **base)

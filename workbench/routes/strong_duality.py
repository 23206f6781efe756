"""Strong-duality reformulation for a follower that is an LP in y.

The follower  min_y c(x).y  s.t.  g = A(x) y + b(x) >= 0,  h = E(x) y + e(x) = 0
has the dual  max -b.lam - e.mu  s.t.  A^T lam + E^T mu = c, lam >= 0. y is optimal iff
it is primal feasible, (lam, mu) is dual feasible and the objective values are equal:

    min_{x,y,lam,mu} F  s.t. G >= 0, H = 0, g >= 0, h = 0, A^T lam + E^T mu = c, lam >= 0,
                             c.y + b.lam + e.mu <= eps   (>= 0 always, by weak duality)

solved with Ipopt over a short eps -> 0 sequence (warm-started), from several leader
starts, then polished: the complementarity pattern found is fixed and the degenerate
duality row dropped, so the last solve is a regular NLP. When b, e, A or E depend on x, leader variables multiply duals (and c(x).y
is bilinear when c does): the single-level problem is nonconvex and Ipopt's answer
is local; the result says so. Each point is certified like every route's.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import casadi as ca
import numpy as np

from ..analysis._lp_form import require_lp_follower
from ..certify import certify, follower_is_convex, implemented_point, leader_box
from ..lower import lower
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..result import BilevelResult
from ..status import SolverStats
from ..solve import FollowerSolver, IpoptSolver
from ..solve.ipopt import WARM_OPTIONS
from ..solve.starts import leader_starts

EPS_SCHEDULE = (1e-2, 1e-4, 1e-6, 1e-8)


def _dual_data(lp: Any) -> dict:
    """c, A, b, E, e of the follower LP as CasADi expressions of (x, p)."""
    zero = ca.DM.zeros(lp.n_y)
    jac = lambda v: ca.jacobian(v, lp.y) if v.numel() else ca.SX(0, lp.n_y)  # noqa: E731
    return dict(c=ca.gradient(lp.f, lp.y), A=jac(lp.g), b=ca.substitute(lp.g, lp.y, zero),
                E=jac(lp.h), e=ca.substitute(lp.h, lp.y, zero))


def nonconvexity_note(lp: Any, d: dict) -> str | None:
    """Why the single-level problem is nonconvex (products of leader variables and duals), or None."""
    why = []
    if any(ca.depends_on(d[k], lp.x) for k in ("b", "e") if d[k].numel()):
        why.append("the follower's right-hand sides depend on x, so b(x).lam is bilinear in leader variables "
                   "and duals")
    if any(ca.depends_on(d[k], lp.x) for k in ("A", "E") if d[k].numel()):
        why.append("the follower's constraint matrix depends on x, so A(x)^T lam is bilinear")
    if ca.depends_on(d["c"], lp.x):
        why.append("the follower's cost c(x) depends on x, so c(x).y is bilinear")
    if not why:
        return None
    return ("the strong-duality single-level problem is nonconvex: " + "; ".join(why)
            + ". Ipopt returns a local solution; use method='milp' for a global one (linear case).")


def _build(lp: Any, d: dict) -> tuple[dict, dict]:
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    lam, mu, eps = ca.SX.sym("lam", ng), ca.SX.sym("mu", nh), ca.SX.sym("eps")
    stat = d["c"]
    sd = ca.dot(d["c"], lp.y)
    if ng:
        stat = stat - ca.mtimes(d["A"].T, lam)
        sd = sd + ca.dot(d["b"], lam)
    if nh:
        stat = stat - ca.mtimes(d["E"].T, mu)
        sd = sd + ca.dot(d["e"], mu)
    blocks = [(lp.G, 0, np.inf), (lp.H, 0, 0), (lp.g, 0, np.inf), (lp.h, 0, 0), (stat, 0, 0), (sd, -np.inf, 0)]
    g = ca.vertcat(*[b[0] for b in blocks])
    lbg = np.concatenate([np.full(int(b[0].numel()), b[1]) for b in blocks])
    ubg = np.concatenate([np.full(int(b[0].numel()), b[2]) for b in blocks])
    sd_row = int(g.numel()) - 1
    w = ca.vertcat(lp.x, lp.y, lam, mu)
    g = ca.vertcat(g[:sd_row], g[sd_row] - eps)
    nlp = {"x": w, "p": ca.vertcat(lp.p, eps), "f": lp.F, "g": g}
    lbw = np.concatenate([np.full(lp.n_x + lp.n_y, -np.inf), np.zeros(ng), np.full(nh, -np.inf)])
    ubw = np.full(lbw.size, np.inf)
    return nlp, dict(lbg=lbg, ubg=ubg, lbw=lbw, ubw=ubw, ng=ng, nh=nh)


def polish(solver: IpoptSolver, lp: Any, bnd: dict, r: Any, p: np.ndarray) -> Any:
    """Fix the complementarity the eps-loop found (g_i = 0 or lam_i = 0), drop the degenerate
    duality row and re-solve: a regular NLP, so Ipopt reaches its tight tolerance."""
    nG, nH, ng = int(lp.G.numel()), int(lp.H.numel()), bnd["ng"]
    off = lp.n_x + lp.n_y
    lbg, ubg, ubw = bnd["lbg"].copy(), bnd["ubg"].copy(), bnd["ubw"].copy()
    gval = r.g[nG + nH: nG + nH + ng]
    lam = r.w[off:off + ng]
    for i in range(ng):
        if lam[i] > gval[i]:
            ubg[nG + nH + i] = 0.0
        else:
            ubw[off + i] = 0.0
    lbg[-1], ubg[-1] = -np.inf, np.inf
    return solver.solve(r.w, np.append(p, 0.0), bnd["lbw"], ubw, lbg, ubg)


def solve_strong_duality(problem: Any, parameters: Mapping | None = None, start: Mapping | None = None,
                         n_starts: int = 6, seed: int = 0, certify_starts: int = 4, gap_tol: float = GAP_TOL,
                         feas_tol: float = FEAS_TOL, schedule: tuple = EPS_SCHEDULE,
                         ipopt_options: dict | None = None) -> BilevelResult:
    """Solve with the follower's argmin replaced by primal/dual feasibility and strong duality."""
    t0 = time.monotonic()
    require_lp_follower(problem, "strong_duality")
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    d = _dual_data(lp)
    nlp, bnd = _build(lp, d)
    cold = IpoptSolver(nlp, {"ipopt.bound_relax_factor": 0.0, **(ipopt_options or {})}, name="strong_duality")
    warm = IpoptSolver(nlp, {**WARM_OPTIONS, "ipopt.bound_relax_factor": 0.0, **(ipopt_options or {})},
                       name="strong_duality_warm")
    follower = FollowerSolver(lp, tight=True)
    x0, y0 = problem.start_vectors(start)
    candidates, log = [], []
    for k, xs in enumerate(leader_starts(lp, x0, n_starts, seed)):
        fs = follower.solve(xs, p, y0)
        ys, lam0, mu0 = (fs.y, np.maximum(fs.lam, 0), fs.mu) if fs.success else (y0, np.ones(bnd["ng"]), np.zeros(bnd["nh"]))
        w = np.concatenate([xs, ys, lam0, mu0])
        r, reached = None, np.inf
        for eps in schedule:
            solver = cold if r is None else warm
            args = dict(lam_x0=r.lam_w, lam_g0=r.lam_g) if r is not None else {}
            r_new = solver.solve(w, np.append(p, eps), bnd["lbw"], bnd["ubw"], bnd["lbg"], bnd["ubg"], **args)
            log.append(dict(start=k, eps=eps, objective=r_new.objective, ipopt_status=r_new.ipopt_status,
                            iterations=r_new.iterations, phase="homotopy"))
            if not r_new.success:
                break
            r, w, reached = r_new, r_new.w, eps
        if r is None:
            continue
        rp = polish(cold, lp, bnd, r, p)
        log.append(dict(start=k, eps=0.0, objective=rp.objective, ipopt_status=rp.ipopt_status,
                        iterations=rp.iterations, phase="polish"))
        if rp.success:
            r = rp
        elif reached > schedule[-1]:
            continue
        nx, ny, ng = lp.n_x, lp.n_y, bnd["ng"]
        x, y, lam, mu = r.w[:nx], r.w[nx:nx + ny], r.w[nx + ny:nx + ny + ng], r.w[nx + ny + ng:]
        x, y, lam, mu, _ = implemented_point(lp, follower, x, y, p, lam, mu)
        cert = certify(lp, x, y, p, lam, follower, mu=mu, n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol,
                       seed=seed + k, follower_convex=follower_is_convex(lp, x, p))
        candidates.append((x, y, cert.lam if cert.lam is not None else lam, cert.mu if cert.mu is not None else mu, float(lp.evaluate("upper_objective", x, y, p)[0]), cert, r.ipopt_status, k))
    note = nonconvexity_note(lp, d)
    info = {"nonconvex": note, "reformulation_convex_constraints": note is None, "formulation": "primal feasibility + dual feasibility + c.y + b.lam + e.mu <= eps",
            "eps_schedule": list(schedule), "candidates": [(c[7], c[4], c[5].passed) for c in candidates]}
    base = dict(problem=problem, method="strong_duality", parameters=p, log=log, time_s=time.monotonic() - t0)
    if not candidates:
        statuses = sorted({row["ipopt_status"] for row in log})
        status = "infeasible" if statuses == ["Infeasible_Problem_Detected"] else "solver_failed"
        return BilevelResult(status=status, solver_stats=SolverStats("ipopt", ",".join(statuses)), info=info,
                             message=f"no start reached the end of the eps schedule or a polished point "
                                     f"(Ipopt statuses: {statuses})", **base)
    certified = [c for c in candidates if c[5].passed]
    best = min(certified or candidates, key=lambda c: c[4])
    status = "optimal" if certified else "not_certified"
    msg = "" if certified else "; ".join(best[5].reasons)
    if note and certified:
        msg = "locally optimal single-level point (nonconvex reformulation), follower optimality certified"
    return BilevelResult(status=status, x=best[0], y=best[1], lam=best[2], mu=best[3], certificate=best[5],
                         solver_stats=SolverStats("ipopt", best[6]), message=msg, info=info, **base)

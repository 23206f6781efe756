"""Leaders paid with (or constrained by) follower multipliers: the KKT route with shadow prices.

``wb.multiplier("balance")`` in F or G is the multiplier of the follower's constraint
"balance" (README sign convention). The KKT reformulation already has the multipliers as
variables, so the MPCC simply uses them (``Bilevel2MPCC`` substitutes them):

    min_{x, y, lam, mu} F(x, y, lam, mu)  s.t.  G(x, y, lam, mu) >= 0, H = 0,
                                              grad_y L = 0, h = 0, 0 <= g ⊥ lam >= 0.

The optimistic reading lets the leader pick the multiplier too when the follower's multipliers
are not unique (LICQ fails): that is what the MPCC does, and it is why the seed warns that the
leader may drive F to -infinity through the multiplier set. So every candidate (x, y) is valued
over its whole multiplier set M(x, y) (``certify.multipliers.multiplier_range``: two HiGHS LPs
when F is affine in the multipliers): the optimistic value is min_M F, the pessimistic
(``formulation="pessimistic"``) max_M F, and an unbounded min_M F is reported as ``unbounded``.

Candidates: the follower's reply at the leader starts (the user's x0, random points in the
leader's box and, for a leader of at most ``sample_dims`` variables, a grid over its box) and
the eps -> 0 homotopy on the MPCC from the best of them. Each candidate is certified on the
follower's side (``lower.follower_view``: convexity + KKT residuals, or SCIP) and its reported
multipliers are checked to be multipliers of the follower at (x, y) (stationarity, sign,
complementarity); only then may it be "optimal" (a local optimum of the leader).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from ..certify import certify, follower_is_convex, implemented_point, leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL, KKT_TOL
from ..certify.multipliers import MultiplierRange, check_multipliers, multiplier_range
from ..errors import MethodError
from ..lower import follower_view, lower
from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from ..result import BilevelResult
from ..solve import FollowerSolver, Homotopy
from ..status import SolverStats, Status

AWARE = ("kkt", "global_kkt", "auto", "milp", "strong_duality")


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

    @property
    def ok(self) -> bool:
        return bool(self.certificate.passed) and np.isfinite(self.value)


def leader_infeasibility(lp, x, y, p, lam, mu) -> float:
    """Largest violation of the leader's constraints, multiplier-dependent rows included."""
    G = lp.evaluate("upper_ineq", x, y, p, lam, mu)
    H = lp.evaluate("upper_eq", x, y, p, lam, mu)
    return float(max(np.max(np.maximum(-G, 0.0), initial=0.0), np.max(np.abs(H), initial=0.0)))


def price_candidate(lp, view, follower: FollowerSolver, x, y, lam, mu, p, source: str, pessimistic: bool,
                    cert_opts: dict, ipopt_status: str = "Solve_Succeeded") -> Priced:
    """Implement the point, certify the follower's side, value F over the multiplier set and check
    the multipliers reported (see module docstring)."""
    xp, y, lam2, mu2, _ = implemented_point(view, follower, x, y, p, lam, mu)
    lam = lam2 if lam2 is not None else lam
    mu = mu2 if mu2 is not None else mu
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
    lam, mu = np.asarray(lam, float), np.asarray(mu, float)
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
    return Priced(xp, np.asarray(y, float), lam, mu, float(value), cert, rng, source, ipopt_status)


def _grid(view, x0: np.ndarray, n: int) -> list[np.ndarray]:
    lo, hi = leader_box(view)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or n < 2:
        return []
    axes = [np.linspace(a, b, n) for a, b in zip(lo, hi)]
    return [np.array(v) for v in np.stack(np.meshgrid(*axes), -1).reshape(-1, len(lo))]


def _sense(problem, v: float) -> float:
    return -v if problem.upper_sense == "max" else v


def multiplier_info(problem, lp, c: Priced) -> dict:
    """What r.info["multipliers"] says about the chosen point's multiplier set."""
    rng = c.range
    names = [str(n) for n in lp.g_names] + [str(n) for n in lp.h_names]
    used = sorted({str(s.constraint) for s in problem.multiplier_symbols})
    out = {"licq": bool(rng.licq), "unique": bool(rng.unique), "used": used, "computed": rng.computed}
    if rng.computed and rng.feasible:
        best, worst = _sense(problem, rng.low), _sense(problem, rng.high)
        out.update(optimistic=best, pessimistic=worst,
                   F_range=(min(best, worst), max(best, worst)))
        if not rng.unique:
            ng = int(lp.g.numel())
            spread = {}
            if rng.nu_low is not None and rng.nu_high is not None:
                spread = {names[i]: (float(min(a, b)), float(max(a, b))) for i, (a, b)
                          in enumerate(zip(rng.nu_low, rng.nu_high)) if abs(a - b) > 1e-9 * (1 + abs(a))}
            out["note"] = (f"LICQ fails at the solution, so the follower's multipliers are not unique and F depends on "
                           f"them: over the multiplier set the leader's objective ranges over "
                           f"[{out['F_range'][0]:.10g}, {out['F_range'][1]:.10g}] (optimistic {best:.10g}, "
                           f"pessimistic {worst:.10g})" + (f"; multipliers that differ: {spread}" if spread else ""))
            del ng
    elif not rng.computed:
        out["note"] = rng.reason + (" (LICQ fails: the multipliers may not be unique)" if not rng.licq else "")
    return out


def solve_kkt_multipliers(problem: Any, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
                          start: Mapping | None = None, n_starts: int = 4, seed: int = 0,
                          time_limit: float | None = None, nonsmooth: str = "error", pessimistic: bool = False,
                          schedule: tuple | None = None, ipopt_options: dict | None = None, sample_dims: int = 1,
                          n_grid: int = 21, n_homotopies: int = 4, certify_starts: int = 8, gap_tol: float = GAP_TOL,
                          feas_tol: float = FEAS_TOL, **_ignored: Any) -> BilevelResult:
    """The KKT route for a leader that uses follower multipliers (see module docstring)."""
    from ..solve.starts import leader_starts
    from .kkt import _check_smooth
    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + time_limit
    scheme = Relaxation.parse(relaxation)
    _check_smooth(problem, nonsmooth)
    lp = lower(problem)
    view = follower_view(lp)
    p = problem.parameter_vector(parameters)
    x0, y0 = problem.start_vectors(start)
    follower = FollowerSolver(view, tight=True)
    cert_opts = dict(n_random=certify_starts, gap_tol=gap_tol, feas_tol=feas_tol, seed=seed)
    late = lambda: deadline is not None and time.monotonic() > deadline  # noqa: E731
    xs = leader_starts(view, x0, n_starts, seed)
    if lp.n_x <= sample_dims:
        xs += _grid(view, x0, n_grid)
    pool: list[Priced] = []
    replies = []
    for x in xs:
        if late() and pool:
            break
        fs = follower.solve(x, p, y0)
        if not fs.success:
            continue
        replies.append((x, fs))
        pool.append(price_candidate(lp, view, follower, x, fs.y, fs.lam, fs.mu, p, "reply", pessimistic, cert_opts))
    rows: list[dict] = []
    statuses: dict[str, int] = {}
    if not pessimistic:  # the MPCC lets the leader pick y and the multiplier: the optimistic reading
        chain = Chain([Bilevel2MPCC(), MPCCRelax(scheme)])
        relaxed, inv = chain.apply(lp)
        hom = Homotopy(relaxed, schedule, ipopt_options)
        order = sorted(range(len(replies)), key=lambda k: pool[k].value if k < len(pool) else np.inf)
        chosen = list(range(min(n_starts, len(replies)))) + [k for k in order if k >= n_starts][:max(n_homotopies - n_starts, 0)]
        chosen += [k for k in order[:2] if k not in chosen]
        for k in chosen:
            if late() and pool:
                break
            x, fs = replies[k]
            w0 = initial_w(relaxed.mpcc, x, fs.y, p, fs.lam, fs.mu)
            h = hom.run(w0, p, start=k, deadline=deadline)
            rows += [dict(s.as_dict(), relaxation=scheme.value) for s in h.steps]
            statuses[h.ipopt_status] = statuses.get(h.ipopt_status, 0) + 1
            if not h.success:
                continue
            sol = chain.invert(h.w, inv)
            pool.append(price_candidate(lp, view, follower, sol.x, sol.y, sol.lam, sol.mu, p, "homotopy", False,
                                        cert_opts, h.ipopt_status))
        run = lambda x, fs: _homotopy_candidate(lp, view, follower, chain, inv, hom, x, fs, p, cert_opts,  # noqa: E731
                                                rows, statuses, scheme, deadline)
        _pivot(lp, view, follower, pool, p, y0, run, late, cert_opts)
    return pick(problem, lp, p, pool, rows, scheme.value, time.monotonic() - t0, pessimistic, statuses)


def _homotopy_candidate(lp, view, follower, chain, inv, hom, x, fs, p, cert_opts, rows, statuses, scheme, deadline):
    w0 = initial_w(hom.relaxed.mpcc, x, fs.y, p, fs.lam, fs.mu)
    h = hom.run(w0, p, start=-7, deadline=deadline)
    rows += [dict(s.as_dict(), relaxation=scheme.value, phase="pivot") for s in h.steps]
    statuses[h.ipopt_status] = statuses.get(h.ipopt_status, 0) + 1
    if not h.success:
        return None
    sol = chain.invert(h.w, inv)
    return price_candidate(lp, view, follower, sol.x, sol.y, sol.lam, sol.mu, p, "pivot", False, cert_opts,
                           h.ipopt_status)


def _pivot(lp, view, follower, pool: list[Priced], p, y0, run, late, cert_opts, rounds: int = 4,
           bisections: int = 30) -> None:
    """Leave a corner of the MPCC where the homotopy stopped.

    An eps -> 0 homotopy can end at a C-stationary point: a multiplier and its slack are both
    zero and the leader's descent needs the other branch of that pair. From the best proven
    candidate, the follower's reply is evaluated along each leader coordinate (both signs) with
    doubling steps while the leader's value improves, then bisected towards the first step that
    does not improve (where the reply jumps: the next kink of the reduced objective); the homotopy
    restarts from the best such reply. Only ever adds candidates, each priced and certified.
    """
    lo, hi = leader_box(view)
    for _ in range(rounds):
        proven = [c for c in pool if c.ok]
        if not proven or late():
            return
        best = min(proven, key=lambda c: c.value)
        tol = 1e-9 * (1 + abs(best.value))

        def at(i, t):
            x = best.x.copy()
            x[i] = np.clip(x[i] + t, lo[i], hi[i])
            fs = follower.solve(x, p, best.y)
            if not fs.success:
                return None, None
            c = price_candidate(lp, view, follower, x, fs.y, fs.lam, fs.mu, p, "step", False, cert_opts)
            return (c, fs) if c.ok else (None, None)

        found = None
        for i in range(lp.n_x):
            for sgn in (1.0, -1.0):
                t, good, bad = sgn * 1e-4 * (1 + abs(best.x[i])), None, None
                while abs(t) < 1e6 * (1 + abs(best.x[i])):
                    c, fs = at(i, t)
                    if c is not None and c.value < (good[0].value if good else best.value) - tol:
                        good = (c, fs, t)
                        if best.x[i] + t <= lo[i] or best.x[i] + t >= hi[i]:
                            break
                        t *= 2
                    else:
                        bad = t
                        break
                if good is None:
                    continue
                if bad is not None:
                    tg = good[2]
                    for _ in range(bisections):
                        tm = (tg + bad) / 2
                        c, fs = at(i, tm)
                        if c is not None and c.value < good[0].value - tol:
                            good, tg = (c, fs, tm), tm
                        else:
                            bad = tm
                found = good
                break
            if found:
                break
        if found is None:
            return
        pool.append(found[0])
        h = run(found[0].x, found[1])
        if h is not None:
            pool.append(h)


def pick(problem, lp, p, pool: list[Priced], rows, relaxation, elapsed, pessimistic: bool, statuses=None,
         method: str = "kkt", extra_info: dict | None = None, optimality: str = "local",
         stats: SolverStats | None = None) -> BilevelResult:
    """The answer from the valued candidates: unbounded through the multiplier set, the best proven
    point, or the best unproven one."""
    base = dict(problem=problem, method=method, parameters=p, log=rows, relaxation=relaxation, time_s=elapsed)
    info = {"formulation": "pessimistic" if pessimistic else "optimistic", **(extra_info or {}),
            "candidates": [(c.source, c.x.tolist(), _sense(problem, c.value), bool(c.certificate.passed)) for c in pool]}
    stats = stats or SolverStats("ipopt", max(statuses, key=statuses.get) if statuses else "Solve_Succeeded")
    if not pool:
        return BilevelResult(status=Status.SOLVER_FAILED, solver_stats=stats, info=info,
                             message=f"no leader point gave a follower reply (statuses {statuses})", **base)
    follower_ok = [c for c in pool if c.certificate.proof in ("convex", "global") and not c.certificate.follower_unbounded]
    if not pessimistic:
        drop = [c for c in follower_ok if c.range.computed and c.range.feasible and c.range.low == -np.inf]
        if drop:
            c = drop[0]
            info["multipliers"] = multiplier_info(problem, lp, c)
            info["unbounded_at"] = {"x": c.x.tolist(), "y": c.y.tolist()}
            return BilevelResult(status=Status.UNBOUNDED, solver_stats=stats, info=info, message=(
                f"the follower's multipliers are not unique at x = {np.round(c.x, 10).tolist()} (LICQ fails) and the "
                "leader's objective is unbounded over the multiplier set: choosing the multiplier alone drives F to "
                f"{'+' if problem.upper_sense == 'max' else '-'}infinity (the KKT reformulation's pitfall; state "
                "each constraint once, or use formulation='pessimistic')"), **base)
    proven = [c for c in pool if c.ok]
    best = min(proven or pool, key=lambda c: (not np.isfinite(c.value), c.value))
    status = Status.OPTIMAL if proven else Status.NOT_CERTIFIED
    info["multipliers"] = multiplier_info(problem, lp, best)
    info["proof"] = best.certificate.proof
    message = "" if proven else "; ".join(best.certificate.reasons)
    if pessimistic:
        info["note"] = ("pessimistic over the multipliers: each leader point is valued with the worst multiplier in the "
                        "follower's multiplier set (an LP); the follower's reply y is its own optimum")
    return BilevelResult(status=status, x=best.x, y=best.y, lam=best.lam, mu=best.mu, certificate=best.certificate,
                         solver_stats=stats, optimality=optimality if proven else "local", message=message,
                         info=info, **base)


def solve_with_multipliers(problem: Any, method: str = "kkt", formulation: str = "optimistic",
                           **options: Any) -> BilevelResult:
    """Dispatch for problems whose leader uses ``wb.multiplier``: only multiplier-aware routes."""
    if formulation not in ("optimistic", "pessimistic"):
        raise MethodError(f"formulation must be 'optimistic' or 'pessimistic', got {formulation!r}")
    pess = formulation == "pessimistic"
    if method == "auto":
        from ..analysis._lp_form import nonlinear_in
        lp_follower = all(nonlinear_in(e, problem.follower) is None
                          for e in [problem.f] + [c.expr for c in problem.g + problem.h])
        method = "global_kkt" if lp_follower and not pess else "kkt"
    if method == "kkt":
        return solve_kkt_multipliers(problem, pessimistic=pess, **options)
    if method in ("global_kkt", "milp", "strong_duality"):
        if pess:
            raise MethodError(f"method={method!r} solves the optimistic problem; use method='kkt' with "
                              "formulation='pessimistic' for the worst multiplier")
        from .shadow_lp import solve_global_kkt
        return solve_global_kkt(problem, requested=method, **options)
    raise MethodError(f"the leader of {problem.name!r} uses follower multipliers ({sorted(map(str, problem.multiplier_symbols))}), "
                      f"which method={method!r} does not know; use method='kkt', 'global_kkt' (LP followers, SCIP) or 'auto'")

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
from typing import Any, Mapping

import numpy as np

from ..certify import leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..certify.priced import Priced, price_candidate, priced_result
from ..errors import MethodError
from ..lower import follower_view, lower
from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from ..result import BilevelResult
from ..solve import FollowerSolver, Homotopy

AWARE = ("kkt", "global_kkt", "auto", "milp", "strong_duality")


def _grid(view, x0: np.ndarray, n: int) -> list[np.ndarray]:
    lo, hi = leader_box(view)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or n < 2:
        return []
    axes = [np.linspace(a, b, n) for a, b in zip(lo, hi)]
    return [np.array(v) for v in np.stack(np.meshgrid(*axes), -1).reshape(-1, len(lo))]


def solve_kkt_multipliers(problem: Any, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
                          start: Mapping | None = None, n_starts: int = 4, seed: int = 0,
                          time_limit: float | None = None, nonsmooth: str = "error", pessimistic: bool = False,
                          schedule: tuple | None = None, ipopt_options: dict | None = None, sample_dims: int = 1,
                          n_grid: int = 21, n_homotopies: int = 4, certify_starts: int = 8, gap_tol: float = GAP_TOL,
                          feas_tol: float = FEAS_TOL, **_ignored: Any) -> BilevelResult:
    """The KKT route for a leader that uses follower multipliers (see module docstring)."""
    from .kkt import _check_smooth, leader_starts
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
    return priced_result(problem, lp, p, pool, rows, scheme.value, time.monotonic() - t0, pessimistic, statuses)


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

"""Leaders paid with (or constrained by) follower multipliers: the KKT route with shadow prices.

``wb.multiplier("balance")`` in F or G is the multiplier of the follower's constraint
"balance" (README sign convention). The KKT reformulation already has the multipliers as
variables, so the MPCC simply uses them (``Bilevel2MPCC`` substitutes them):

    min_{x, y, lam, mu} F(x, y, lam, mu)  s.t.  G(x, y, lam, mu) >= 0, H = 0,
                                              grad_y L = 0, h = 0, 0 <= g ⊥ lam >= 0.

The optimistic reading lets the leader pick the multiplier too when the follower's multipliers
are not unique (LICQ fails), which is why the seed warns that the leader may drive F to
-infinity through the multiplier set. Every candidate is therefore valued by
``certify.priced.price_candidate``: over its multiplier set (two HiGHS LPs), and for an LP
follower over its whole optimal face (y need not be unique either); the optimistic value is the
minimum, the pessimistic (``formulation="pessimistic"``) the maximum, and an unbounded minimum is
``unbounded`` (``certify.priced.priced_result``).

The composition: follower replies at the leader starts (the user's x0, random points and, for a
leader of at most ``sample_dims`` variables, a grid over its box), the eps -> 0 homotopy on the
relaxed MPCC from the best of them, then ``solve.leader_pivot.kink_search`` to leave corners where
a homotopy stopped. ``method="global_kkt"`` (LP followers) is ``routes.shadow_lp``.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..certify import leader_box
from ..certify.certificate import FEAS_TOL, GAP_TOL
from ..certify.priced import Priced, price_candidate, priced_result
from ..errors import MethodError
from ..lower import follower_view, lower
from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from ..result import BilevelResult
from ..solve import FollowerSolver, Homotopy
from ..solve.leader_pivot import grid_points, kink_search

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

AWARE = ("kkt", "global_kkt", "auto", "milp", "strong_duality")


def solve_kkt_multipliers(problem: Problem, relaxation: "str | Relaxation" = "scholtes", parameters: Mapping | None = None,
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
        xs += grid_points(*leader_box(view), n_grid)
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
        def evaluate(x, best):
            fs = follower.solve(x, p, best.y)
            c = price_candidate(lp, view, follower, x, fs.y, fs.lam, fs.mu, p, "step", False, cert_opts) \
                if fs.success else None
            return (c, fs) if c is not None and c.ok else (None, None)

        restart = lambda c, fs: _homotopy_candidate(lp, view, follower, chain, inv, hom, c.x, fs, p,  # noqa: E731
                                                    cert_opts, rows, statuses, scheme, deadline)
        kink_search(pool, evaluate, restart, *leader_box(view), late)
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


def solve_with_multipliers(problem: Problem, method: str = "kkt", formulation: str = "optimistic",
                           **options: Any) -> BilevelResult:
    """Dispatch for problems whose leader uses ``wb.multiplier``: only multiplier-aware routes."""
    if formulation not in ("optimistic", "pessimistic"):
        raise MethodError(f"formulation must be 'optimistic' or 'pessimistic', got {formulation!r}")
    pess = formulation == "pessimistic"
    if method == "auto":
        from ..reformulate.linear import nonlinear_in
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

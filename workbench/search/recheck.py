"""The final re-check of the KKT search: optimistic selection, rounded leader points, and a
strong follower multistart at unproven candidates that beat the best proven one.

Nothing here edits a certificate: a candidate that is re-checked or superseded is replaced
in the pool by a new value (``dataclasses.replace``) with its new status and a note. A
sampled candidate is never called optimal; the strong multistart only serves the search,
by finding better replies to restart the homotopies from.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..certify import certify
from ..values import Point
from .homotopies import Start
from .pool import PROVEN, RECHECKED, SUPERSEDED, UNPROVEN, Candidate, CandidatePool, Origin
from .selection import optimistic_reply


def select_optimistically(pool: CandidatePool, c: Candidate) -> None:
    """Move y within the follower's optimal set towards the leader (reformulate/optimistic_selection.py).

    Solved with a loose and a 10^4 times tighter value tolerance: on a genuine face of optimal
    replies the leader's gain is the same; a gain that only exploits the tolerance (it grows
    like sqrt(tol) for a strict minimum) shrinks, and is refused. A reply that is kept and
    certified supersedes c.
    """
    lp, p, opts = pool.lp, pool.p, pool.ipopt_options
    loose = optimistic_reply(lp, c.x, p, c.y, c.certificate.phi, tol=1e-8, ipopt_options=opts)
    y = optimistic_reply(lp, c.x, p, c.y if loose is None else loose, c.certificate.phi, tol=1e-12, ipopt_options=opts)
    if loose is None or y is None:
        return
    gain_loose = c.upper - float(lp.evaluate("upper_objective", c.x, loose, p)[0])
    gain = c.upper - float(lp.evaluate("upper_objective", c.x, y, p)[0])
    if gain <= 1e-7 * (1 + abs(c.upper)) or gain < 0.5 * gain_loose:
        return
    fs = pool.follower.solve(c.x, p, y)  # multipliers of the selected reply
    cert = pool.certify(c.x, y, fs.lam if fs.success else None, fs.mu if fs.success else None)
    if cert.passed:
        pool.add(Point(c.x, y, fs.lam if fs.success else c.lam, fs.mu if fs.success else c.mu), cert,
                 Origin(-3, c.origin.solver_status))
        pool.replace(c, replace(c, status=SUPERSEDED, notes=c.notes + (
            "superseded by the optimistic choice in the follower's optimal set",)))


def snap_refuted(pool: CandidatePool, bar: float, n_candidates: int = 3, decimals: tuple = (3, 2, 1, 0)) -> None:
    """Leader points rounded to a few decimals, tried where a refuted candidate beat ``bar``.

    Where the follower's reply jumps, the leader's best point can be isolated: MitsosBarton2006Ex313
    has F = -1 only at exactly x = 0 (f = 0 for every y there), F > 0 on both sides, and the KKT
    search stalls at x = -0.0017 because a tolerance separates the two replies. Rounded points are
    only candidates: each is implemented exactly and has to pass the certificate.
    """
    refuted, seen = [], set()
    for c in sorted((c for c in pool.candidates if c.certificate.better_y is not None and c.upper < bar),
                    key=lambda c: c.upper):
        k = np.round(c.x, 9).tobytes()
        if k not in seen:
            seen.add(k)
            refuted.append(c)
    tried: set = set()
    for c in refuted[:n_candidates]:
        for d in decimals:
            if pool.late():
                return
            xs = np.round(c.x, d) + 0.0
            key = xs.tobytes()
            if key in tried or np.array_equal(xs, c.x):
                continue
            tried.add(key)
            for y in (c.y, c.certificate.better_y):
                if pool.add_exact(Point(xs, y), -7, c.origin.solver_status).ok:
                    break


def final_check(pool: CandidatePool, strong_starts: int = 30, grid: int = 9, max_checks: int = 4,
                snap: bool = True) -> list[Start]:
    """Optimistic selection at the best proven points; for unproven ("sampled") candidates that
    beat them, a much larger follower multistart looking for a better reply to restart from.

    Leader values within 1e-8 of 0 are also tried at exactly 0, where the follower may have
    several optimal replies (MitsosBarton2006Ex313: f = 0 at x = 0 only); the certificate and
    the optimistic selection decide, nothing is assumed.
    """
    proven = pool.proven()
    for c in proven[:2]:
        small = (np.abs(c.x) < 1e-8) & (c.x != 0)
        if small.any():
            snapped = pool.add_exact(Point(np.where(small, 0.0, c.x), c.y, c.lam, c.mu), -6, c.origin.solver_status)
            if snapped.ok:
                select_optimistically(pool, snapped)
    if snap:  # the bar is the best proven value before the snapped points
        snap_refuted(pool, proven[0].upper if proven else np.inf)
    proven = pool.proven()
    if proven:
        select_optimistically(pool, proven[0])
    bar = proven[0].upper if proven else np.inf
    ranked = sorted((c for c in pool.candidates if c.status == UNPROVEN and c.certificate.proof == "sampled"
                     and c.upper < bar), key=lambda c: c.upper)
    restarts = []
    lp = pool.lp
    for c in ranked[:max_checks]:
        if pool.late():
            break
        n_random = max(strong_starts, 10 * lp.n_y)
        opts = dict(pool.cert_opts, n_random=n_random, seed=pool.cert_opts["seed"] + 7919)
        strong = certify(lp, c.x, c.y, pool.p, c.lam, pool.follower, grid=grid, mu=c.mu, use_global=False, **opts)
        pool.replace(c, replace(c, certificate=strong, status=PROVEN if strong.passed else RECHECKED, notes=c.notes + (
            f"re-checked with a strong follower multistart ({n_random} random starts and a {grid}-point grid)",)))
        if strong.better_y is not None:
            restarts.append(Start(Point(c.x, strong.better_y)))
            pool.add_cut(strong.better_y)
    return restarts

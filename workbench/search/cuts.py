"""The value-function cut loop: the high-point relaxation, re-solved while certificates refute it.

Each round solves ``reformulate/high_point.py`` (both levels' constraints and the cuts
f(x, y) <= f(x, y_k)) from the last point, implements and certifies its answer, and adds
the better reply y_k the certificate found as a new cut; it stops at a proven point, when
no better reply is found, or when a cut repeats. Valid only when the follower's feasible
set does not depend on x (``pool.cuts_ok``). The NLP of each set of cuts is compiled once
per problem (``lp.cached``).
"""
from __future__ import annotations

import numpy as np

from ..certify import Certificate, leader_box
from ..lower import LoweredProblem
from ..reformulate.high_point import HighPointRelaxation
from ..solve import IpoptSolver
from ..values import Point
from .homotopies import Homotopies, Start
from .pool import CandidatePool, Origin


def _high_point(lp: LoweredProblem, cuts: list[np.ndarray], ipopt_options: dict | None):
    key = (f"high_point {sorted((ipopt_options or {}).items())!r} " + " ".join(c.tobytes().hex() for c in cuts))

    def make():
        reduction = HighPointRelaxation(cuts)
        nlp, inv = reduction.apply(lp)
        return IpoptSolver(nlp, ipopt_options, name="high_point"), reduction, inv
    return lp.cached(key, make)


def _implement(pool: CandidatePool, x, y) -> tuple[Point, Certificate]:
    """Project x onto the leader's bounds, replace y by the follower's exact local reply from y
    (tight Ipopt) when it is no worse, then certify."""
    lp = pool.lp
    lo, hi = leader_box(lp)
    x = np.clip(np.asarray(x, float), lo, hi)
    fs = pool.follower.solve(x, pool.p, y)
    f_y = float(lp.evaluate("lower_objective", x, y, pool.p)[0])
    if fs.success and fs.value <= f_y + 1e-9 * (1 + abs(f_y)):
        y, lam, mu = fs.y, fs.lam, fs.mu
    else:
        lam, mu = np.zeros(int(lp.g.numel())), np.zeros(int(lp.h.numel()))
    return Point(x, y, lam, mu), pool.certify(x, y, lam, mu)


def value_function_cuts(pool: CandidatePool, x0, y0, max_rounds: int = 8) -> list[tuple[Point, Certificate]]:
    """The cut loop from (x0, y0) with the pool's cuts (see module docstring); every point solved."""
    lp, out = pool.lp, []
    cuts = [np.asarray(c, float) for c in pool.cuts]
    x, y = np.asarray(x0, float), np.asarray(y0, float)
    for _ in range(max_rounds):
        if pool.late():
            break
        solver, reduction, inv = _high_point(lp, cuts, pool.ipopt_options)
        r = solver.solve(np.concatenate([x, y]), pool.p)
        if not r.success:
            break
        hp = reduction.invert(r.w, inv)
        point, cert = _implement(pool, hp.x, hp.y)
        x, y = point.x, point.y
        out.append((point, cert))
        if cert.passed or cert.better_y is None:
            break
        if any(np.allclose(cert.better_y, c, atol=1e-8) for c in cuts):
            break
        cuts.append(cert.better_y)
    return out


def cut_loop(pool: CandidatePool, polish: Homotopies, x0, y0) -> None:
    """The cut loop from the best point so far, and from the best refuted point below it.

    Where the follower's reply jumps, the cut f(x, y) <= f(x, y_better) moves such a point to
    where its reply ties with the better one (MitsosBarton2006Ex313: from x = -0.0017, y = 1 to
    x = 0, y = 1), which the optimistic follower may choose. A proven point found is polished
    on the exact KKT system, with the cuts in place.
    """
    best = pool.best()
    starts = [(best.x, best.y) if best is not None else (x0, y0)]
    bar = best.upper if best is not None and best.ok else np.inf
    refuted = [c for c in pool.candidates if c.certificate.better_y is not None and c.upper < bar]
    if refuted:
        r = min(refuted, key=lambda c: c.upper)
        starts.append((r.x, r.y))
    found: list[tuple[Point, Certificate]] = []
    for xs, ys in starts:
        if pool.late():
            break
        found += value_function_cuts(pool, xs, ys)
    for point, cert in found:
        pool.add(point, cert, Origin(-1, "Solve_Succeeded"))
        if cert.better_y is not None:
            pool.add_cut(cert.better_y)
    passed = [Start(point) for point, cert in found if cert.passed]
    if passed and not pool.late():
        polish(passed[-1:], rnd=-1)

"""Homotopies from starts: the KKT search's main strategy.

    lower -> Bilevel2MPCC(cuts) -> MPCCRelax(scheme) -> Homotopy (Ipopt) -> invert -> pool.add_exact

Each start runs one eps -> 0 homotopy on the relaxed MPCC with the pool's current cuts; each
end point is implemented, certified and kept. A certificate that finds a better follower
reply y_k at x yields a restart from (x, y_k) and, where the cuts are valid, the cut
f(x, y) <= f(x, y_k). The chain and its two Ipopt solvers are compiled once per problem and
set of cuts (``lp.cached``), not once per call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from ..solve import Homotopy
from ..values import Point
from .pool import CandidatePool


@dataclass(frozen=True)
class Start:
    """A homotopy start: the point as given (with its multipliers, if any) or, with ``respond``,
    its x paired with the follower's reply there (a KKT-consistent start with multipliers)."""

    point: Point
    respond: bool = False


class Homotopies:
    """Runs homotopies from starts into a pool (see module docstring)."""

    def __init__(self, pool: CandidatePool, scheme: Relaxation, schedule: tuple | None = None,
                 ipopt_options: dict | None = None):
        self.pool, self.scheme, self.schedule, self.ipopt_options = pool, scheme, schedule, ipopt_options

    def compiled(self):
        """(chain, relaxed NLP, inverse data, Homotopy) for the pool's current cuts."""
        lp, cuts = self.pool.lp, self.pool.cuts
        key = (f"kkt_homotopy {self.scheme.value} {self.schedule!r} {sorted((self.ipopt_options or {}).items())!r} "
               + " ".join(c.tobytes().hex() for c in cuts))

        def make():
            chain = Chain([Bilevel2MPCC(list(cuts)), MPCCRelax(self.scheme)])
            relaxed, inv = chain.apply(lp)
            return chain, relaxed, inv, Homotopy(relaxed, self.schedule, self.ipopt_options)
        return lp.cached(key, make)

    def _w0(self, mpcc, start: Start) -> np.ndarray:
        pool, pt = self.pool, start.point
        if start.respond:  # start the MPCC at the follower's reply to x when it solves
            fs = pool.follower.solve(pt.x, pool.p, pt.y)
            if fs.success:
                return initial_w(mpcc, pt.x, fs.y, pool.p, fs.lam, fs.mu)
        return initial_w(mpcc, pt.x, pt.y, pool.p, pt.lam, pt.mu)

    def __call__(self, starts: list[Start], rnd: int, stop_on_consensus: bool = False) -> list[Start]:
        """One homotopy per start; returns restarts from the better replies certificates found."""
        pool = self.pool
        chain, relaxed, inv, hom = self.compiled()
        restarts = []
        for k, start in enumerate(starts):
            if pool.late() and pool.candidates:
                break
            h = hom.run(self._w0(relaxed.mpcc, start), pool.p, start=k, deadline=pool.deadline)
            pool.rows += [dict(s.as_dict(), round=rnd, relaxation=self.scheme.value) for s in h.steps]
            pool.statuses[h.ipopt_status] += 1
            if not h.success:
                continue
            sol = chain.invert(h.w, inv)
            c = pool.add_exact(sol, k, h.ipopt_status,
                               h.steps[-1].leader_stationarity if h.steps else float("nan"))
            if c.certificate.better_y is not None:
                restarts.append(Start(Point(c.x, c.certificate.better_y)))
                pool.add_cut(c.certificate.better_y)
            if stop_on_consensus and pool.consensus():
                break
        return restarts

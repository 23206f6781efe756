"""The optimistic reply at a fixed x: the solver call of ``reformulate/optimistic_selection.py``.

One compiled NLP per problem and Ipopt options (``lp.cached``), with Ipopt's bound relaxation
off: the reply must satisfy the follower's constraints exactly.
"""
from __future__ import annotations

import numpy as np

from ..lower import LoweredProblem
from ..reformulate.optimistic_selection import OptimisticSelection
from ..solve import IpoptSolver


def _solver(lp: LoweredProblem, ipopt_options: dict | None) -> tuple[IpoptSolver, OptimisticSelection, dict]:
    options = dict(ipopt_options or {}, **{"ipopt.bound_relax_factor": 0.0})

    def make():
        reduction = OptimisticSelection()
        nlp, inv = reduction.apply(lp)
        return IpoptSolver(nlp, options, name="optimistic_selection"), reduction, inv
    return lp.cached(f"optimistic_selection {sorted(options.items())!r}", make)


def optimistic_reply(lp: LoweredProblem, x: np.ndarray, p: np.ndarray, y: np.ndarray, phi: float,
                     tol: float = 1e-9, ipopt_options: dict | None = None) -> np.ndarray | None:
    """min_y F(x, y) over the follower's replies with f <= phi + tol (1 + |phi|), from y; None on failure."""
    solver, reduction, inv = _solver(lp, ipopt_options)
    r = solver.solve(y, reduction.parameters(x, p, phi, tol))
    return reduction.invert(r.w, inv) if r.success else None

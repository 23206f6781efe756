"""The implemented point: what the leader can actually announce, and what the follower then does.

A solver's x may sit outside the leader's simple bounds by Ipopt's ``bound_relax_factor``
(1e-8) and its y may satisfy the follower's constraints only within a tolerance. Both can
be worth leader gain that does not exist (Zlobec2001b: x = -1e-8 gives F = 0, x = 0 gives
F = 1). So x is projected onto the bounds *exactly* and, where y is then not exactly
feasible, y is replaced by the follower's exact reply at that x (tight Ipopt from y). A y
that stays feasible is kept (an interior-point re-solve would leave an optimal face's
optimistic vertex); the certificate then decides whether it is still the follower's best
reply. F is reported at the implemented point.
"""
from __future__ import annotations

import numpy as np

from ..lower import LoweredProblem
from ..solve import FollowerSolver
from .certificate import leader_box
from .residuals import infeasibility

EXACT_TOL = 1e-9  # a follower point violating its constraints by more is re-solved


def implemented_point(lp: LoweredProblem, follower: FollowerSolver, x, y, p, lam=None, mu=None):
    """``(x, y, lam, mu, moved)`` at the implemented point (see module docstring)."""
    lo, hi = leader_box(lp)
    x = np.asarray(x, float).reshape(-1)
    xp = np.clip(x, lo, hi)
    moved = not np.array_equal(xp, x)
    if infeasibility(lp, xp, y, p, "lower") > EXACT_TOL:
        fs = follower.solve(xp, p, y)
        if fs.success:
            return xp, fs.y, fs.lam, fs.mu, moved
    return xp, np.asarray(y, float), lam, mu, moved

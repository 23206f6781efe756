"""Leave a corner of the MPCC where an eps -> 0 homotopy stopped: a kink search over the leader.

An eps -> 0 homotopy can end at a C-stationary point: a multiplier and its slack are both zero and
the leader's descent needs the other branch of that pair. From the best proven candidate,
:func:`kink_search` evaluates the follower's reply along each leader coordinate (both signs) with
doubling steps while the leader's value improves, then bisects towards the first step that does not
improve (where the reply jumps: the next kink of the reduced objective), and restarts the homotopy
from the best such reply. It only ever adds candidates; how a leader point is valued and proven
(``evaluate``) and how the homotopy restarts (``restart``) are the caller's, so this search knows
nothing of certificates.

A candidate is anything with ``x`` (leader point), ``value`` (minimisation sense) and ``ok``
(proven); ``evaluate(x, best)`` returns ``(candidate, aux)`` for a proven reply at x, else
``(None, None)``; ``restart(candidate, aux)`` returns a candidate or None.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def grid_points(lo: np.ndarray, hi: np.ndarray, n: int) -> list[np.ndarray]:
    """n points per axis over a finite box (none when a bound is infinite or n < 2)."""
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or n < 2:
        return []
    axes = [np.linspace(a, b, n) for a, b in zip(lo, hi)]
    return [np.array(v) for v in np.stack(np.meshgrid(*axes), -1).reshape(-1, len(lo))]


def _line(best: Any, i: int, lo: np.ndarray, hi: np.ndarray, evaluate: Callable, bisections: int,
          tol: float) -> tuple | None:
    """Along coordinate i (both signs): the best improving (candidate, aux, step) up to the next kink."""
    for sgn in (1.0, -1.0):
        def at(t):
            x = best.x.copy()
            x[i] = np.clip(x[i] + t, lo[i], hi[i])
            return evaluate(x, best)
        t, good, bad = sgn * 1e-4 * (1 + abs(best.x[i])), None, None
        while abs(t) < 1e6 * (1 + abs(best.x[i])):
            c, aux = at(t)
            if c is not None and c.value < (good[0].value if good else best.value) - tol:
                good = (c, aux, t)
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
                c, aux = at(tm)
                if c is not None and c.value < good[0].value - tol:
                    good, tg = (c, aux, tm), tm
                else:
                    bad = tm
        return good
    return None


def kink_search(pool: list, evaluate: Callable[[np.ndarray, Any], tuple[Any, Any]],
                restart: Callable[[Any, Any], Any], lo: np.ndarray, hi: np.ndarray,
                late: Callable[[], bool], rounds: int = 4, bisections: int = 30) -> None:
    """Add to ``pool`` the replies and restarted homotopies of the search in the module docstring."""
    for _ in range(rounds):
        proven = [c for c in pool if c.ok]
        if not proven or late():
            return
        best = min(proven, key=lambda c: c.value)
        tol = 1e-9 * (1 + abs(best.value))
        found = None
        for i in range(best.x.size):
            found = _line(best, i, lo, hi, evaluate, bisections, tol)
            if found:
                break
        if found is None:
            return
        pool.append(found[0])
        h = restart(found[0], found[1])
        if h is not None:
            pool.append(h)

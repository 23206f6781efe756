"""Per-thread CasADi objects and one lock for building them.

Why: a CasADi Function evaluated through a shared buffer, or an ``nlpsol`` with its
memory, must not be called from two threads at once, and building CasADi
expressions touches reference counts of shared nodes (not atomic). So numeric
objects are kept one per thread (``per_thread``) and every construction runs under
``BUILD_LOCK``; after that the numeric calls of different threads share nothing.
"""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Hashable

import numpy as np

from ..lower.lowered import BUILD_LOCK  # one lock for every CasADi construction (no lock-order deadlock)

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem
_LOCAL = threading.local()


def per_thread(owner: Any, key: Hashable, factory: Callable[[], Any]) -> Any:
    """The object ``factory()`` built once per (thread, owner, key); dropped with ``owner``.

    ``owner`` is usually the lowered problem; its id keys the cache, and a finaliser
    removes the entry from this thread's cache when the owner is collected.
    """
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    full = (id(owner), key)
    hit = cache.get(full)
    if hit is None:
        with BUILD_LOCK:
            hit = factory()
        cache[full] = hit
        try:
            weakref.finalize(owner, cache.pop, full, None)
        except TypeError:  # owner not weak-referenceable: keep the entry for the thread's life
            pass
    return hit


__all__ = ["BUILD_LOCK", "per_thread"]


_NAMES = ("upper_objective", "upper_ineq", "upper_eq", "lower_objective", "lower_ineq", "lower_eq")


def prepared(problem: Problem) -> Any:
    """``lower(problem)`` with every shared CasADi Function built, under the lock, once.

    After this, threads only *evaluate* the shared Functions (each call checks out its own
    work memory) and build their own solvers/evaluators through :func:`per_thread`.
    """
    from ..lower import lower
    from .kkt_matrix import kkt_function, upper_gradient_function

    def build() -> bool:
        for name in _NAMES:
            lp.function(name)
        kkt_function(lp)
        if lp.multiplier_dependent:  # F uses multipliers: its gradients take (x, y, p, lam, mu)
            from .multipliers import upper_gradients_nu
            upper_gradients_nu(lp, lp.x_start, lp.y_start, lp.p_default, np.zeros(int(lp.g.numel())),
                               np.zeros(int(lp.h.numel())))
        else:
            upper_gradient_function(lp)
        return True
    with BUILD_LOCK:
        lp = lower(problem)
    lp.cached("sensitivity_prepared", build)
    return lp

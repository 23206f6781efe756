"""Solution routes: drivers that compose the stages (reformulate -> solve -> certify).

``ROUTES`` maps a ``method=`` name to a function returning the route ``(problem, **options) -> BilevelResult``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..errors import MethodError
from .kkt import solve_kkt

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

# Each route module is imported on first use by a small function, so "go to definition"
# and static tools follow ``method=`` to its code (no strings resolved by importlib).
def _substitution() -> Callable[..., Any]:
    from .substitution import solve_substitution
    return solve_substitution


def _strong_duality() -> Callable[..., Any]:
    from .strong_duality import solve_strong_duality
    return solve_strong_duality


def _milp() -> Callable[..., Any]:
    from .milp import solve_milp
    return solve_milp


def _pessimistic() -> Callable[..., Any]:
    from .pessimistic import solve_pessimistic
    return solve_pessimistic


def _auto() -> Callable[..., Any]:
    from .auto import solve_auto
    return solve_auto


def _hypergradient() -> Callable[..., Any]:
    from .hypergradient import solve_hypergradient
    return solve_hypergradient


def _global() -> Callable[..., Any]:
    from .global_route import solve_global
    return solve_global


ROUTES: dict[str, Callable[[], Callable[..., Any]]] = {
    "kkt": lambda: solve_kkt, "substitution": _substitution, "strong_duality": _strong_duality,
    "milp": _milp, "pessimistic": _pessimistic, "auto": _auto, "hypergradient": _hypergradient,
    "global": _global,
}


def route(method: str) -> Callable[..., Any]:
    """The solver function registered for ``method``."""
    try:
        fn = ROUTES[method]()
    except KeyError:
        raise MethodError(f"unknown method {method!r}; choose one of {sorted(ROUTES)}") from None
    if method == "kkt":  # solve_kkt hands leaders that use multipliers to routes/shadow.py itself
        return fn

    def guarded(problem: Problem, *args: Any, **kwargs: Any) -> Any:
        """Routes that do not know follower multipliers refuse a leader that uses them (typed error)."""
        if getattr(problem, "uses_multipliers", False):
            from .shadow import solve_with_multipliers
            return solve_with_multipliers(problem, method=method, **kwargs)
        return fn(problem, *args, **kwargs)

    guarded.__wrapped__ = fn  # type: ignore[attr-defined]
    guarded.__doc__ = fn.__doc__
    return guarded


"""Solution routes: drivers that compose the stages (reformulate -> solve -> certify).

``ROUTES`` maps a ``method=`` name to a function ``(problem, **options) -> BilevelResult``.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import MethodError
from .kkt import solve_kkt

ROUTES: dict[str, Callable[..., Any]] = {"kkt": solve_kkt}
# Routes in their own modules, imported on first use: method name -> (module, function).
LAZY_ROUTES: dict[str, tuple[str, str]] = {
    "substitution": ("substitution", "solve_substitution"),
    "strong_duality": ("strong_duality", "solve_strong_duality"),
    "milp": ("milp", "solve_milp"),
    "pessimistic": ("pessimistic", "solve_pessimistic"),
    "auto": ("auto", "solve_auto"),
    "hypergradient": ("hypergradient", "solve_hypergradient"),
    "global": ("global_route", "solve_global"),
}


def route(method: str) -> Callable[..., Any]:
    """The solver function registered for ``method``."""
    if method not in ROUTES and method in LAZY_ROUTES:
        from importlib import import_module
        mod, fn = LAZY_ROUTES[method]
        ROUTES[method] = getattr(import_module(f".{mod}", __name__), fn)
    try:
        fn = ROUTES[method]
    except KeyError:
        raise MethodError(f"unknown method {method!r}; choose one of {sorted(set(ROUTES) | set(LAZY_ROUTES))}") from None
    if method == "kkt":  # solve_kkt hands leaders that use multipliers to routes/shadow.py itself
        return fn

    def guarded(problem: Any, *args: Any, **kwargs: Any) -> Any:
        """Routes that do not know follower multipliers refuse a leader that uses them (typed error)."""
        if getattr(problem, "uses_multipliers", False):
            from .shadow import solve_with_multipliers
            return solve_with_multipliers(problem, method=method, **kwargs)
        return fn(problem, *args, **kwargs)

    guarded.__wrapped__ = fn  # type: ignore[attr-defined]
    guarded.__doc__ = fn.__doc__
    return guarded


"""Solution routes: drivers that compose the stages (reformulate -> solve -> certify).

``ROUTES`` maps a ``method=`` name to a function ``(problem, **options) -> BilevelResult``.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import MethodError
from .kkt import solve_kkt

ROUTES: dict[str, Callable[..., Any]] = {"kkt": solve_kkt}


def route(method: str) -> Callable[..., Any]:
    """The solver function registered for ``method``."""
    try:
        return ROUTES[method]
    except KeyError:
        raise MethodError(f"unknown method {method!r}; choose one of {sorted(ROUTES)}") from None

"""Analysis tools: understand a bilevel problem before trusting a number.

Names are resolved lazily from their modules so each tool stays in its own file.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "reaction_map": "reaction",
    "reduced_objective": "reduced",
    "check_convexity": "convexity",
    "follower_uniqueness": "uniqueness",
    "diagnose": "diagnose",
    "constraint_qualification": "cq",
    "follower_convexity": "convexity_in_y",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        obj = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = obj  # a submodule of the same name must not shadow the function
        return obj
    raise AttributeError(name)


__all__ = sorted(_WHERE)

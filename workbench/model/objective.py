"""Objective senses, CVXPY style: ``Maximize(expr)`` says what the user means.

Internally every objective is minimised; a maximised follower objective ``f`` is
stored as ``-f`` and reported back in the user's sense. (BilevelJuMP users get
wrong answers when a max-follower is silently treated as min; here the sense is
explicit and visible in the LaTeX.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Minimize:
    """Minimise ``expr`` (the default when a bare expression is given)."""

    expr: Any
    sense = "min"


@dataclass(frozen=True)
class Maximize:
    """Maximise ``expr``; the workbench minimises ``-expr`` and reports values of ``expr``."""

    expr: Any
    sense = "max"


def split_objective(obj: Any) -> tuple[Any, str]:
    """Return ``(expr, sense)`` for a bare expression, Minimize or Maximize."""
    if isinstance(obj, (Minimize, Maximize)):
        return obj.expr, obj.sense
    return obj, "min"

"""The reduction contract (after CVXPY's ``reductions/``).

``apply`` maps a problem to an equivalent (or relaxed) one and returns
``(problem, inverse_data)``; ``invert`` maps a solution of the reduced problem
back to the problem of provenance using that data. A :class:`Chain` is itself a
reduction: apply in order, invert in reverse.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence


class Reduction(ABC):
    """One reformulation step with ``apply`` and ``invert``."""

    def accepts(self, problem: Any) -> bool:  # pragma: no cover - trivial default
        """Whether this reduction can be applied to ``problem``."""
        return True

    @abstractmethod
    def apply(self, problem: Any) -> tuple[Any, Any]:
        """Return ``(reduced_problem, inverse_data)``."""

    @abstractmethod
    def invert(self, solution: Any, inverse_data: Any) -> Any:
        """Map a solution of the reduced problem back to the original one."""


class Chain(Reduction):
    """Reductions applied in order and inverted in reverse order."""

    def __init__(self, reductions: Sequence[Reduction]):
        self.reductions = list(reductions)

    def apply(self, problem: Any) -> tuple[Any, list[Any]]:
        inverse_data = []
        for r in self.reductions:
            problem, inv = r.apply(problem)
            inverse_data.append(inv)
        return problem, inverse_data

    def invert(self, solution: Any, inverse_data: list[Any]) -> Any:
        for r, inv in reversed(list(zip(self.reductions, inverse_data))):
            solution = r.invert(solution, inv)
        return solution

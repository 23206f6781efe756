"""Plain values shared by every stage: a point with its follower multipliers.

Floor 0 of the import graph (NumPy only), so every stage can hand these on.

Sign convention: L = f - lam^T g - mu^T h with g >= 0, h = 0, so lam >= 0 and
mu is the shadow price of the equality's right-hand side.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Hashable, Iterator

import numpy as np


def _flat(v: object) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(-1)


@dataclass(frozen=True)
class Point:
    """A leader point x, the follower's reply y, and the reply's multipliers (lam for g >= 0,
    mu for h = 0; empty when not known). Immutable: stages return new points."""

    x: np.ndarray
    y: np.ndarray
    lam: np.ndarray | None = None
    mu: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _flat(self.x))
        object.__setattr__(self, "y", _flat(self.y))
        if self.lam is not None:
            object.__setattr__(self, "lam", _flat(self.lam))
        if self.mu is not None:
            object.__setattr__(self, "mu", _flat(self.mu))

    @property
    def has_multipliers(self) -> bool:
        return self.lam is not None and self.mu is not None

    @property
    def xy(self) -> np.ndarray:
        """[x; y], the variables of the single-level reformulations."""
        return np.concatenate([self.x, self.y])


class MultiplierMap(Mapping):
    """Follower multipliers keyed by constraint name; unnamed constraints by their index.

    Sign convention: L = f - lam^T g - mu^T h with g >= 0, h = 0, so lam >= 0 and
    mu is the shadow price of the equality's right-hand side.
    """

    def __init__(self, names: list[Hashable], values: np.ndarray):
        self._names = list(names)
        self._values = _flat(values)
        self._index = {n: i for i, n in enumerate(self._names)}

    def __getitem__(self, key: Hashable) -> float:
        if key in self._index:
            return float(self._values[self._index[key]])
        raise KeyError(f"no follower constraint named {key!r}; known: {self._names}")

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def as_array(self) -> np.ndarray:
        return self._values.copy()

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{n!r}: {v:.6g}" for n, v in zip(self._names, self._values)) + "}"

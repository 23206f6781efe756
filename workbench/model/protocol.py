"""The one interface every later stage reads from a problem declaration.

``BilevelProblem`` (SymPy) and ``VectorBilevelProblem`` (arrays) both satisfy it, so stages type
``problem: Problem`` instead of probing attributes with ``hasattr``.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Problem(Protocol):
    """What routes, certificates and sensitivities use of a declaration."""

    name: str

    @property
    def leader(self) -> Sequence[Any]: ...

    @property
    def follower(self) -> Sequence[Any]: ...

    @property
    def parameter_symbols(self) -> Sequence[Any]: ...

    @property
    def n_x(self) -> int: ...

    # Normalised constraints (each with ``name``): leader G >= 0, H = 0; follower g >= 0, h = 0.
    G: Sequence[Any]
    H: Sequence[Any]
    g: Sequence[Any]
    h: Sequence[Any]
    upper_sense: str
    lower_sense: str

    @property
    def n_y(self) -> int: ...

    def parameter_vector(self, parameters: Mapping[Any, Any] | None = None) -> np.ndarray:
        """Parameter values in declaration order (declared defaults for what is not given)."""

    def point_vector(self, values: Any, which: str) -> np.ndarray:
        """A leader or follower point as a flat vector in declaration order."""

    def start_vectors(self, start: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(x0, y0) from a ``start=`` option over the declared start."""

    def nonsmooth_follower_terms(self) -> list[tuple[str, Any]]:
        """Follower terms without derivatives (abs, max, ...), as (where, term) pairs."""

"""Which derivative columns: ``wrt="leader"``, ``"parameters"``, or a list of symbols/indices."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Hashable

import numpy as np

from ..errors import ValueInputError
from ..lower import LoweredProblem

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


@lru_cache(maxsize=64)
def _numbered(prefix: str, n: int) -> tuple[str, ...]:
    """Default column names x0, x1, ... for problems built without symbols (cached: n can be 10^4)."""
    return tuple(f"{prefix}{i}" for i in range(n))


def resolve_wrt(problem: Problem, lp: LoweredProblem, wrt: Any) -> tuple[np.ndarray, list[Hashable]]:
    """Column indices into z = [x; p] and their names, in the order asked for."""
    leader = list(problem.leader) if hasattr(problem, "leader") else list(_numbered("x", lp.n_x))
    params = (list(problem.parameter_symbols) if hasattr(problem, "parameter_symbols")
              else list(_numbered("p", lp.n_p)))
    names = leader + params
    if isinstance(wrt, str):
        if wrt == "leader":
            return np.arange(lp.n_x), leader
        if wrt == "parameters":
            if not params:
                raise ValueInputError("wrt='parameters' but the problem declares no parameters; "
                                      "declare them with parameters={symbol: value}")
            return lp.n_x + np.arange(lp.n_p), params
        raise ValueInputError(f"wrt={wrt!r} is not understood; use 'leader', 'parameters' or a list of "
                              "leader/parameter symbols")
    items = list(wrt) if isinstance(wrt, (list, tuple)) else [wrt]
    cols = []
    for s in items:
        if s in names:
            cols.append(names.index(s))
        else:
            raise ValueInputError(f"cannot differentiate with respect to {s}: it is neither a leader variable "
                                  f"nor a parameter (leader: {leader}, parameters: {params})")
    if not cols:
        raise ValueInputError("wrt is an empty list; name at least one leader variable or parameter")
    return np.asarray(cols, dtype=int), [names[c] for c in cols]

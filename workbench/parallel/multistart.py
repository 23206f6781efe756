"""Multistart across processes or a Dask cluster: the KKT route with different seeds, best certified wins.

Each task runs ``problem.solve(seed=k, ...)`` (different random leader starts, follower starts and
samples per seed); the problem travels as a pickle and CasADi is rebuilt on the worker. The
winner is the certified point with the lowest leader value; with no certified point, the result
of seed 0 is returned as it is (never promoted to "optimal").
"""
from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Iterable

from ..result import BilevelResult
from .executors import executor as make_executor

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

# A bilevel solve builds CasADi expressions and solvers as it goes (lowering, reformulation,
# nlpsol), and CasADi's symbolic layer is not thread-safe: within one process, solves run one
# at a time. Threads then give safety (equal results), processes give the speed-up.
SOLVE_LOCK = threading.RLock()


def _solve_seed(problem: Problem, seed: int, options: dict) -> BilevelResult:
    with SOLVE_LOCK:
        return problem.solve(seed=seed, **options)


def multistart(problem: Problem, seeds: int | Iterable[int] = 4, client: Any = None, jobs: int | None = None,
               executor: Any = None, **options: Any) -> BilevelResult:
    """Solve with every seed on the chosen executor and return the best certified result.

    ``client``: a Dask Client or address (None: local processes, ``jobs`` of them);
    ``executor``: a ``concurrent.futures.Executor`` you manage (e.g. a thread pool; not shut down).
    ``info["multistart"]`` lists (seed, status, upper value) for every run.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    owned = executor is None
    ex = make_executor(client=client, jobs=jobs) if owned else executor
    with ex if owned else contextlib.nullcontext(ex):
        futures = [ex.submit(_solve_seed, problem, s, options) for s in seeds]
        results = [f.result() for f in futures]
    runs = [(s, r.status, r.upper_value if r.status == "optimal" else None) for s, r in zip(seeds, results)]
    certified = [r for r in results if r.status == "optimal"]
    best = min(certified, key=lambda r: r.upper_value) if certified else results[0]
    best.info["multistart"] = runs
    return best

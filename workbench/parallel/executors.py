"""Where parallel work runs: local processes by default, a Dask cluster with ``client=``.

``executor(client=None, jobs=N)`` returns a ``concurrent.futures.Executor``; sweeps,
multistart and the BOLIB benchmark (``--dask ADDRESS``) all take their executor from
here, so switching from a laptop to a cluster is one argument. A Dask ``Client`` gives
its own ``get_executor()``; an address string connects a new client that is closed
again when the executor shuts down.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable

from ..errors import MethodError


class _OwnedClientExecutor(Executor):
    """A Dask client's executor that also closes the client it opened (address given)."""

    def __init__(self, client: Any):
        self.client = client
        self._inner = client.get_executor(pure=False)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        return self._inner.submit(fn, *args, **kwargs)

    def map(self, fn: Callable, *iterables: Any, timeout: float | None = None, chunksize: int = 1) -> Any:
        return self._inner.map(fn, *iterables, timeout=timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait)
        self.client.close()


def worker_count(client: Any = None, jobs: int | None = None) -> int:
    """How many tasks can run at once (Dask: total worker threads; local: ``jobs`` or CPUs)."""
    if client is not None and not isinstance(client, str):
        return max(1, sum(client.nthreads().values()))
    return max(1, int(jobs or os.cpu_count() or 1))


def executor(client: Any = None, jobs: int | None = None, start_method: str | None = None) -> Executor:
    """A ``concurrent.futures.Executor``: Dask when ``client`` is a Client or an address
    ("tcp://host:8786"), else a ``ProcessPoolExecutor`` with ``jobs`` processes (default: CPUs).

    Use it as a context manager; shutting it down never closes a Client you passed in.
    """
    if client is not None:
        if isinstance(client, str):
            try:
                from distributed import Client
            except ImportError:
                raise MethodError("client='ADDRESS' needs the 'distributed' package (pip install distributed)") from None
            return _OwnedClientExecutor(Client(client))
        if not hasattr(client, "get_executor"):
            raise MethodError(f"client must be a dask.distributed.Client or an address string, got {type(client).__name__}")
        return client.get_executor(pure=False)  # every submit is its own task, as in concurrent.futures
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise MethodError(f"jobs must be a positive integer, got {jobs!r}")
    context = multiprocessing.get_context(start_method) if start_method else None
    return ProcessPoolExecutor(max_workers=worker_count(None, jobs), mp_context=context)

"""``wb.sweep``: follower responses, sensitivities or bilevel solves over many points.

    r = wb.sweep(p, {x: np.linspace(0, 1, 200)}, what="response")            # local processes
    r = wb.sweep(p, points, what="solve", over="parameters", client=client)  # Dask cluster

The problem declaration is pickled once (cloudpickle, so vectorised declarations with
lambdas travel too) and shipped with each chunk of points; every worker process rebuilds
the CasADi functions from it once and caches them by the declaration's hash, so later
chunks only pay for the solves. Workers return plain records (NumPy arrays and floats),
never CasADi objects. Results come back in the order of the points.

Threads (a ``ThreadPoolExecutor``, Dask workers with several threads) are safe: follower
solvers and evaluation buffers are per thread and every CasADi construction runs under one
lock (``workbench/sensitivity/threads.py``); bilevel solves (``what="solve"``) are serialised
within a process because the routes build CasADi objects as they go.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import cloudpickle
import numpy as np

from ..errors import MethodError, ValueInputError
from .executors import executor as make_executor
from .executors import worker_count

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

WHAT = ("response", "sensitivity", "solve")
_CACHE: dict[str, Any] = {}  # per worker process: declaration hash -> (problem, follower solver)


@dataclass
class SweepResult:
    """Records in point order; ``values(name)`` stacks one field (e.g. "y") into an array."""

    what: str
    over: str
    points: list[np.ndarray]
    records: list[dict]
    workers: int
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        return self.records[i]

    def values(self, name: str) -> np.ndarray:
        ok = [r for r in self.records if r.get("ok")]
        if not ok:
            raise MethodError(f"no point of the sweep succeeded; first error: {self.records[0].get('error')}")
        shape = np.shape(ok[0][name])
        return np.array([np.asarray(r[name], dtype=float) if r.get("ok") else np.full(shape, np.nan)
                         for r in self.records])

    @property
    def failures(self) -> list[int]:
        return [i for i, r in enumerate(self.records) if not r.get("ok")]


def _expand(problem: Problem, grid: Any, over: str) -> list[np.ndarray]:
    """A list of numeric points (leader vectors or parameter vectors) from the user's grid."""
    if isinstance(grid, Mapping):  # {symbol: values} -> Cartesian product
        keys = list(grid)
        if any(isinstance(k, str) for k in keys):
            raise ValueInputError(f"grid keys must be symbols (Cartesian product of their values), got {keys!r}; "
                                  "for vector blocks pass a list of points instead")
        axes = [np.atleast_1d(np.asarray(grid[k], dtype=float)) for k in keys]
        dicts = [dict(zip(keys, combo)) for combo in itertools.product(*axes)]
    else:
        try:
            dicts = list(grid)
        except TypeError:
            raise ValueInputError(f"grid must be a dict of value lists or a sequence of points, got {type(grid).__name__}") from None
    if not dicts:
        raise ValueInputError("the grid has no points")
    out = []
    for pt in dicts:
        if over == "leader":
            if isinstance(pt, Mapping) and set(pt) != {getattr(problem, "leader_name", None)}:
                start = dict(zip(problem.leader, problem.point_vector(None, "leader")))
                pt = {**start, **pt}  # leader entries not on the grid stay at the declared start
            out.append(problem.point_vector(pt if isinstance(pt, Mapping) else np.atleast_1d(pt), "leader"))
        else:
            if isinstance(pt, Mapping):
                out.append(problem.parameter_vector(pt))
            else:
                vec = np.asarray(pt, dtype=float).reshape(-1)
                if vec.size != problem.parameter_vector().size or not np.all(np.isfinite(vec)):
                    raise ValueInputError(f"parameter point {pt!r} must be {problem.parameter_vector().size} finite numbers")
                out.append(vec)
    return out


def _problem(blob: bytes, key: str) -> Any:
    """The worker's copy of the declaration, lowered once (under the build lock: worker threads
    share it, and only evaluate its CasADi Functions; solvers and buffers are per thread)."""
    from ..sensitivity.threads import BUILD_LOCK, prepared
    with BUILD_LOCK:
        if key not in _CACHE:
            _CACHE.clear()  # one declaration at a time per worker keeps memory bounded
            _CACHE[key] = cloudpickle.loads(blob)
        problem = _CACHE[key]
        prepared(problem)
    return problem


def _response(problem: Problem, x: np.ndarray, p: np.ndarray, options: dict) -> dict:
    from ..sensitivity import follower_response
    r = follower_response(problem, x, parameters=p, **options)
    return dict(ok=True, y=r.y, lam=r.lam, mu=r.mu, active=r.active, weakly=r.weakly, status=r.status)


def _sensitivity(problem: Problem, x: np.ndarray, p: np.ndarray, options: dict) -> dict:
    from ..sensitivity import sensitivity
    s = sensitivity(problem, x, parameters=p, **options)
    r = s.response
    return dict(ok=True, y=r.y, lam=r.lam, mu=r.mu, active=r.active, status=s.status,
                dy_dx=np.asarray(s.dy_dx), dlam_dx=np.asarray(s.dlam_dx), hypergradient=np.asarray(s.hypergradient))


def _solve(problem: Problem, p: np.ndarray, options: dict) -> dict:
    from .multistart import SOLVE_LOCK
    params = dict(zip(problem.parameter_symbols, p))
    with SOLVE_LOCK:  # the routes build CasADi objects per solve: one bilevel solve per process at a time
        r = problem.solve(parameters=params, **options)
    rec = dict(ok=r.x is not None and r.status not in ("infeasible", "unbounded", "solver_failed", "time_limit"),
               status=r.status, ipopt_status=r.ipopt_status, x=r.x, y=r.y, lam=r.lam, mu=r.mu, time_s=r.time_s,
               certified=bool(r.certificate is not None and r.certificate.passed))
    if rec["ok"]:
        rec.update(upper_value=r.upper_value, lower_value=r.lower_value)
    return rec


def _run_chunk(blob: bytes, key: str, what: str, over: str, points: list[np.ndarray],
               fixed: np.ndarray | None, options: dict) -> list[dict]:
    """Evaluate one chunk of points in a worker (or in-process for ``jobs=1``)."""
    from ..errors import WorkbenchError
    problem = _problem(blob, key)
    out: list[dict] = []
    for pt in points:
        t0 = time.perf_counter()
        try:
            if what == "solve":
                out.append(_solve(problem, pt if over == "parameters" else fixed, options))
                continue
            x, p = (pt, fixed) if over == "leader" else (fixed, pt)
            out.append((_response if what == "response" else _sensitivity)(problem, x, p, options))
        except WorkbenchError as exc:  # a failed point is a result (with its reason), not a crash
            out.append(dict(ok=False, status=getattr(exc, "status", type(exc).__name__), error=str(exc)))
        out[-1].update(time_s=time.perf_counter() - t0, worker=os.getpid())
    return out


def sweep(problem: Problem, grid: Any, what: str = "response", *, over: str | None = None,
          leader: Any = None, parameters: Mapping | None = None, client: Any = None,
          jobs: int | None = None, executor: Any = None, chunks_per_worker: int = 4,
          **options: Any) -> SweepResult:
    """Evaluate ``what`` ("response", "sensitivity", "solve") at every point of ``grid``.

    ``over="leader"`` (default for response/sensitivity): points are leader points, with
    ``parameters`` fixed; ``over="parameters"`` (default for solve): points are parameter
    values, with ``leader`` fixed for response/sensitivity. ``grid`` is ``{symbol: values}``
    (Cartesian product; unnamed leader entries stay at the declared start) or a sequence of
    points (dicts or vectors). ``jobs=1`` runs in this process; otherwise local processes, or
    the Dask cluster of ``client`` (a Client or an address), or a given ``executor``.
    Extra ``options`` go to ``follower_response``/``sensitivity``/``solve``.
    """
    if what not in WHAT:
        raise MethodError(f"what must be one of {WHAT}, got {what!r}")
    over = over or ("parameters" if what == "solve" else "leader")
    if over not in ("leader", "parameters"):
        raise MethodError(f"over must be 'leader' or 'parameters', got {over!r}")
    if what == "solve" and over == "leader":
        raise MethodError("a bilevel solve chooses the leader itself; sweep it over='parameters'")
    points = _expand(problem, grid, over)
    if over == "leader":
        fixed = problem.parameter_vector(parameters)
    else:
        fixed = None if what == "solve" else problem.point_vector(leader, "leader")
    blob = cloudpickle.dumps(problem)
    key = hashlib.sha1(blob).hexdigest()
    if executor is not None:  # a pool the caller manages: size it from the pool when it says
        inner = getattr(executor, "_client", None)
        workers = jobs or (worker_count(inner) if inner is not None else getattr(executor, "_max_workers", 1))
    else:
        workers = 1 if (jobs == 1 and client is None) else worker_count(client, jobs)
    n_chunks = min(len(points), workers * max(1, chunks_per_worker))
    bounds = np.linspace(0, len(points), n_chunks + 1).astype(int)
    chunks = [points[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if workers == 1 and client is None and executor is None:
        _CACHE.clear()
        _CACHE[key] = problem  # in-process: reuse the caller's object and its compiled functions
        try:
            records = [r for c in chunks for r in _run_chunk(blob, key, what, over, c, fixed, options)]
        finally:
            _CACHE.pop(key, None)
    else:
        pool = executor if executor is not None else make_executor(client, jobs)
        try:
            futures = [pool.submit(_run_chunk, blob, key, what, over, c, fixed, options) for c in chunks]
            records = [r for f in futures for r in f.result()]
        finally:
            if executor is None:
                pool.shutdown(wait=True)
    return SweepResult(what=what, over=over, points=points, records=records, workers=workers,
                       info={"chunks": len(chunks), "declaration_bytes": len(blob)})

"""Run the KKT route over BOLIB, one process per problem with a hard time limit.

Each record: name, x, y (BOLIB's variable order), upper_value, lower_value,
status, certified, time_s; plus the independent verdict (bench/verify.py) and
whether the point is "solved": feasible, follower-optimal and within 1 % of
BOLIB's best-known upper value or better (F <= F_best + 0.01 * max(1, |F_best|)).
"""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np

BASELINE = {"method": "kkt", "n_starts": 1, "response_starts": False, "max_cut_rounds": 0,
            "global_search": False, "relaxation": "scholtes"}


def within_one_percent(F: float, F_best: float | None) -> bool | None:
    if F_best is None or F is None or not np.isfinite(F):
        return None
    return bool(F <= F_best + 0.01 * max(1.0, abs(F_best)))


def solve_one(name: str, options: dict, time_limit: float) -> dict:
    """Solve and verify one BOLIB problem (runs inside a worker process)."""
    from .. import bolib
    from ..errors import SolverFailure
    from .verify import verify_point

    p = bolib.load(name)
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"name": name, "F_best": p.info["F_best"], "flag": p.info["flag"]}
    try:
        r = p.solve(time_limit=0.8 * time_limit, **options)
        rec["time_s"] = time.perf_counter() - t0
        rec["status"] = str(r.status)
        rec["solver"] = None if r.solver_stats is None else r.solver_stats.solver_name
        rec["solver_status"] = None if r.solver_stats is None else r.solver_stats.status
        rec["route"] = r.info.get("route", r.method)
        rec["optimality"] = r.optimality
        rec["bound"] = None if r.known_bound is None else float(r.known_bound)  # never starts a bound computation
        rec["assumed_box"] = [b["variable"] for b in r.info.get("assumed_box", [])]
        rec["global_scope"] = r.info.get("global_scope")
        rec["message"] = r.message[:500]
        if r.info.get("incumbent"):
            rec["incumbent"] = r.info["incumbent"]
        if r.x is None:
            raise SolverFailure(r.message, status=str(r.status), solver_status=rec["solver_status"])
        rec["x"], rec["y"] = r.x.tolist(), r.y.tolist()
        rec["upper_value"], rec["lower_value"] = r.upper_value, r.lower_value
        rec["certified"] = bool(r.certificate is not None and r.certificate.passed)
        rec["gap"] = None if r.certificate is None else r.certificate.value_gap
        rec["proof"] = None if r.certificate is None else r.certificate.proof
    except SolverFailure as exc:
        rec.update(time_s=time.perf_counter() - t0, status=exc.status, solver_status=exc.solver_status,
                   x=None, y=None, upper_value=None, lower_value=None, certified=False)
        return rec
    except Exception as exc:  # a crash is a benchmark result, recorded with its traceback
        rec.update(time_s=time.perf_counter() - t0, status="crashed", x=None, y=None, upper_value=None,
                   lower_value=None, certified=False, error="".join(traceback.format_exception_only(exc)).strip())
        return rec
    if rec["x"] is not None:
        v = verify_point(p, rec["x"], rec["y"])
        rec["verified_feasible"] = v.feasible
        rec["verified_follower_optimal"] = v.follower_optimal
        rec["verified_gap"] = v.gap
        rec["verified_reason"] = getattr(v, "reason", None)
        close = within_one_percent(rec["upper_value"], rec["F_best"])
        rec["within_1pct"] = close
        rec["solved"] = bool(v.feasible and v.follower_optimal and close)
        rec["false_claim"] = bool(rec["status"] == "optimal" and not (v.feasible and v.follower_optimal))
    return rec


def _preload() -> None:
    """Import the heavy modules once in the parent so forked workers do not each pay for them."""
    import scipy.stats.qmc  # noqa: F401 - used by the reduced-objective sampling

    from .. import routes  # noqa: F401
    from ..routes import auto, global_route, kkt, milp  # noqa: F401
    try:  # method="global": SCIP's import is not solve time
        import pyscipopt  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        pass


def _worker(conn, name, options, time_limit):
    try:
        conn.send(solve_one(name, options, time_limit))
    finally:
        conn.close()


def run(names: list[str], options: dict, time_limit: float = 20.0, jobs: int = 2,
        progress: Callable[[dict, int, int], None] | None = None, verify_budget: float = 40.0) -> list[dict]:
    """Solve every named problem in its own process, ``jobs`` at a time; kill past the limit."""
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    _preload()
    pending = list(names)
    running: dict[str, tuple] = {}
    results: dict[str, dict] = {}
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            a, b = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(b, name, options, time_limit), daemon=True)
            proc.start()
            b.close()
            running[name] = (proc, a, time.monotonic())
        for name, (proc, conn, t0) in list(running.items()):
            rec = None
            if conn.poll():
                try:
                    rec = conn.recv()
                except EOFError:
                    rec = {"name": name, "status": "crashed", "error": "worker died", "time_s": time.monotonic() - t0}
            elif not proc.is_alive():
                rec = {"name": name, "status": "crashed", "error": f"exit code {proc.exitcode}", "time_s": time.monotonic() - t0}
            elif time.monotonic() - t0 > time_limit + verify_budget:
                proc.kill()
                rec = {"name": name, "status": "time_limit", "time_s": time.monotonic() - t0,
                       "error": f"killed after {time_limit + verify_budget:.0f} s"}
            if rec is None:
                continue
            proc.join(timeout=5)
            conn.close()
            del running[name]
            for k in ("x", "y", "upper_value", "lower_value"):
                rec.setdefault(k, None)
            if "F_best" not in rec:  # a killed or crashed worker sent nothing: the data still says it
                from .. import bolib
                info = bolib.record(name)
                rec["F_best"], rec["flag"] = info["F_best"], info["flag"]
            rec.setdefault("certified", False)
            if rec.get("time_s", 0) > time_limit and rec.get("status") not in ("time_limit", "crashed"):
                rec["status"], rec["certified"], rec["solved"] = "time_limit", False, False
            results[name] = rec
            if progress:
                progress(rec, len(results), len(names))
        time.sleep(0.01)
    return [results[n] for n in names]


def run_on_executor(names: list[str], options: dict, time_limit: float, ex: Any,
                    progress: Callable[[dict, int, int], None] | None = None) -> list[dict]:
    """The same records computed on any concurrent.futures executor (e.g. a Dask cluster).

    Tasks cannot be killed there, so the limit is the route's own ``time_limit``: a record whose
    time exceeds it is marked "time_limit" like in :func:`run`.
    """
    from concurrent.futures import as_completed
    futures = {ex.submit(solve_one, n, options, time_limit): n for n in names}
    results: dict[str, dict] = {}
    for fut in as_completed(futures):
        rec = fut.result()
        if rec.get("time_s", 0) > time_limit and rec.get("status") != "crashed":
            rec["status"], rec["certified"], rec["solved"] = "time_limit", False, False
        results[futures[fut]] = rec
        if progress:
            progress(rec, len(results), len(names))
    return [results[n] for n in names]


def summarise(records: list[dict]) -> dict:
    with_best = [r for r in records if r.get("F_best") is not None]
    times = np.array([r.get("time_s") or 0.0 for r in records])
    return {
        "problems": len(records),
        "with_best_known": len(with_best),
        "solved_with_best_known": sum(bool(r.get("solved")) for r in with_best),
        "claimed_optimal": sum(r.get("status") == "optimal" for r in records),
        "false_claims": sum(bool(r.get("false_claim")) for r in records),
        "verified": sum(bool(r.get("verified_feasible") and r.get("verified_follower_optimal")) for r in records),
        "optimal_by_proof": {k: sum(r.get("status") == "optimal" and r.get("proof") == k for r in records)
                             for k in ("convex", "global", "sampled", "none")},
        "crashed": sum(r.get("status") == "crashed" for r in records),
        "time_limit": sum(r.get("status") == "time_limit" for r in records),
        "total_time_s": float(times.sum()),
        "median_time_s": float(np.median(times)) if times.size else 0.0,
    }

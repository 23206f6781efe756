"""One side of the comparison for one problem: ``python worker.py {wb,blv} NAME [--repeats 3]``.

Run by ``run.py`` with the workbench's interpreter (side ``wb``) or BLVPY's (side ``blv``). Both sides
do the same thing, so the measurement is symmetric: import the library, solve a warm-up problem
(untimed: lazy imports, first-call set-up), then ``repeats`` times build the model afresh (untimed)
and time only the solve call: wall time (``time.perf_counter``) and CPU time of the process, all threads
(``time.process_time``; less sensitive to the load of a shared machine). Default settings on both sides
(``p.solve()``; ``problem.solve(verbose=False)``, BLVPY's transcript off). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import problems  # noqa: E402


def _wb_solve(p):
    t0, c0 = time.perf_counter(), time.process_time()
    r = p.solve()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    out = {"status": str(r.status), "time": dt, "cpu": dc}
    try:
        out["value"] = float(r.upper_value)
    except Exception as err:  # no point (solver_failed, ...): reading it raises
        out["value"], out["error"] = None, f"{type(err).__name__}: {err}"
    cert = getattr(r, "certificate", None)
    out["proof"] = getattr(cert, "proof", None)
    out["certified"] = bool(getattr(cert, "passed", False))
    out["optimality"] = getattr(r, "optimality", None)
    return out


def _blv_solve(p):
    t0, c0 = time.perf_counter(), time.process_time()
    r = p.solve(verbose=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    out = {"status": str(r.status), "time": dt, "cpu": dc, "succeeded": bool(r.succeeded),
           "final_epsilon": getattr(r, "final_epsilon", None)}
    out["value"] = None if r.objective is None else float(r.objective)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=["wb", "blv"])
    ap.add_argument("name")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-repeat-time", type=float, default=60.0,
                    help="no further repeats once one solve took longer than this (s)")
    a = ap.parse_args()
    case = problems.BY_NAME[a.name]
    build = case.wb if a.side == "wb" else case.blv
    solve = _wb_solve if a.side == "wb" else _blv_solve
    warm = problems.BY_NAME["blv_quickstart"]
    solve((warm.wb if a.side == "wb" else warm.blv)())
    runs = []
    for _ in range(a.repeats):
        try:
            runs.append(solve(build()))
        except Exception as err:  # a crash is a result to report, not a reason to stop the benchmark
            runs.append({"status": "crash", "value": None, "time": None, "error": f"{type(err).__name__}: {err}"})
            break
        if runs[-1]["time"] > a.max_repeat_time:
            break
    print(json.dumps({"side": a.side, "name": a.name, "runs": runs, "fingerprint": problems.data_fingerprint()}))


if __name__ == "__main__":
    main()

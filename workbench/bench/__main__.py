"""``python -m workbench.bench bolib --out results.json [--jobs N] [--only NAME ...]``.

Solves BOLIB problems (each in its own process, hard time limit), shows progress,
prints a summary and writes one JSON record per problem. ``--baseline`` also runs
the plain one-start Scholtes homotopy in the same command and reports time ratios;
``--summary FILE`` writes the Markdown table committed under benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import bolib
from .bolib_run import BASELINE, run, run_on_executor, summarise
from .report import markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workbench.bench")
    sub = ap.add_subparsers(dest="suite", required=True)
    b = sub.add_parser("bolib", help="solve the BOLIB v2 problems")
    b.add_argument("--out", default="results.json", help="JSON records (one per problem)")
    b.add_argument("--jobs", type=int, default=2, help="problems solved in parallel")
    b.add_argument("--only", nargs="*", help="problem names to run (default: all)")
    b.add_argument("--time-limit", type=float, default=20.0, help="hard per-problem limit in seconds")
    b.add_argument("--relaxation", default="scholtes")
    b.add_argument("--method", default="auto", help="solution route (auto: MILP for linear problems, else KKT)")
    b.add_argument("--algorithm", help="method='global' only: auto (default), kkt or bounding (the scheme alone)")
    b.add_argument("--baseline", action="store_true", help="also run the one-start Scholtes baseline")
    b.add_argument("--summary", help="write a Markdown summary table here")
    b.add_argument("--dask", metavar="ADDRESS", help="run on a Dask scheduler (e.g. tcp://127.0.0.1:8786) "
                   "instead of local processes")
    args = ap.parse_args(argv)

    names = args.only or bolib.names()
    unknown = [n for n in names if n not in bolib.names()]
    if unknown:
        ap.error(f"unknown BOLIB problem(s): {unknown}")

    def progress(rec, k, n):
        mark = "ok " if rec.get("solved") else "-- "
        fmt = lambda v: "None" if v is None else f"{v:.6g}"  # noqa: E731
        print(f"[{k:3d}/{n}] {mark}{rec['name']:<32} {rec.get('status', '?'):<14} "
              f"F={fmt(rec.get('upper_value'))} best={fmt(rec.get('F_best'))} {rec.get('time_s', 0):.2f}s",
              flush=True)

    def solve_all(options):
        if args.dask:
            from ..parallel import executor
            with executor(client=args.dask) as ex:
                return run_on_executor(names, options, args.time_limit, ex, progress)
        return run(names, options, args.time_limit, args.jobs, progress)

    t0 = time.perf_counter()
    options = {"method": args.method}
    if args.method in ("kkt", "auto"):  # the relaxation is an option of the KKT route only
        options["relaxation"] = args.relaxation
    if args.algorithm:
        options["algorithm"] = args.algorithm
    records = solve_all(options)
    wall = time.perf_counter() - t0
    with open(args.out, "w") as fh:
        json.dump(records, fh, indent=1)
    summary = summarise(records)
    summary["wall_s"] = wall
    base_records = base_summary = None
    if args.baseline:
        print("-- baseline: one-start Scholtes homotopy --", flush=True)
        t0 = time.perf_counter()
        base_records = solve_all(BASELINE)
        base_summary = summarise(base_records)
        base_summary["wall_s"] = time.perf_counter() - t0
    print(json.dumps({"workbench": summary, "baseline": base_summary}, indent=1))
    if args.summary and args.method == "global":
        from .global_report import global_markdown
        with open(args.summary, "w") as fh:
            fh.write(global_markdown(records, "python -m workbench.bench " + " ".join(
                argv if argv is not None else sys.argv[1:]), wall))
    elif args.summary:
        with open(args.summary, "w") as fh:
            fh.write(markdown(records, summary, base_records, base_summary,
                              "python -m workbench.bench " + " ".join(argv if argv is not None else sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

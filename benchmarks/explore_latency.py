"""Latency of one explorer slider move (the issue asks for about 0.1 s on the seed problems).

    /work/venv/bin/python benchmarks/explore_latency.py [--moves 30] [--out benchmarks/results/explore_latency.txt]

For each problem an ``Explorer`` is built (first draw: compiles the CasADi solvers,
computes the curves), then the leader slider is set to ``--moves`` positions
spread over its range, as a user releasing the mouse would. Reported per move:
``compute`` (``explore_data``: warm-started follower reply, sensitivity,
certificate; curves are cached while only the plotted coordinate moves),
``draw`` (updating the reused matplotlib figure and encoding the PNG) and
``total`` (the whole observer callback). A last line moves a *parameter*
slider, which invalidates the cached curves (41 follower solves). Wall-clock on
this machine, which other jobs share (the load average is printed).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import workbench as wb  # noqa: E402
from workbench.display.explore_core import explore_data  # noqa: E402


def problems() -> dict:
    x, y, a = sp.symbols("x y a", real=True)
    capacity = wb.BilevelProblem(
        leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 2) ** 2,
        upper_constraints=[x >= 0, x <= 3], lower_objective=(y - x) ** 2 / 2,
        lower_constraints=[wb.named("capacity", y <= a), y >= 0], parameters={a: 1.5}, name="capacity")
    shift = wb.BilevelProblem(  # the quickstart's KKT example
        leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 1) ** 2,
        upper_constraints=[x >= -2, x <= 2], lower_objective=y ** 2 / 2 + x * y,
        lower_constraints=[wb.named("shift", y - x - 1 >= 0), wb.named("sign", y >= 0)], name="shift")
    k1, k2, u1, u2, P = sp.symbols("k1 k2 u1 u2 P", real=True)
    springs = wb.BilevelProblem(
        leader=[k1, k2], follower=[u1, u2], upper_objective=k1 + k2,
        upper_constraints=[k1 >= 0.5, k1 <= 10, k2 >= 0.5, k2 <= 10, u2 <= 0.5],
        lower_objective=k1 * u1 ** 2 / 2 + k2 * (u2 - u1) ** 2 / 2 - P * u2,
        lower_constraints=[wb.named("wall", u2 <= 0.45)], parameters={P: 1}, start={k1: 5, k2: 5}, name="springs")
    return {"capacity": capacity, "shift": shift, "springs": springs}


def measure(p, moves: int) -> dict:
    t0 = time.perf_counter()
    e = wb.explore(p)
    first = time.perf_counter() - t0
    s = e.sliders[p.leader[0]]
    compute, draw, total = [], [], []
    for v in np.linspace(s.min, s.max, moves + 2)[1:-1]:
        t0 = time.perf_counter()
        s.value = float(v)  # the observer runs update(): explore_data + redraw
        total.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        explore_data(p, e.leader_point(), e.parameters(), e.coord.value,
                     ranges={q: e.ranges[q] for q in p.leader})
        compute.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        e.redraw()
        draw.append(time.perf_counter() - t2)
    param = None
    if p.parameter_symbols:
        ps = e.sliders[p.parameter_symbols[0]]
        t0 = time.perf_counter()
        ps.value = ps.value + (ps.max - ps.value) / 3
        param = time.perf_counter() - t0
    return {"first": first, "compute": compute, "draw": draw, "total": total, "param": param}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explore_latency.txt"))
    args = ap.parse_args()
    lines = [f"explore latency, {args.moves} slider moves per problem; {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cpus, load average before {os.getloadavg()[0]:.2f}",
             "times in ms: median (max) per slider move", ""]
    lines.append(f"{'problem':10s} {'first draw':>10s} {'compute':>16s} {'draw':>16s} {'total move':>16s} "
                 f"{'param move':>10s}")
    for name, p in problems().items():
        r = measure(p, args.moves)
        fmt = lambda v: f"{1e3 * statistics.median(v):6.1f} ({1e3 * max(v):6.1f})"  # noqa: E731
        param = "-" if r["param"] is None else f"{1e3 * r['param']:.0f}"
        lines.append(f"{name:10s} {1e3 * r['first']:10.0f} {fmt(r['compute']):>16s} {fmt(r['draw']):>16s} "
                     f"{fmt(r['total']):>16s} {param:>10s}")
    lines += ["", f"load average after {os.getloadavg()[0]:.2f}",
              "compute = explore_data at the new point (cached solver, warm start, cached curves);",
              "draw = figure update + PNG encoding; total = the slider's whole callback."]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

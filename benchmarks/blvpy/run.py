"""Workbench vs BLVPY 0.5 on the same problems, in one run (issue 13, "Must show", first bullet).

    bash benchmarks/blvpy/setup.sh                       # once: BLVPY's own venv (Python >= 3.12)
    PYTHONPATH=$PWD .venv/bin/python benchmarks/blvpy/run.py [--repeats 3] [--only NAME ...]

Writes ``benchmarks/results/blvpy.md`` (table + summary) and ``benchmarks/results/blvpy.json`` (every
run). For each problem of ``problems.py``: the exact optimal value (derived independently, see there),
then the workbench (``p.solve()``, default settings, this interpreter) and BLVPY
(``problem.solve(verbose=False)``, default settings, BLVPY's venv), each in a fresh process of its own
(``worker.py``): imports and a warm-up solve untimed, then ``repeats`` fresh builds with only the solve
timed. The time of a side is the median of its repeats; the ratio is workbench / BLVPY. A value is
*exact* when |v - v*| <= 1e-4 max(1, |v*|). The load average is recorded around every problem, since
the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import problems  # noqa: E402

TOL = 1e-4


def exact_ok(v: float | None, ref: float) -> bool:
    return v is not None and abs(v - ref) <= TOL * max(1.0, abs(ref))


def strict_ok(v: float | None, ref: float) -> bool:
    """Relative to |v*| itself (1e-6 absolute where v* = 0): catches errors on small optimal values."""
    return v is not None and abs(v - ref) <= (TOL * abs(ref) if abs(ref) > 1e-6 else 1e-6)


def run_worker(python: str, side: str, name: str, repeats: int, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [python, str(HERE / "worker.py"), side, name, "--repeats", str(repeats)]
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"runs": [], "error": f"worker timeout after {timeout:.0f} s", "wall": time.perf_counter() - t0}
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    if cp.returncode != 0 or not lines:
        return {"runs": [], "error": f"worker exit {cp.returncode}: {cp.stderr.strip()[-400:]}",
                "wall": time.perf_counter() - t0}
    out = json.loads(lines[-1])
    out["wall"] = time.perf_counter() - t0
    return out


def side_summary(res: dict) -> dict:
    runs = res.get("runs", [])
    times = [r["time"] for r in runs if r.get("time") is not None]
    cpus = [r["cpu"] for r in runs if r.get("cpu") is not None]
    first = runs[0] if runs else {}
    values = [r.get("value") for r in runs]
    return {"time": statistics.median(times) if times else None, "best": min(times) if times else None,
            "cpu": statistics.median(cpus) if cpus else None,
            "n": len(times), "value": first.get("value"), "status": first.get("status", res.get("error", "?")),
            "proof": first.get("proof"), "stable": len({None if v is None else round(v, 9) for v in values}) <= 1,
            "error": first.get("error") or res.get("error")}


def fmt(v, spec=".6g"):
    return "—" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--timeout", type=float, default=900.0, help="per worker process (s)")
    ap.add_argument("--blv-python", default=str(HERE / ".venv" / "bin" / "python"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "blvpy.md"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "blvpy.json"))
    ap.add_argument("--render", action="store_true", help="only rewrite --out from the rows saved in --json")
    a = ap.parse_args()
    if a.render:
        saved = json.loads(Path(a.json).read_text())
        a.repeats, a.only = saved["repeats"], saved.get("only")
        write_md(Path(a.out), saved["rows"], a, saved["started"], saved.get("blv_version", []))
        print(f"wrote {a.out}")
        return
    if not Path(a.blv_python).exists():
        sys.exit(f"no BLVPY interpreter at {a.blv_python}: run bash benchmarks/blvpy/setup.sh first")
    cases = [problems.BY_NAME[n] for n in a.only] if a.only else problems.CASES
    blv_version = subprocess.run([a.blv_python, "-c", "import importlib.metadata as m; print(m.version('blvpy'),"
                                  " m.version('cvxpy'), m.version('cyipopt'))"], capture_output=True,
                                 text=True).stdout.split()
    fp = problems.data_fingerprint()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for c in cases:
        load0 = os.getloadavg()[0]
        try:
            ref = float(c.exact())
        except Exception as err:
            ref, ref_err = None, f"{type(err).__name__}: {err}"
        else:
            ref_err = None
        wb = run_worker(sys.executable, "wb", c.name, a.repeats, a.timeout)
        blv = run_worker(a.blv_python, "blv", c.name, a.repeats, a.timeout) if c.blv is not None else None
        for res in (wb, blv):
            if res and res.get("fingerprint") not in (None, fp):
                sys.exit(f"{c.name}: the two environments generated different data ({res['fingerprint']} vs {fp})")
        row = {"name": c.name, "group": c.group, "source": c.source, "exact": ref, "exact_kind": c.exact_kind,
               "exact_error": ref_err, "note": c.note, "wb": side_summary(wb), "wb_raw": wb,
               "blv": side_summary(blv) if blv else None, "blv_raw": blv,
               "load": [load0, os.getloadavg()[0]]}
        w, b = row["wb"], row["blv"]
        row["ratio"] = (w["time"] / b["time"]) if (b and w["time"] and b["time"]) else None
        row["ratio_cpu"] = (w["cpu"] / b["cpu"]) if (b and w.get("cpu") and b.get("cpu")) else None
        row["wb_exact"] = ref is not None and exact_ok(w["value"], ref)
        row["blv_exact"] = (ref is not None and exact_ok(b["value"], ref)) if b else None
        rows.append(row)
        print(f"{c.name:32s} exact {fmt(ref):>12s} | wb {fmt(w['value']):>12s} {w['status']:>13s} "
              f"{fmt(w['time'], '.3f'):>7s}s | blv {fmt(b['value'] if b else None):>12s} "
              f"{fmt(b['time'] if b else None, '.3f'):>7s}s | ratio {fmt(row['ratio'], '.2f')} | load {load0:.1f}",
              flush=True)
    Path(a.json).write_text(json.dumps({"started": started, "repeats": a.repeats, "only": a.only,
                                       "blv_version": blv_version, "rows": rows}, indent=1))
    write_md(Path(a.out), rows, a, started, blv_version)
    print(f"wrote {a.out} and {a.json}")


def write_md(path: Path, rows: list[dict], a, started: str, blv_version: list[str]) -> None:
    both = [r for r in rows if r["ratio"] is not None]
    ratios = [r["ratio"] for r in both]
    cpu_ratios = [r["ratio_cpu"] for r in both if r.get("ratio_cpu") is not None]
    exact_rows = [r for r in rows if r["exact_kind"] != "local" and r["exact"] is not None]
    exact_both = [r for r in exact_rows if r["blv"] is not None]
    wb_ex = sum(r["wb_exact"] for r in exact_rows)
    wb_ex_cert = sum(r["wb_exact"] and r["wb"]["status"] == "optimal" for r in exact_rows)
    wb_ex_both = sum(r["wb_exact"] for r in exact_both)
    wb_strict = sum(strict_ok(r["wb"]["value"], r["exact"]) for r in exact_both)
    blv_strict = sum(strict_ok(r["blv"]["value"], r["exact"]) for r in exact_both)
    blv_ex = sum(bool(r["blv_exact"]) for r in exact_both)
    loads = [x for r in rows for x in r["load"]]
    import casadi
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "workbench"], capture_output=True, text=True,
                            cwd=str(ROOT)).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "workbench"], capture_output=True, text=True,
                           cwd=str(ROOT)).stdout.strip()
    groups = {}
    for r in both:
        groups.setdefault(r["group"], []).append(r["ratio"])
    lines = [
        "# Workbench vs BLVPY 0.5 — same problems, same run (issue 13)",
        "",
        "Command (from the repository root, after `bash benchmarks/blvpy/setup.sh`):",
        "",
        f"    PYTHONPATH=$PWD {Path(sys.executable).relative_to(ROOT) if str(sys.executable).startswith(str(ROOT)) else sys.executable} "
        f"benchmarks/blvpy/run.py --repeats {a.repeats}" + (f" --only {' '.join(a.only)}" if a.only else ""),
        "",
        f"Started {started}; {platform.node()} ({os.cpu_count()} cores, shared with other engineers); "
        f"load average (1 min) during the run: min {min(loads):.1f}, median {statistics.median(loads):.1f}, "
        f"max {max(loads):.1f}. Workbench code at commit {commit} (last change to workbench/){' (workbench/ modified)' if dirty else ''}: Python {platform.python_version()}, CasADi {casadi.__version__}; "
        f"BLVPY {' / CVXPY '.join(blv_version[:2]) if blv_version else '?'} (cyipopt "
        f"{blv_version[2] if len(blv_version) > 2 else '?'}) in `benchmarks/blvpy/.venv`.",
        "",
        "Each side runs in a fresh process per problem (`benchmarks/blvpy/worker.py`): imports and one warm-up",
        "solve untimed, then the model is built afresh and only the solve call is timed, "
        f"{a.repeats} time(s); the time shown is the median of the repeats. Default settings on both sides:",
        "`p.solve()` (KKT route) and `problem.solve(verbose=False)` (ε-gap continuation to ε = 1e-6).",
        "*Exact* means |v − v*| ≤ 1e-4·max(1, |v*|), v* derived independently of both tools",
        "(`problems.py`: hand = closed form by hand; reduction = F(x, y*(x)) with the follower's reply in",
        "closed form, minimised globally over the scalar leader; enumeration = over attacked targets, each a",
        "convex QP; milp = the workbench's exact MILP route (HiGHS), not the timed KKT route; local = a",
        "verified local optimum only, not counted).",
        "",
        "## Summary",
        "",
        f"* Time ratio workbench / BLVPY over the {len(both)} problems both solve: **median "
        f"{statistics.median(ratios):.2f}×**, min {min(ratios):.3g}×, max {max(ratios):.3g}× "
        f"(target: median ≤ 1.0)." if ratios else "* no ratio",
        (f"* The same with CPU time (process_time of each solve, all threads; less sensitive to the machine's "
         f"load): median {statistics.median(cpu_ratios):.2f}×, min {min(cpu_ratios):.3g}×, max {max(cpu_ratios):.3g}×."
         if cpu_ratios else ""),
        f"* Median time per problem: workbench {statistics.median([r['wb']['time'] for r in both]):.3f} s, "
        f"BLVPY {statistics.median([r['blv']['time'] for r in both]):.3f} s (same {len(both)} problems)."
        if both else "",
        "* Median ratio per group: " + ", ".join(f"{g} {statistics.median(v):.2f}× ({len(v)})"
                                                 for g, v in groups.items()) + ".",
        f"* Exact answers (of {len(exact_both)} problems with an exact value that BLVPY can express): "
        f"workbench **{wb_ex_both}**, BLVPY **{blv_ex}**.",
        f"* Strictly relative (|v − v*| ≤ 1e-4·|v*|, 1e-6 absolute where v* = 0), same {len(exact_both)}: "
        f"workbench {wb_strict}, BLVPY {blv_strict}.",
        f"* Workbench over all {len(exact_rows)} problems with an exact value: {wb_ex} exact, "
        f"{wb_ex_cert} exact *and* status `optimal` (certified).",
        "",
        "## Per problem",
        "",
        "| problem | group | exact v* (how) | workbench value | status / proof | wb time s | BLVPY value | BLVPY status "
        "| BLVPY time s | ratio wb/BLVPY | CPU ratio | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, b = r["wb"], r["blv"]
        mark = lambda ok: "" if ok is None else (" ✓" if ok else " ✗")  # noqa: E731
        lines.append(
            f"| {r['name']} | {r['group']} | {fmt(r['exact'])} ({r['exact_kind']}) | {fmt(w['value'])}"
            f"{mark(r['wb_exact'] if r['exact_kind'] != 'local' else None)} | {w['status']} / {w['proof'] or '—'} "
            f"| {fmt(w['time'], '.3f')} | {fmt(b['value']) if b else 'cannot express'}"
            f"{mark(r['blv_exact'] if b and r['exact_kind'] != 'local' else None)} | {b['status'] if b else '—'} "
            f"| {fmt(b['time'], '.3f') if b else '—'} | {fmt(r['ratio'], '.3g')} | {fmt(r.get('ratio_cpu'), '.3g')} "
            f"| {r['load'][0]:.1f} |")
    for r in rows:  # notes are metadata of the problem table, not measurements: take the current ones
        if r["name"] in problems.BY_NAME:
            r["note"] = problems.BY_NAME[r["name"]].note
    notes = [r for r in rows if r["note"] or r["wb"]["error"] or (r["blv"] and r["blv"]["error"]) or r["exact_error"]
             or not r["wb"]["stable"] or (r["blv"] and not r["blv"]["stable"])]
    if notes:
        lines += ["", "## Notes", ""]
        for r in notes:
            bits = [r["note"]] if r["note"] else []
            if r["exact_error"]:
                bits.append(f"reference failed: {r['exact_error']}")
            if r["wb"]["error"]:
                bits.append(f"workbench: {r['wb']['error']}")
            if r["blv"] and r["blv"]["error"]:
                bits.append(f"BLVPY: {r['blv']['error']}")
            if not r["wb"]["stable"]:
                bits.append("workbench values differ between repeats")
            if r["blv"] and not r["blv"]["stable"]:
                bits.append("BLVPY values differ between repeats")
            lines.append(f"* {r['name']}: " + "; ".join(bits))
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

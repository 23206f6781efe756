"""Where one solve spends its time: cProfile summary of p.solve() on three small problems.

    python benchmarks/profile_solve.py [--out benchmarks/results/profile_solve.md]

Problems: a box-constrained QP follower (one leader, one follower), MitsosBarton2006Ex317 (BOLIB,
nonconvex quartic follower) and an SOCP follower written the smooth way (t >= 0,
t^2 - |u - x|^2 >= 0). Each is solved once after a warm-up solve of another problem (imports and
CasADi plugin loading excluded). Reported: wall time, Ipopt calls (IpoptSolver.__call__) and their
time, SCIP follower solves and their time, nlpsol constructions, and the top functions by
cumulative time. Run it on two commits to compare (``git worktree add``, then
``PYTHONPATH=<tree> python benchmarks/profile_solve.py``).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import time

import sympy as sp

import workbench as wb


def box_qp():
    x, y = sp.symbols("x y", real=True)
    return wb.BilevelProblem([x], [y], upper_objective=(x - 1) ** 2 + (y - 2) ** 2, lower_objective=(y - x) ** 2,
                             upper_constraints=[x >= 0, x <= 3], lower_constraints=[y >= 0, y <= 2])


def socp():
    x1, x2, t, u1, u2 = sp.symbols("x1 x2 t u1 u2", real=True)
    return wb.BilevelProblem([x1, x2], [t, u1, u2], upper_objective=(x1 - 2) ** 2 + (x2 - 2) ** 2 + t,
                             upper_constraints=[x1 >= -5, x1 <= 5, x2 >= -5, x2 <= 5], lower_objective=t,
                             lower_constraints=[t >= 0, t ** 2 - (u1 - x1) ** 2 - (u2 - x2) ** 2 >= 0,
                                                sp.Eq(u1 + u2, 1)])


PROBLEMS = {"box QP": box_qp, "MitsosBarton2006Ex317": lambda: wb.bolib.load("MitsosBarton2006Ex317"),
            "SOCP follower (smooth form)": socp}


def _count(stats: pstats.Stats, fragment: str) -> tuple[int, float]:
    n, t = 0, 0.0
    for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
        if fragment in f"{file}:{name}":
            n, t = n + nc, t + ct
    return n, t


def profile(name: str, make) -> str:
    make().solve() if name == "box QP" else box_qp().solve()  # warm-up: imports, plugins
    p = make()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    r = p.solve(time_limit=60)
    pr.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(pr)
    ip = tuple(a + b for a, b in zip(_count(st, "solve/ipopt.py:__call__"), _count(st, "solve/ipopt.py:solve")))
    scip = _count(st, "global_follower.py:_global_follower")
    if scip[0] == 0:
        scip = _count(st, "global_follower.py:global_follower")
    nlp = _count(st, "casadi.py:nlpsol")
    rows = sorted(((ct, nc, f"{file.split('workbench/')[-1]}:{fn}") for (file, _l, fn), (_c, nc, _t, ct, _k)
                   in st.stats.items() if "/workbench/" in file and "/.venv/" not in file), reverse=True)
    top = [f"{ct:8.3f} s  {nc:6d} calls  {where}" for ct, nc, where in rows[:10]]
    proof = r.certificate.proof if r.certificate is not None else None
    lines = [f"### {name}", "", f"status {r.status}, F = {r.upper_value:.10g}, proof {proof}; wall {wall:.3f} s; "
             f"Ipopt calls {ip[0]} ({ip[1]:.3f} s); SCIP follower solves {scip[0]} ({scip[1]:.3f} s); "
             f"nlpsol built {nlp[0]}", "", "```", *top, "```", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=os.path.dirname(wb.__file__)).stdout.strip()
    text = (f"## commit {rev} (load average at start {os.getloadavg()[0]:.1f})\n\n"
            + "\n".join(profile(n, m) for n, m in PROBLEMS.items()))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Scaling benchmark: build, solve (KKT route) and certify two sparse families at growing n_y.

    /work/venv/bin/python benchmarks/scale/run.py [--sizes 100 1000 10000] [--families ridge box_qp]
        [--out benchmarks/results/scale.md]

Each (family, n) runs in a fresh subprocess so its peak resident memory (getrusage ru_maxrss,
which includes CasADi's and Ipopt's C++ allocations that tracemalloc cannot see) is its own.
Timed stages: build (data -> VectorBilevelProblem -> CasADi, i.e. ``lower``), solve (``p.solve``
through the KKT route with one leader start; this includes the route's own certificate), a
separate certification (sparse convexity proof + follower re-solves) at the solution, and the
hypergradient dF/dx from the follower's KKT sensitivity system there. Growth exponents are
least-squares slopes of log(time or memory) on log(n_y).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOLVE_OPTIONS = {"n_starts": 1, "global_search": False}  # the follower is a convex QP: the certificate is exact


def one(family: str, n: int) -> dict:
    """Run one instance in this process and return its measurements."""
    sys.path.insert(0, ROOT)
    from benchmarks.scale.problems import FAMILIES
    from workbench.certify import certify, follower_is_convex
    from workbench.lower import lower

    t0 = time.perf_counter()
    p = FAMILIES[family](n)
    lp = lower(p)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = p.solve(**SOLVE_OPTIONS)
    t_solve = time.perf_counter() - t0
    out = dict(family=family, n_y=p.n_y, n_x=p.n_x, n_g=int(lp.g.numel()), build_s=t_build, solve_s=t_solve,
               status=r.status, ipopt=r.ipopt_status, ipopt_calls=len(r.log),
               ipopt_iterations=int(sum(row.get("iterations", 0) for row in r.log)))
    if r.x is not None:
        pv = p.parameter_vector()
        t0 = time.perf_counter()
        convex = follower_is_convex(lp, r.x, pv)
        cert = certify(lp, r.x, r.y, pv, r.lam, follower_convex=convex)
        out.update(certify_s=time.perf_counter() - t0, certified=cert.passed, follower_convex=convex,
                   gap=cert.value_gap, upper=r.upper_value)
        t0 = time.perf_counter()
        sens = p.sensitivity(r.x)
        hyper = sens.hypergradient  # adjoint solve; dy/dx itself (n_y x n_x, dense) is not formed
        out.update(sensitivity_s=time.perf_counter() - t0, sensitivity_status=sens.status,
                   hypergradient_norm=float(np.linalg.norm(hyper)))
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def slope(ns: list[float], vs: list[float]) -> float:
    ok = [(a, b) for a, b in zip(ns, vs) if b and b > 0]
    if len(ok) < 2:
        return float("nan")
    x, y = np.log([a for a, _ in ok]), np.log([b for _, b in ok])
    return float(np.polyfit(x, y, 1)[0])


def report(rows: list[dict]) -> str:
    lines = ["# Scaling of the vectorised sparse pipeline", "",
             "Command: `/work/venv/bin/python benchmarks/scale/run.py` (2 cores, shared machine). "
             f"Solve options: `p.solve(**{SOLVE_OPTIONS})` (KKT route, Scholtes homotopy, certificate).", "",
             "| family | n_y | n_x | follower rows | build s | solve s (Ipopt calls/iterations) | certify s | hypergradient s | peak RSS MiB | status | certified | follower convex |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['n_y']} | {r['n_x']} | {r['n_g']} | {r['build_s']:.2f} | {r['solve_s']:.1f} ({r.get('ipopt_calls', '?')}/{r.get('ipopt_iterations', '?')}) | "
                     f"{r.get('certify_s', float('nan')):.2f} | {r.get('sensitivity_s', float('nan')):.2f} | {r['peak_rss_mib']:.0f} | {r['status']} | "
                     f"{r.get('certified')} | {r.get('follower_convex')} |")
    lines += ["", "Growth exponents (slope of log value vs log n_y over the sizes run):", "",
              "| family | build | solve | certify | hypergradient | peak RSS |", "|---|---|---|---|---|---|"]
    for fam in dict.fromkeys(r["family"] for r in rows):
        rs = [r for r in rows if r["family"] == fam]
        ns = [r["n_y"] for r in rs]
        lines.append(f"| {fam} | " + " | ".join(f"{slope(ns, [r.get(k, 0) for r in rs]):.2f}"
                                               for k in ("build_s", "solve_s", "certify_s", "sensitivity_s", "peak_rss_mib")) + " |")
    return "\n".join(lines) + "\n" + NOTES


NOTES = """
What keeps the pipeline sparse at these sizes (found by profiling n_y = 1000):

- Declaration: `VectorBilevelProblem` builds CasADi SX graphs with sparse `mtimes`, so the
  follower objective has O(nnz(Q)) nodes; no SymPy expression per entry.
- Data structure matters for every sparse factorisation (MUMPS in Ipopt, SuperLU in the
  sensitivity): with *random* sparse design rows XᵀX is an expander
  graph and its factors fill in almost completely (Ipopt at n = 1000: 0.13 s per iteration,
  symbolic Jacobian 6 s). The benchmark's designs are local (banded), as in signal/time-series
  regression; that gave 0.015 s per iteration and 0.23 s for the Jacobian at n = 1000.
- `certify/convexity.py` formed the follower Hessian densely and called `eigvalsh` (5 s per call at
  n = 1000, O(n³) and 800 MB at 10⁴). It now stays sparse (Gershgorin, then ARPACK's smallest
  eigenvalue); its structure check tested each of g's rows for linearity separately, O(rows · n_y):
  78 s at n_y = 10⁴ for box_qp, now one check of the whole block (1.9 s for the full test).
- `box_from_constraints` differentiated every constraint row separately (O(rows · n));
  vectorised declarations hand their bounds over as `lp.known_boxes`.
- The homotopy re-solved the same NLP for 10 values of eps when the MPCC had no complementarity
  pairs (ridge: the follower has no inequalities); it now solves once.
- The benchmark solves with `n_starts=1, global_search=False`: the follower is a convex QP, so
  the certificate (follower re-solve + convexity proof) is exact and the route's global search
  (value-function cuts, sampling) adds nothing but time.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--families", nargs="+", default=["ridge", "box_qp"])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "scale.md"))
    ap.add_argument("--from-log", help="re-render the table from the JSON rows printed by an earlier run")
    ap.add_argument("--one", nargs=2, metavar=("FAMILY", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    if args.from_log:
        import ast
        with open(args.from_log) as fh:
            rows = [ast.literal_eval(line) for line in fh if line.startswith("{")]
        with open(args.out, "w") as fh:
            fh.write(report(rows))
        print(report(rows))
        return
    rows = []
    for fam in args.families:
        for n in args.sizes:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", fam, str(n)],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
            with open(args.out, "w") as fh:
                fh.write(report(rows))
    print(report(rows))


if __name__ == "__main__":
    main()

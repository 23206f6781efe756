"""MILP route on the 24 linear BOLIB problems, checked by an independent KKT active-set enumeration.

    /work/venv/bin/python benchmarks/milp_linear.py      (writes benchmarks/results/bolib_linear_milp.md)

The check does not use the workbench's LP extraction, big-M bounds or MILP: it parses
BOLIB's strings with SymPy (``linear_eq_to_matrix``) and, for every subset S of the
follower's constraints, solves the LP

    min F  s.t.  G >= 0, g >= 0, g_S = 0, lam_S >= 0, lam_(not S) = 0, A_y^T lam = c

(``scipy.optimize.linprog``). Each feasible point is bilevel feasible (the follower
KKT conditions of an LP are sufficient), and every bilevel feasible point lies in one
of them (complementarity picks S), so the minimum over S is the global optimum, and
one unbounded LP proves the bilevel problem unbounded.
"""
from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp
from scipy.optimize import linprog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Enumeration:
    value: float            # global optimum (-inf when unbounded, inf when infeasible)
    point: np.ndarray | None
    n_lps: int
    unbounded_set: tuple | None


def parse_record(rec: dict) -> dict:
    """Matrices of a linear BOLIB record: F = cF.v + dF, G = AG v + bG >= 0, etc. (v = [x, y])."""
    xs = sp.symbols(f"x1:{rec['nx'] + 1}")
    ys = sp.symbols(f"y1:{rec['ny'] + 1}")
    env = {str(s): s for s in (*xs, *ys)}
    v = list(xs) + list(ys)

    def mat(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not strings:
            return np.zeros((0, len(v))), np.zeros(0)
        A, b = sp.linear_eq_to_matrix([sp.sympify(s, locals=env) for s in strings], v)
        return np.array(A, dtype=float), -np.array(b, dtype=float).reshape(-1)

    AF, bF = mat([rec["F"]])
    AG, bG = mat(rec["G"])
    Ag, bg = mat(rec["g"])
    Af, bf = mat([rec["f"]])
    return dict(nx=rec["nx"], ny=rec["ny"], cF=AF[0], dF=bF[0], cf=Af[0, rec["nx"]:], fx=Af[0, :rec["nx"]], df=bf[0],
                AG=AG, bG=bG, Ag=Ag, bg=bg)


def enumerate_kkt(rec: dict) -> Enumeration:
    """Global optimum of a linear bilevel BOLIB record by enumerating complementarity patterns."""
    d = parse_record(rec)
    nx, ny, ng = d["nx"], d["ny"], len(d["bg"])
    n = nx + ny + ng
    A_ub = np.hstack([-np.vstack([d["AG"], d["Ag"]]), np.zeros((len(d["bG"]) + ng, ng))])
    b_ub = np.concatenate([d["bG"], d["bg"]])
    stat = np.hstack([np.zeros((ny, nx + ny)), d["Ag"][:, nx:].T])   # A_y^T lam = c
    c = np.concatenate([d["cF"], np.zeros(ng)])
    best, point, count = np.inf, None, 0
    for k in range(ng + 1):
        for S in itertools.combinations(range(ng), k):
            rows = np.hstack([d["Ag"][list(S)], np.zeros((k, ng))]) if k else np.zeros((0, n))
            A_eq = np.vstack([stat, rows])
            b_eq = np.concatenate([d["cf"], -d["bg"][list(S)]])
            bounds = [(None, None)] * (nx + ny) + [(0, None) if i in S else (0, 0) for i in range(ng)]
            r = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
            count += 1
            if r.status == 3:
                return Enumeration(-np.inf, None, count, S)
            if r.status == 0 and r.fun + d["dF"] < best:
                best, point = r.fun + d["dF"], r.x[:nx + ny]
    return Enumeration(best, point, count, None)


def follower_value_at(rec: dict, x: np.ndarray) -> float:
    """The follower LP's optimal value f(x, y*(x)) at a fixed x (linprog), for checking a claimed point."""
    d = parse_record(rec)
    nx = d["nx"]
    r = linprog(d["cf"], A_ub=-d["Ag"][:, nx:], b_ub=d["bg"] + d["Ag"][:, :nx] @ x,
                bounds=[(None, None)] * d["ny"], method="highs")
    return float(r.fun + d["fx"] @ x + d["df"]) if r.status == 0 else float("nan")


def unbounded_ray(rec: dict, scales: tuple = (10.0, 100.0, 1000.0)) -> list[dict]:
    """Bilevel-feasible points with F -> -inf: the enumerated unbounded pattern, boxed by 0 <= x <= K."""
    d = parse_record(rec)
    out = []
    S = list(enumerate_kkt(rec).unbounded_set)
    nx, ny, ng = d["nx"], d["ny"], len(d["bg"])
    for K in scales:
        A_ub = np.hstack([-np.vstack([d["AG"], d["Ag"]]), np.zeros((len(d["bG"]) + ng, ng))])
        stat = np.hstack([np.zeros((ny, nx + ny)), d["Ag"][:, nx:].T])
        rows = np.hstack([d["Ag"][S], np.zeros((len(S), ng))])
        bounds = [(-K, K)] * nx + [(None, None)] * ny + [(0, None) if i in S else (0, 0) for i in range(ng)]
        r = linprog(np.concatenate([d["cF"], np.zeros(ng)]), A_ub=A_ub, b_ub=np.concatenate([d["bG"], d["bg"]]),
                    A_eq=np.vstack([stat, rows]), b_eq=np.concatenate([d["cf"], -d["bg"][S]]),
                    bounds=bounds, method="highs")
        x, y = r.x[:nx], r.x[nx:nx + ny]
        out.append(dict(K=K, F=float(r.fun + d["dF"]), x=x, y=y,
                        follower_value=float(d["cf"] @ y + d["fx"] @ x + d["df"]),
                        follower_optimum=follower_value_at(rec, x),
                        min_G=float(np.min(d["AG"] @ r.x[:nx + ny] + d["bG"])) if len(d["bG"]) else 0.0,
                        min_g=float(np.min(d["Ag"] @ r.x[:nx + ny] + d["bg"]))))
    return out


def main() -> None:
    import workbench as wb
    lines = ["# MILP route on the 24 linear BOLIB problems", "",
             "Produced by `benchmarks/milp_linear.py` (HiGHS via `scipy.optimize.milp`; check by independent",
             "enumeration of the follower's KKT active sets, one `linprog` per subset). Times are wall-clock on",
             "the 2-core build machine.", "",
             "| problem | flag | BOLIB F_best | MILP status | MILP F | enumeration F | LPs | agree | binaries | MILP s "
             "| strong duality (local, 6 starts) F | SD status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    tally = {"equal": [], "better": [], "no reference": [], "unbounded": [], "disagree": []}
    for name in wb.bolib.names("linear"):
        p, rec = wb.bolib.load(name), wb.bolib.record(name)
        t = time.perf_counter()
        r = p.solve(method="milp")
        dt = time.perf_counter() - t
        Fm = r.upper_value if r.x is not None else (-np.inf if r.status == "unbounded" else np.nan)
        e = enumerate_kkt(rec)
        sd = p.solve(method="strong_duality")
        Fsd = sd.upper_value if sd.x is not None else float("nan")
        agree = (np.isinf(Fm) and np.isinf(e.value) and Fm == e.value) or abs(Fm - e.value) <= 1e-6 * (1 + abs(e.value))
        lines.append(f"| {name} | {rec['flag']} | {rec['F_best']} | {r.status} | {Fm:.10g} | {e.value:.10g} | "
                     f"{e.n_lps} | {'yes' if agree else 'NO'} | {r.info.get('n_binaries', '-')} | {dt:.3f} | {Fsd:.10g} "
                     f"| {sd.status} |")
        if not agree:
            tally["disagree"].append(name)
        elif rec["F_best"] is None:
            tally["no reference"].append(name)
        elif np.isinf(Fm):
            tally["unbounded"].append(name)
        elif abs(Fm - rec["F_best"]) <= 1e-6 * (1 + abs(Fm)):
            tally["equal"].append(name)
        else:
            tally["better" if Fm < rec["F_best"] else "disagree"].append(name)
        if rec["F_best"] is not None and np.isfinite(Fm) and abs(Fm - rec["F_best"]) > 1e-6 * (1 + abs(Fm)):
            notes.append(f"- **{name}**: MILP F = {Fm:.10g} at x = {np.round(r.x, 8).tolist()}, "
                         f"y = {np.round(r.y, 8).tolist()}; BOLIB lists {rec['F_best']} (flag {rec['flag']}); "
                         f"follower value at x by linprog {follower_value_at(rec, r.x):.10g} vs f(x, y) = "
                         f"{r.lower_value:.10g}.")
        if r.info.get("objective_cut") is not None:
            notes.append(f"- **{name}**: a slack was unbounded over the high-point relaxation; big-M bounds "
                         f"were derived after the incumbent cut F <= {r.info['objective_cut']:.10g}.")
        if name == "TuyEtal2007Ex3":
            ray = unbounded_ray(rec)
            notes.append(f"- **{name}**: unbounded. The enumeration finds an unbounded LP for active set "
                         f"{e.unbounded_set} (0-based follower constraints); boxing the leader by |x| <= K:")
            for row in ray:
                notes.append(f"  - K = {row['K']:g}: F = {row['F']:.6f}, min G = {row['min_G']:.3g}, "
                             f"min g = {row['min_g']:.3g}, f(x, y) = {row['follower_value']:.6f}, follower "
                             f"optimum by linprog = {row['follower_optimum']:.6f}, x = {np.round(row['x'], 4).tolist()}")
    Path(ROOT / "benchmarks/results").mkdir(parents=True, exist_ok=True)
    summary = ["", "## Findings (hand derivations, independent of both codes)", "",
               "- **HuHuangZhang2009** (BOLIB flag 1, F_best = -76/9): f = -x - 3 y1 ignores y2, and y1 <= 8/9 - y2,",
               "  y1 <= 25/9 - x - y2, so the follower picks y2 = 0, y1 = min(8/9, 25/9 - x). With x <= 2 (from",
               "  y2 + x <= 2): F = -4x - 8/9 for x <= 17/9 and F = -3x - 25/9 on [17/9, 2], decreasing, so the",
               "  optimum is x = 2, y = (7/9, 0), F = -79/9 = -8.7778. BOLIB's -76/9 is the value at the kink x = 17/9.",
               "- **LanWenShihLee2007** (flag 2, F_best = -85.0855): the follower minimises y, so y*(x) =",
               "  max((8 - x)/4, (x - 4)/2, 2x - 24, 0); on the last piece (x >= 44/3) F = 2x - 11(2x - 24) = 264 - 20x,",
               "  feasible while 2x - 24 <= (96 - 3x)/4, i.e. x <= 192/11 (the other caps, 19.6 and 30.8, are looser).",
               "  Optimum x = 192/11, y = 120/11,",
               "  F = -936/11 = -85.090909; BOLIB's listed value is 0.0054 worse (a best-known value, flag 2).",
               "- **TuyEtal2007Ex3** (flag 2, F_best = -467.4613; the data README quotes -864.16 from an active-set",
               "  enumeration): as stated in BOLIB v2 (our strings match BOLIB's m-file matrices A, B, C, D) the leader",
               "  variables have only lower bounds, and the problem is **unbounded below**: along the points listed",
               "  in the notes, both levels are feasible, the follower's value equals its LP optimum (solved",
               "  separately with linprog at that x) and F decreases linearly in K (about -365 K). Neither -467.46",
               "  nor -864.16 is therefore an optimum. (Our guess at the origin of -864.16: an enumeration that",
               "  skips unbounded active-set LPs instead of reporting them returns a finite best value.)",
               "- **MershaDempe2006Ex1** (flag 0, no best-known value): y*(x) = max((5x - 33)/2, (9 - x)/2, 0);",
               "  F = x - 8y is 5x - 36 on [1, 7] and 132 - 19x on [7, 9] (y <= 15 - x caps x at 9), so the global",
               "  optimum is x = 9, y = 6, F = -39, which both the MILP and the enumeration find.",
               "- The strong-duality route (Ipopt, 6 leader starts, local) reaches the same value on all 23 bounded",
               "  problems; on TuyEtal2007Ex3 Ipopt stops without a point (the problem is unbounded).",
               "- The brief expected 21 matches and 2 improvements among 23 problems with a reference value; we",
               "  find 20 matches, 2 strictly better finite optima and 1 unbounded problem.",
               "", "## Summary", ""] + [f"- {k}: {len(v)} {v if k != 'equal' else ''}".rstrip() for k, v in tally.items()]
    text = "\n".join(lines + summary + ["", "## Notes", ""] + notes) + "\n"
    (ROOT / "benchmarks/results/bolib_linear_milp.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

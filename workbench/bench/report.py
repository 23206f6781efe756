"""Markdown summary of a BOLIB run (committed under benchmarks/results/)."""
from __future__ import annotations



def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def markdown(records, summary, base_records=None, base_summary=None, command="") -> str:
    lines = ["# BOLIB v2 benchmark", "", f"Command: `{command}`", "",
             "A problem counts as *solved* when the returned point is feasible, follower-optimal (re-checked",
             "independently with SciPy SLSQP multistart, plus a 4001-point grid for one-variable followers",
             "with a finite box) and its upper value is within 1 % of BOLIB's best known or better",
             "(F <= F_best + 0.01 max(1, |F_best|)). A *false claim* is a record with status `optimal`",
             "whose point fails that feasibility/follower-optimality check.", "",
             "| run | solved (of with best-known) | claimed optimal | false claims | median time | total time |",
             "|---|---|---|---|---|---|"]

    def row(label, s):
        return (f"| {label} | {s['solved_with_best_known']} / {s['with_best_known']} | {s['claimed_optimal']} | "
                f"{s['false_claims']} | {s['median_time_s']:.3f} s | {s['total_time_s']:.1f} s |")

    lines.append(row("workbench (multistart + certificate + cuts)", summary))
    if base_summary:
        lines.append(row("baseline (one-start Scholtes)", base_summary))
        lines += ["", f"Time ratio workbench / baseline (same run): median {_ratio(summary['median_time_s'], base_summary['median_time_s'])},"
                  f" total {_ratio(summary['total_time_s'], base_summary['total_time_s'])}."]
    misses = [r for r in records if r.get("F_best") is not None and not r.get("solved")]
    lines += ["", f"## Problems with a best-known value not solved ({len(misses)})", "",
              "| problem | status | F | F_best | feasible | follower-optimal | note |", "|---|---|---|---|---|---|---|"]
    for r in misses:
        F = r.get("upper_value")
        lines.append(f"| {r['name']} | {r.get('status')} | {F if F is None else f'{F:.6g}'} | {r['F_best']:.6g} | "
                     f"{r.get('verified_feasible')} | {r.get('verified_follower_optimal')} | {r.get('error', '')} |")
    return "\n".join(lines) + "\n"

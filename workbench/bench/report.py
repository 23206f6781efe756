"""Markdown summary of a BOLIB run (committed under benchmarks/results/)."""
from __future__ import annotations



def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def markdown(records, summary, base_records=None, base_summary=None, command="") -> str:
    lines = ["# BOLIB v2 benchmark", "", f"Command: `{command}`", "",
             "A problem counts as *solved* when the returned point is *verified* and its upper value is within",
             "1 % of BOLIB's best known or better (F <= F_best + 0.01 max(1, |F_best|)). *Verified* is the",
             "independent verifier (`workbench/bench/verify.py`): feasibility by NumPy on the user's SymPy",
             "expressions, follower optimality by a global SCIP solve of the follower at the returned x",
             "(gap <= 1e-5 (1 + |f|)), failing closed (no SCIP proof: not verified). It shares no decision",
             "with the certificate, which proves by convexity + KKT residuals or SCIP at 1e-9. A *false claim*",
             "is a record with status `optimal` that the verifier does not verify. *Proofs* counts the",
             "`optimal` records by their certificate's proof (convex / global / other).", "",
             "| run | solved (of with best-known) | claimed optimal | proofs convex / global / other | verified | false claims | median time | total time |",
             "|---|---|---|---|---|---|---|---|"]

    def row(label, s):
        pr = s.get("optimal_by_proof", {})
        other = s["claimed_optimal"] - pr.get("convex", 0) - pr.get("global", 0)
        return (f"| {label} | {s['solved_with_best_known']} / {s['with_best_known']} | {s['claimed_optimal']} | "
                f"{pr.get('convex', 0)} / {pr.get('global', 0)} / {other} | {s.get('verified', 'n/a')} | "
                f"{s['false_claims']} | {s['median_time_s']:.3f} s | {s['total_time_s']:.1f} s |")

    lines.append(row("workbench (multistart + certificate + cuts)", summary))
    if base_summary:
        lines.append(row("baseline (one-start Scholtes)", base_summary))
        lines += ["", f"Time ratio workbench / baseline (same run): median {_ratio(summary['median_time_s'], base_summary['median_time_s'])},"
                  f" total {_ratio(summary['total_time_s'], base_summary['total_time_s'])}."]
    misses = [r for r in records if r.get("F_best") is not None and not r.get("solved")]
    lines += ["", f"## Problems with a best-known value not solved ({len(misses)})", "",
              "| problem | status | proof | F | F_best | feasible | follower-optimal | note |", "|---|---|---|---|---|---|---|---|"]
    for r in misses:
        F = r.get("upper_value")
        note = r.get("error") or (r.get("verified_reason") or "")[:80]
        lines.append(f"| {r['name']} | {r.get('status')} | {r.get('proof')} | {F if F is None else f'{F:.6g}'} | "
                     f"{r['F_best']:.6g} | {r.get('verified_feasible')} | {r.get('verified_follower_optimal')} | {note} |")
    return "\n".join(lines) + "\n"

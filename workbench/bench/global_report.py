"""Markdown summary of a ``--method global`` BOLIB run (benchmarks/results/bolib_global.md).

A problem counts as a *proven global optimum* when the route says ``optimal`` with
``optimality == "global"``, the independent verifier (bench/verify.py) confirms feasibility and
follower optimality, and the optimum is not on an assumed bound (the route never calls those
global). Proofs that hold only inside an assumed box (a variable without derivable bounds) are
counted separately.
"""
from __future__ import annotations

import os

import numpy as np


def _proven(r: dict) -> bool:
    return bool(r.get("status") == "optimal" and r.get("optimality") == "global"
                and r.get("verified_feasible") and r.get("verified_follower_optimal"))


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.6g}"


def global_markdown(records: list[dict], command: str, wall_s: float) -> str:
    n = len(records)
    proven = [r for r in records if _proven(r)]
    derived = [r for r in proven if not r.get("assumed_box")]
    boxed = [r for r in proven if r.get("assumed_box")]
    mult_only = [r for r in boxed if all(v.startswith(("lam[", "mu[", "s[")) for v in r["assumed_box"])]
    claimed_not_verified = [r for r in records if r.get("status") == "optimal" and r.get("optimality") == "global"
                            and not _proven(r)]
    bound_only = [r for r in records if not _proven(r) and r.get("bound") is not None and r not in claimed_not_verified]
    refused = [r for r in records if r.get("status") == "crashed" and "MethodError" in str(r.get("error", ""))]
    crashed = [r for r in records if r.get("status") == "crashed" and r not in refused]
    times = np.array([r.get("time_s") or 0.0 for r in records])
    tp = np.array([r.get("time_s") or 0.0 for r in proven]) if proven else np.zeros(1)
    mb = [r for r in records if r["name"].startswith("MitsosBarton2006")]
    mb_bnd = [r for r in mb if _proven(r) and "bounding" in str(r.get("route", ""))]
    mb_any = [r for r in mb if _proven(r)]
    beaten = [r for r in proven if r.get("F_best") is not None and r.get("upper_value") is not None
              and r["upper_value"] < r["F_best"] - 1e-4 * (1 + abs(r["F_best"]))]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[str(r.get("status"))] = statuses.get(str(r.get("status")), 0) + 1
    out = [
        "# BOLIB v2 with `method=\"global\"` (SCIP)",
        "",
        f"Command: `{command}` (2 worker processes on a shared 2-core machine; wall {wall_s:.0f} s; load average "
        f"at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min): timings are inflated by it).",
        "",
        "A proven global optimum: status `optimal`, `optimality == \"global\"` (SCIP closed the gap of the KKT",
        "relaxation, or the bounding scheme closed its gap to 1e-3 (1 + |F|)), and the independent verifier",
        "(`bench/verify.py`) confirms the point. Optima on an assumed bound are never reported as global.",
        "",
        "| | count |", "|---|---|",
        f"| problems | {n} |",
        f"| **proven global optima** | **{len(proven)}** |",
        f"| &nbsp;&nbsp;with bounds derived from the constraints only | {len(derived)} |",
        f"| &nbsp;&nbsp;inside an assumed box (variables without derivable bounds, listed per problem) | {len(boxed)} |",
        f"| &nbsp;&nbsp;&nbsp;&nbsp;of them: only multipliers/slacks assumed (lam, mu, s in [-1e3, 1e3]) | {len(mult_only)} |",
        f"| &nbsp;&nbsp;&nbsp;&nbsp;of them: leader or follower variables assumed too | {len(boxed) - len(mult_only)} |",
        f"| claimed global but not confirmed by the verifier | {len(claimed_not_verified)} |",
        f"| a valid bound but no proven optimum | {len(bound_only)} |",
        f"| refused with a typed reason (`MethodError`) | {len(refused)} |",
        f"| crashed | {len(crashed)} |",
        f"| MitsosBarton2006 examples proven global (all routes) | {len(mb_any)} of {len(mb)} |",
        f"| &nbsp;&nbsp;of them by the bounding scheme (nonconvex follower) | {len(mb_bnd)} |",
        "",
        "Statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        "",
        "## Time (seconds, per problem, including the certificate)",
        "",
        "| | all problems | proven global |", "|---|---|---|",
        f"| median | {np.median(times):.3g} | {np.median(tp):.3g} |",
        f"| 75 % | {np.percentile(times, 75):.3g} | {np.percentile(tp, 75):.3g} |",
        f"| 90 % | {np.percentile(times, 90):.3g} | {np.percentile(tp, 90):.3g} |",
        f"| max | {times.max():.3g} | {tp.max():.3g} |",
        f"| under 0.1 s | {int((times < 0.1).sum())} | {int((tp < 0.1).sum()) if proven else 0} |",
        f"| under 1 s | {int((times < 1).sum())} | {int((tp < 1).sum()) if proven else 0} |",
        "",
        "## Proven global optima below BOLIB's listed value",
        "",
        "| problem | proven F | BOLIB F | x | y | scope |", "|---|---|---|---|---|---|",
    ]
    for r in beaten:
        out.append(f"| {r['name']} | {r['upper_value']:.8g} | {r['F_best']:.6g} | {np.round(r['x'], 6).tolist()} | "
                   f"{np.round(r['y'], 6).tolist()} | {r.get('global_scope')} |")
    out += ["", "## Bound only (no proven global optimum)", "",
            "| problem | status | F | bound | gap | reason |", "|---|---|---|---|---|---|"]
    for r in bound_only:
        F, b = r.get("upper_value"), r.get("bound")
        gap = None if F is None or b is None else F - b
        out.append(f"| {r['name']} | {r.get('status')} | {_fmt(F)} | {_fmt(b)} | {_fmt(gap)} | "
                   f"{str(r.get('message', ''))[:160].replace('|', '/')} |")
    out += ["", "## Claimed global by the route, not confirmed by the verifier", "",
            "| problem | F | route's proof | verifier |", "|---|---|---|---|"]
    for r in claimed_not_verified:
        out.append(f"| {r['name']} | {_fmt(r.get('upper_value'))} | {r.get('proof')} | "
                   f"{str(r.get('verified_reason'))[:160].replace('|', '/')} |")
    out += ["", "## Proven inside an assumed box", "", "| problem | F | assumed |", "|---|---|---|"]
    for r in boxed:
        out.append(f"| {r['name']} | {r['upper_value']:.8g} | {', '.join(r.get('assumed_box') or [])} |")
    out += ["", "## Not proven (other statuses) and refusals", "", "| problem | status | reason |", "|---|---|---|"]
    for r in records:
        if _proven(r) or r in bound_only or r in claimed_not_verified:
            continue
        why = r.get("error") or r.get("message") or ""
        out.append(f"| {r['name']} | {r.get('status')} | {str(why)[:200].replace('|', '/')} |")
    return "\n".join(out) + "\n"

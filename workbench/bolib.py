"""BOLIB v2 test problems (Zhou, Zemkoho & Tin), shipped in ``workbench/data/bolib.json``.

``load(name)`` returns a :class:`BilevelProblem` with BOLIB's start point; the
best-known values and status flag are in ``problem.info``. Attribution and
licence notes: ``workbench/data/BOLIB_README.md``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import sympy as sp

from .errors import ModelError
from .model import BilevelProblem


@lru_cache(maxsize=1)
def _records() -> dict[str, dict]:
    text = resources.files("workbench").joinpath("data/bolib.json").read_text()
    return {r["name"]: r for r in json.loads(text)}


def names(category: str | None = None, with_best_known: bool = False) -> list[str]:
    """Problem names, optionally only one category ("linear", "nonlinear", "simple")."""
    out = []
    for n, r in _records().items():
        if category is not None and r["category"] != category:
            continue
        if with_best_known and r["F_best"] is None:
            continue
        out.append(n)
    return out


def record(name: str) -> dict[str, Any]:
    """The raw JSON record (strings, start point, best-known values)."""
    try:
        return dict(_records()[name])
    except KeyError:
        raise ModelError(f"no BOLIB problem named {name!r}; see workbench.bolib.names()") from None


def load(name: str) -> BilevelProblem:
    """A BOLIB problem as a ``BilevelProblem`` (constraints ``expr >= 0``, x1.., y1.. symbols)."""
    r = record(name)
    xs = sp.symbols(f"x1:{r['nx'] + 1}", real=True)
    ys = sp.symbols(f"y1:{r['ny'] + 1}", real=True)
    env = {str(s): s for s in (*xs, *ys)}
    env.update({"exp": sp.exp, "cos": sp.cos, "sin": sp.sin, "abs": sp.Abs, "pi": sp.pi, "log": sp.log,
                "sqrt": sp.sqrt})
    parse = lambda s: sp.sympify(s, locals=env)  # noqa: E731 - data strings, parsed by SymPy
    start = dict(zip(xs, r["x0"])) | dict(zip(ys, r["y0"]))
    return BilevelProblem(
        leader=xs, follower=ys, upper_objective=parse(r["F"]), lower_objective=parse(r["f"]),
        upper_constraints=[parse(g) >= 0 for g in r["G"]], lower_constraints=[parse(g) >= 0 for g in r["g"]],
        start=start, name=name,
        info={"F_best": r["F_best"], "f_best": r["f_best"], "flag": r["flag"], "category": r["category"],
              "source": "BOLIB v2 (Zhou, Zemkoho & Tin)"},
    )

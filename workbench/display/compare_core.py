"""``wb.compare(p, relaxations=[...])``: one table and one plot over the same problem.

``compare_data`` solves the problem once per relaxation (and per extra route in
``methods``) and returns plain rows; :class:`Comparison` renders them as an
HTML table with the plot embedded as PNG (so it survives nbconvert).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..errors import WorkbenchError
from ..reformulate import Relaxation
from ..status import FAILED
from .progressbar import Progress

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem

COLUMNS = ("name", "status", "objective", "complementarity", "certified", "gap", "time_s", "steps")


def _row(name: str, r: Any) -> dict:
    cert = r.certificate
    ok = r.x is not None and r.status not in FAILED
    return {
        "name": name, "status": r.status,
        "objective": r.upper_value if ok else float("nan"),
        "complementarity": float(cert.complementarity) if cert is not None else float("nan"),
        "certified": bool(cert is not None and cert.passed),
        "gap": float(cert.value_gap) if cert is not None else float("nan"),
        "time_s": float(r.time_s), "steps": len(r.log), "result": r,
    }


def compare_data(problem: Problem, relaxations: Iterable[str] | None = None, methods: Iterable[str] = (),
                 show_progress: bool = True, **solve_options: Any) -> list[dict]:
    """Solve with every relaxation (KKT route) and every extra method; one row each.

    A method that does not apply (a :class:`~workbench.errors.WorkbenchError`) gets a
    row with its message as status instead of stopping the comparison.
    """
    names = [Relaxation.parse(r).value for r in (relaxations or [r.value for r in Relaxation])]
    jobs = [("kkt", {"relaxation": n}, n) for n in names] + [(m, {}, m) for m in methods]
    rows = []
    bar = Progress(len(jobs), desc="compare", show=show_progress)
    for method, opts, label in jobs:
        try:
            r = problem.solve(method=method, **{**solve_options, **opts})
        except WorkbenchError as exc:
            bar.update(label)
            rows.append({"name": label, "status": f"{type(exc).__name__}: {exc}", "objective": float("nan"),
                         "complementarity": float("nan"), "certified": False, "gap": float("nan"),
                         "time_s": float("nan"), "steps": 0, "result": None})
            continue
        rows.append(_row(label, r))
        bar.update(label)
    return rows


@dataclass
class Comparison:
    """Rows of :func:`compare_data` with a table and a plot."""

    problem: Problem
    rows: list[dict]
    figure: Any = field(default=None, repr=False)

    def best(self) -> dict:
        """The certified row with the lowest objective in the leader's sense."""
        sign = -1.0 if self.problem.upper_sense == "max" else 1.0
        ok = [r for r in self.rows if r["certified"]]
        if not ok:
            raise WorkbenchError("no method produced a certified point; see the table's status column")
        return min(ok, key=lambda r: sign * r["objective"])

    def table_html(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in COLUMNS)
        body = ""
        for r in self.rows:
            cells = []
            for c in COLUMNS:
                v = r[c]
                cells.append(f"{v:.6g}" if isinstance(v, float) else html.escape(str(v)))
            body += "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        return f"<table class='wb-compare'><tr>{head}</tr>{body}</table>"

    def plot(self) -> Any:
        from .plots import plot_compare
        if self.figure is None:
            self.figure = plot_compare(self.rows)
        return self.figure

    def _repr_html_(self) -> str:
        from .plots import figure_png
        png = base64.b64encode(figure_png(self.plot())).decode()
        return self.table_html() + f"<img class='wb-compare-plot' src='data:image/png;base64,{png}'/>"

    def __repr__(self) -> str:
        lines = [" | ".join(COLUMNS)]
        for r in self.rows:
            lines.append(" | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS))
        return "\n".join(lines)


def compare(problem: Problem, relaxations: Iterable[str] | None = None, methods: Iterable[str] = (),
            show_progress: bool = True, **solve_options: Any) -> Comparison:
    """Compare relaxations (and routes) on one problem: objective, residual, certificate, time."""
    rows = compare_data(problem, relaxations, methods, show_progress, **solve_options)
    cmp = Comparison(problem, rows)
    if all(not np.isfinite(r["objective"]) for r in rows):
        return cmp
    cmp.plot()  # a figure outside pyplot: shown through _repr_html_ only
    return cmp

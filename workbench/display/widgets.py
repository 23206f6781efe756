"""``wb.explore(p)``: sliders over the pure :func:`explore_data` (compute first, widget second).

One slider per leader variable and parameter (``continuous_update=False``: a
solve per release, not per pixel), a dropdown choosing the coordinate the curves
run along, an HTML table (reply, multipliers, active set, values, dy/dx,
certificate) and a matplotlib figure re-drawn as PNG into an ``Image``. Workbench
errors are shown in a log ``Output``; anything else is captured there by
``Output.capture`` (ipywidgets' idiom), so a bad slider position never kills the UI.
"""
from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any, Mapping

import ipywidgets as w
import numpy as np

from ..errors import ValueInputError, WorkbenchError
from .explore_core import ExploreState, explore_data, leader_ranges

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


class Explorer:
    """A plain object owning the widget; it displays itself via ``_repr_mimebundle_``."""

    def __init__(self, problem: Problem, ranges: Mapping | None = None, n_grid: int = 41, plot: bool = True,
                 at: Any = None):
        self.problem, self.n_grid, self.with_plot = problem, n_grid, plot
        self.ranges = leader_ranges(problem, ranges)
        self.state: ExploreState | None = None
        self.sliders: dict[Any, w.FloatSlider] = {}
        starts = {**{s: problem.start.get(s, 0.0) for s in problem.leader}, **problem.parameter_values}
        if at is not None:  # a BilevelResult (start at its solution) or a dict {symbol: value}
            point = dict(at.leader) if hasattr(at, "leader") and hasattr(at, "status") else dict(at)
            if hasattr(at, "parameters") and hasattr(at, "status"):
                point.update(zip(problem.parameter_symbols, at.parameters))
            unknown = set(point) - set(starts)
            if unknown:
                raise ValueInputError(f"at= gives {sorted(map(str, unknown))[0]}, which is neither a leader "
                                      "variable nor a parameter")
            starts.update(point)
        for s, (a, b) in self.ranges.items():
            self.sliders[s] = w.FloatSlider(value=float(np.clip(starts[s], a, b)), min=a, max=b, step=(b - a) / 200,
                                            description=str(s), continuous_update=False, readout_format=".4g")
        self.coord = w.Dropdown(options=[(str(s), i) for i, s in enumerate(problem.leader)], value=0,
                                description="curves in")
        self.table = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(width="100%"))
        self.image.add_class("wb-explore-plot")
        self.log = w.Output()
        self.figure = None
        for ctrl in [*self.sliders.values(), self.coord]:
            ctrl.observe(self._on_change, names="value")
        controls = w.VBox([*self.sliders.values(), self.coord])
        self.box = w.VBox([w.HBox([controls, self.table]), self.image, self.log])
        self.box.add_class("wb-explorer")
        self.update()

    # -- reading the controls ---------------------------------------------------
    def leader_point(self) -> np.ndarray:
        return np.array([self.sliders[s].value for s in self.problem.leader], dtype=float)

    def parameters(self) -> dict:
        return {s: self.sliders[s].value for s in self.problem.parameter_symbols}

    # -- updating ----------------------------------------------------------------
    def _on_change(self, change: dict) -> None:
        with self.log:
            self.update()

    def update(self) -> ExploreState | None:
        """Recompute the data at the sliders' position and redraw table and plot."""
        if self.log.outputs:
            self.log.clear_output()
        try:
            rng = {s: self.ranges[s] for s in self.problem.leader}
            self.state = explore_data(self.problem, self.leader_point(), self.parameters(), self.coord.value,
                                      ranges=rng, n_grid=self.n_grid)
        except WorkbenchError as exc:
            self.log.append_stdout(f"{type(exc).__name__}: {exc}\n")
            return None
        self.table.value = self.table_html(self.state)
        if self.with_plot:
            self.redraw()
        return self.state

    def table_html(self, state: ExploreState) -> str:
        rows = state.table(self.problem)
        body = "".join(f"<tr><td>{html.escape(k)}</td><td class='wb-value' data-key='{html.escape(k)}'>"
                       f"{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table class='wb-explore-table'>{body}</table>"

    def redraw(self) -> None:
        """Draw into one reused figure and show it as PNG bytes in an Image widget."""
        from .plots import ExploreFigure
        if self.figure is None:
            self.figure = ExploreFigure(self.problem, blit=True)  # no pyplot: never shown twice
        self.image.value = self.figure.png(self.state)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, plus a static table and plot for viewers without a widget manager."""
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and self.state is not None:
            png = base64.b64encode(self.image.value).decode() if self.image.value else ""
            bundle["text/html"] = self.table.value + (f"<img src='data:image/png;base64,{png}'/>" if png else "")
        return bundle


def explore(problem: Problem, ranges: Mapping | None = None, n_grid: int = 41, at: Any = None) -> Explorer:
    """Interactive explorer of the follower's reply.

    ``ranges={symbol: (low, high)}`` overrides the slider ranges read from the bounds;
    ``at`` (a result of ``p.solve()`` or ``{symbol: value}``) sets the sliders' start.
    """
    return Explorer(problem, ranges=ranges, n_grid=n_grid, at=at)

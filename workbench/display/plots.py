"""Matplotlib views over plain data: the explorer's curves, the homotopy trace, comparisons."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


def _figure(ncols: int, fig: Any = None, width: float = 4.0):
    """A figure outside pyplot: returned to the caller, shown once (as a cell's value), never twice."""
    if fig is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        fig = Figure(figsize=(width * ncols, 3.2), constrained_layout=True)
        FigureCanvasAgg(fig)
        fig._repr_png_ = lambda: figure_png(fig, dpi=100)  # Jupyter shows it even when pyplot is not loaded
        axes = fig.subplots(1, ncols)
    else:
        fig.clf()
        axes = fig.subplots(1, ncols)
    return fig, np.atleast_1d(axes)


class ExploreFigure:
    """The explorer's three panels along one leader coordinate, built once and updated in place.

    Panels: y*(x); multipliers; phi(x) = f(x, y*(x)) and F(x, y*(x)); the current point is
    marked. With ``blit=True`` (the widget) the curves, axes and labels are rendered once per
    set of curves and kept as a background; a slider move only redraws the markers on it
    and encodes the PNG (Agg blitting), which keeps a move far below a full re-render.
    """

    def __init__(self, problem: Problem, width: float = 12.0, blit: bool = False):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        self.problem, self.blit = problem, blit
        self.fig = Figure(figsize=(width, 3.2), dpi=80)
        self.canvas = FigureCanvasAgg(self.fig)
        self.fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.9, wspace=0.22)
        self.axes = self.fig.subplots(1, 3)
        labels = ([[f"{s}*" for s in problem.follower],
                   [f"λ[{c.name}]" for c in problem.g] + [f"μ[{c.name}]" for c in problem.h],
                   ["φ(x) = f(x, y*(x))", "F(x, y*(x))"]])
        titles = ("follower response", "multipliers", "value function, reduced objective")
        self.lines: list[list[tuple[Any, Any]]] = []
        for ax, names, title in zip(self.axes, labels, titles):
            pairs = []
            for name in names:
                line, = ax.plot([], [], label=name)
                mark, = ax.plot([], [], "o", color=line.get_color(), animated=blit)
                pairs.append((line, mark))
            self.lines.append(pairs)
            ax.set_title(title, fontsize=10)
            if names:
                ax.legend(fontsize=8, loc="best")
        self.vlines = [ax.axvline(0.0, color="0.6", lw=0.8, animated=blit) for ax in self.axes]
        self._curves_key: Any = None
        self._background: Any = None

    def _set_curves(self, state: Any) -> None:
        t = state.grid
        curves = [state.curve_y.T, np.vstack([state.curve_lam.T, state.curve_mu.T]),
                  np.vstack([state.curve_phi, state.curve_F])]
        name = str(self.problem.leader[state.coord])
        for ax, pairs, ys in zip(self.axes, self.lines, curves):
            for (line, _), yk in zip(pairs, ys):
                line.set_data(t, yk)
            ax.set_xlabel(name)
            ax.relim(visible_only=True)
            ax.autoscale_view()

    def update(self, state: Any) -> Any:
        key = (id(state.curve_y), id(state.curve_F), state.coord)
        if key != self._curves_key:
            self._set_curves(state)
            self._curves_key, self._background = key, None
        xs = state.x[state.coord]
        points = [state.y, np.concatenate([state.lam, state.mu]), np.array([state.phi, state.F])]
        for pairs, pts, vl in zip(self.lines, points, self.vlines):
            for (_, mark), pk in zip(pairs, pts):
                mark.set_data([xs], [pk])
            vl.set_xdata([xs, xs])
        if not self.blit:
            for ax in self.axes:
                ax.relim()
                ax.autoscale_view()
        return self.fig

    def png(self, state: Any) -> bytes:
        """The figure at ``state`` as PNG bytes (blitted when ``blit=True``)."""
        self.update(state)
        if not self.blit:
            return figure_png(self.fig)
        import io

        from PIL import Image
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.canvas.restore_region(self._background)
        for ax, pairs, vl in zip(self.axes, self.lines, self.vlines):
            ax.draw_artist(vl)
            for _, mark in pairs:
                ax.draw_artist(mark)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(self.canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
        return buf.getvalue()


def plot_explore(state: Any, problem: Problem):
    """A figure of the explorer's panels for one :class:`ExploreState`."""
    return ExploreFigure(problem).update(state)


def plot_homotopy(result: Any, fig: Any = None):
    """eps against complementarity residual, objective and stationarity (or Ipopt iterations).

    One line per (round, start) of ``result.log``; the polish step (eps = 0, the active
    set fixed) has no place on a log axis and is left out.
    """
    rows = [r for r in result.log if r.get("phase") == "homotopy" and r.get("eps", 0) > 0]
    third = "stationarity" if any("stationarity" in r for r in rows) else "iterations"
    fig, axes = _figure(3, fig)
    runs: dict[tuple, list[dict]] = {}
    for r in rows:
        runs.setdefault((r.get("round", 0), r.get("start", 0)), []).append(r)
    for (rnd, start), rs in sorted(runs.items()):
        eps = np.array([r["eps"] for r in rs])
        label = f"start {start}" + (f", round {rnd}" if rnd else "")
        axes[0].loglog(eps, np.maximum([r["complementarity"] for r in rs], 1e-16), "o-", ms=3, label=label)
        axes[1].semilogx(eps, [r["objective"] for r in rs], "o-", ms=3, label=label)
        axes[2].semilogx(eps, [r.get(third, np.nan) for r in rs], "o-", ms=3, label=label)
    titles = ("complementarity residual", "objective", third if third == "stationarity" else "Ipopt iterations")
    for ax, title in zip(axes, titles):
        ax.set_xlabel("ε")
        ax.set_title(title, fontsize=10)
        ax.invert_xaxis()
    if runs and len(runs) <= 8:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"homotopy ({result.relaxation})", fontsize=10)
    return fig


def plot_compare(rows: list[dict], fig: Any = None):
    """Bars per method: objective, complementarity residual (log), time; certified ones solid."""
    fig, axes = _figure(3, fig, width=3.6)
    names = [r["name"] for r in rows]
    pos = np.arange(len(rows))
    colors = ["tab:green" if r["certified"] else "tab:red" for r in rows]
    axes[0].bar(pos, [r["objective"] for r in rows], color=colors)
    axes[1].bar(pos, [max(r["complementarity"], 1e-16) if np.isfinite(r["complementarity"]) else np.nan
                      for r in rows], color=colors)
    axes[1].set_yscale("log")
    axes[2].bar(pos, [r["time_s"] for r in rows], color=colors)
    for ax, title in zip(axes, ("upper objective", "complementarity residual", "time [s]")):
        ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.suptitle("green: certified, red: not certified", fontsize=9)
    return fig


def figure_png(fig: Any, dpi: int = 72) -> bytes:
    """PNG bytes of a figure (for HTML reprs that embed the plot)."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


__all__ = ["ExploreFigure", "figure_png", "plot_compare", "plot_explore", "plot_homotopy"]

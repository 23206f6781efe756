"""The explorer and comparison widgets, driven programmatically (no browser, no timing).

Seed problem (by hand): follower min (y - x)^2/2 s.t. y <= a ("capacity"), y >= 0 has
y*(x) = min(max(x, 0), a); with capacity active, stationarity y - x + lam = 0 gives
lam_capacity = x - a, dy/dx = 0; with it inactive (0 < x < a) dy/dx = 1; at x = a the
one-sided derivatives are 1 and 0, so dy/dx does not exist.
"""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.display import compare_data, explore_data, leader_ranges, plot_homotopy
from workbench.display.progressbar import Progress
from workbench.errors import ValueInputError

x, x2, y, a = sp.symbols("x x2 y a", real=True)


def seed():
    return wb.BilevelProblem(
        leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 2) ** 2,
        upper_constraints=[x >= 0, x <= 3], lower_objective=(y - x) ** 2 / 2,
        lower_constraints=[wb.named("capacity", y <= a), y >= 0], parameters={a: 1.5})


def test_slider_moves_change_the_displayed_response():
    p = seed()
    e = wb.explore(p)
    assert e.sliders[x].continuous_update is False
    assert (e.sliders[x].min, e.sliders[x].max) == (0.0, 3.0)      # from x >= 0, x <= 3
    assert abs(e.state.y[0]) < 1e-9                                 # start x = 0 -> y* = 0
    image0, table0 = e.image.value, e.table.value
    e.sliders[x].value = 1.0
    assert e.state.y[0] == pytest.approx(1.0, abs=1e-8)
    assert e.state.dy_dx[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert e.table.value != table0 and e.image.value != image0
    e.sliders[x].value = 2.5
    assert e.state.y[0] == pytest.approx(1.5, abs=1e-8)
    assert e.state.active == ["capacity"]
    assert e.state.lam[0] == pytest.approx(1.0, abs=1e-7)          # x - a
    assert e.state.dy_dx[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert e.state.certificate_passed
    e.sliders[a].value = 2.0                                        # parameter slider
    assert e.state.y[0] == pytest.approx(2.0, abs=1e-8)
    assert e.state.lam[0] == pytest.approx(0.5, abs=1e-7)
    assert "capacity" in e.table.value and "active" in e.table.value
    bundle = e._repr_mimebundle_()  # live widget, plus a static copy for nbconvert/GitHub
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "wb-explore-table" in bundle["text/html"] and "data:image/png" in bundle["text/html"]


def test_explorer_starts_at_a_result():
    p = seed()
    r = p.solve(relaxation="penalty")
    e = wb.explore(p, at=r)                      # hand: optimum x = y = 1.5 (capacity 1.5)
    assert e.sliders[x].value == pytest.approx(1.5, abs=1e-4) and e.state.y[0] == pytest.approx(1.5, abs=1e-4)
    assert wb.explore(p, at={a: 1.0}).state.y[0] == pytest.approx(0.0, abs=1e-9)   # x from start 0
    with pytest.raises(ValueInputError, match="neither"):
        wb.explore(p, at={y: 1.0})


def test_curves_along_the_coordinate_match_closed_form():
    p = seed()
    s = explore_data(p, {x: 0.7}, n_grid=31)
    t = s.grid
    assert (t[0], t[-1]) == (0.0, 3.0)
    # curves are Ipopt's raw replies (the marked point is polished): at the weakly active
    # grid points t = 0 and t = 1.5 the interior point method stops ~1e-5 inside, so 1e-4
    np.testing.assert_allclose(s.curve_y[:, 0], np.minimum(t, 1.5), atol=1e-4)
    np.testing.assert_allclose(s.curve_F, (t - 1) ** 2 + (np.minimum(t, 1.5) - 2) ** 2, atol=1e-4)
    np.testing.assert_allclose(s.curve_phi, (np.minimum(t, 1.5) - t) ** 2 / 2, atol=1e-4)
    np.testing.assert_allclose(s.curve_lam[:, 0], np.maximum(t - 1.5, 0), atol=1e-4)
    assert s.y[0] == pytest.approx(0.7, abs=1e-9)


def test_dy_dx_is_undefined_at_the_kink():
    s = explore_data(seed(), [1.5])
    assert np.isnan(s.dy_dx[0, 0])
    assert "undefined" in dict(s.table(seed()))["dy/dx"]


def test_infeasible_follower_is_reported_not_raised():
    s = explore_data(seed(), [1.0], parameters={a: -1.0})  # y <= -1 and y >= 0: no follower point
    assert not s.ok and not s.certificate_passed and np.isnan(s.y[0])


def test_ranges_and_coordinate_choice():
    p = wb.BilevelProblem(leader=[x, x2], follower=[y], upper_objective=x ** 2 + x2 ** 2 + y ** 2,
                          upper_constraints=[x >= -1, x <= 1], lower_objective=(y - x - x2) ** 2)
    r = leader_ranges(p, {x2: (0.0, 2.0)})
    assert r[x] == (-1.0, 1.0) and r[x2] == (0.0, 2.0)
    e = wb.explore(p, ranges={x2: (0.0, 2.0)})
    e.coord.value = 1
    assert (e.state.coord, e.state.grid[0], e.state.grid[-1]) == (1, 0.0, 2.0)
    np.testing.assert_allclose(e.state.curve_y[:, 0], e.state.grid + 0.0, atol=1e-6)  # y* = x + x2, x = 0
    with pytest.raises(ValueInputError, match="low < high"):
        leader_ranges(p, {x: (1.0, 0.0)})
    with pytest.raises(ValueInputError, match="neither"):
        leader_ranges(p, {y: (0.0, 1.0)})


def test_compare_rows_and_homotopy_plot():
    p = seed()
    rows = compare_data(p, ["scholtes", "penalty"], show_progress=False)
    assert [r["name"] for r in rows] == ["scholtes", "penalty"]
    for r in rows:  # hand: optimum x = y = 1.5, F = 0.25 + 0.25
        assert r["certified"] and r["objective"] == pytest.approx(0.5, abs=1e-6)
    cmp = wb.compare(p, ["fischer_burmeister"], show_progress=False)
    assert "<table" in cmp._repr_html_() and "data:image/png" in cmp._repr_html_()
    assert cmp.best()["name"] == "fischer_burmeister"
    fig = rows[0]["result"].plot_homotopy()
    comp = fig.axes[0].lines[0].get_ydata()
    assert len(fig.axes) == 3 and comp[-1] < comp[0]                # residual falls as eps -> 0
    assert plot_homotopy(rows[1]["result"]).axes[1].get_title() == "objective"


def test_progress_on_terminal(capsys):
    bar = Progress(2, desc="sweep")
    bar.update("a")
    bar.update("b")
    err = capsys.readouterr().err  # tqdm's terminal bar: "sweep: 100%|...| 2/2 [..., b]"
    assert "sweep" in err and "2/2" in err and "b]" in err

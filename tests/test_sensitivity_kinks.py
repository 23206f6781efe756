"""Kinks of the follower's reply: directional derivatives, NotDifferentiable, one-sided checks,
and r.sensitivity() at the result's own point. Every answer is derived by hand next to it."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, x1, x2, y, y1, y2 = sp.symbols("x x1 x2 y y1 y2", real=True)


def licq_kink():
    # f = (y+1)^2/2, g1: y >= 0, g2: y - x >= 0, F = x + 3y. The unconstrained minimiser -1 is
    # infeasible, so y*(x) = max(0, x): at x = 0 both rows are active with lam1 + lam2 = 1 (LICQ
    # fails: gradients 1 and 1). Right: dy = 1, dF = 1 + 3 = 4; left: dy = 0, dF = 1.
    return wb.BilevelProblem([x], [y], upper_objective=x + 3 * y, lower_objective=(y + 1) ** 2 / 2,
                             lower_constraints=[y >= 0, y - x >= 0])


def weak_licq_kink():
    # f = (y - x)^2/2, g1: y >= 0, g2: 2y >= 0: y*(x) = max(0, x); at x = 0, y = 0 with
    # lam = (0, 0) (stationarity y - x = lam1 + 2 lam2 = 0): both rows weakly active and dependent.
    return wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2,
                             lower_constraints=[y >= 0, 2 * y >= 0])


@pytest.mark.parametrize("compiled", [True, False])
def test_licq_kink_directional_and_not_differentiable(compiled):
    s = licq_kink().sensitivity({x: 0.0}, compiled=compiled)
    assert s.status == "licq_fails" and not s.differentiable
    right, left = s.directional([1.0]), s.directional([-1.0])
    assert right.dy[0] == pytest.approx(1.0, abs=1e-12) and right.dF == pytest.approx(4.0, abs=1e-12)
    assert left.dy[0] == pytest.approx(0.0, abs=1e-12) and left.dF == pytest.approx(-1.0, abs=1e-12)
    # Ralph-Dempe multiplier: along +1 max lam2 (grad_x L d = lam2 d) -> lam = (0, 1), g1 released;
    # along -1 -> lam = (1, 0), g2 released (y - x grows as x decreases).
    np.testing.assert_allclose(right.multiplier[0], [0.0, 1.0], atol=1e-12)
    assert right.released == [0] and left.released == [1]
    with pytest.raises(wb.NotDifferentiable) as err:
        s.dy_dx
    assert err.value.constraints == [0, 1] and "directional" in str(err.value)
    assert err.value.one_sided["+"][0, 0] == pytest.approx(1.0) and err.value.one_sided["-"][0, 0] == pytest.approx(0.0)
    assert err.value.one_sided_hypergradient["+"][0] == pytest.approx(4.0)
    assert err.value.one_sided_hypergradient["-"][0] == pytest.approx(1.0)
    for attr in ("dlam_dx", "hypergradient"):
        with pytest.raises(wb.NotDifferentiable):
            getattr(s, attr)
    chk = s.check()
    assert chk["passed"] is False and not chk["sides_agree"]
    # one-sided quotients: right (h - 0)/h = 1, left (0 - 0)/h = 0, as the directional derivatives
    assert chk["fd_right"]["dy"][0, 0] == pytest.approx(1.0, abs=1e-6)
    assert chk["fd_left"]["dy"][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert chk["one_sided_rel"] < 1e-6


def test_licq_failure_among_weakly_active_rows_is_a_kink():
    s = weak_licq_kink().sensitivity({x: 0.0})
    assert s.status == "weakly_active" and s.checks["licq"] is False
    assert s.one_sided is not None and not s.differentiable
    assert s.directional([1.0]).dy[0] == pytest.approx(1.0, abs=1e-12)   # y = x for x > 0
    assert s.directional([-1.0]).dy[0] == pytest.approx(0.0, abs=1e-12)  # y = 0 for x < 0
    with pytest.raises(wb.NotDifferentiable, match="Right derivative"):
        s.dy_dx
    assert s.check()["passed"] is False


def test_regular_point_check_passes_and_directional_is_linear():
    # away from the kink (x = 1/2): y = x, dy/dx = 1, F = x + 3x: dF/dx = 4; d = -2: dy = -2, dF = -8
    s = licq_kink().sensitivity({x: 0.5})
    assert s.differentiable and s.dy_dx[0, 0] == pytest.approx(1.0, abs=1e-12)
    dd = s.directional([-2.0])
    assert dd.dy[0] == pytest.approx(-2.0, abs=1e-12) and dd.dF == pytest.approx(-8.0, abs=1e-12)
    dy, dlam = dd  # the older tuple form still unpacks
    assert dlam.shape == (2,)
    assert s.check()["passed"] is True


def test_equality_plus_inequality_follower_closed_form():
    # f = ((y1 - x)^2 + y2^2)/2, h: y1 + y2 = 1, g: y2 >= 0. On y2 = 1 - y1 the minimiser is
    # y1 = (x + 1)/2, y2 = (1 - x)/2 (feasible for x <= 1); for x >= 1, y = (1, 0).
    # Multipliers (L = f - lam g - mu h): y1 - x - mu = 0, y2 - mu - lam = 0, so for x < 1
    # mu = (1 - x)/2, lam = 0; for x > 1 mu = 1 - x, lam = x - 1.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1 + 2 * y2 + x,
                          lower_objective=((y1 - x) ** 2 + y2 ** 2) / 2,
                          lower_constraints={"sum": sp.Eq(y1 + y2, 1), "pos": y2 >= 0})
    s0 = p.sensitivity({x: 0.0})  # regular: dy = (1/2, -1/2), dlam = 0, dmu = -1/2, dF = 1/2 - 1 + 1
    assert s0.differentiable
    np.testing.assert_allclose(s0.dy_dx[:, 0], [0.5, -0.5], atol=1e-12)
    np.testing.assert_allclose(s0.dlam_dx[:, 0], [0.0, -0.5], atol=1e-12)  # rows: pos, sum
    assert s0.hypergradient[0] == pytest.approx(0.5, abs=1e-12)
    s = p.sensitivity({x: 1.0})  # y = (1, 0), lam = 0: pos weakly active
    assert s.status == "weakly_active" and not s.differentiable
    r, l = s.directional([1.0]), s.directional([-1.0])
    np.testing.assert_allclose(r.dy, [0.0, 0.0], atol=1e-12)    # y stays (1, 0) for x > 1
    np.testing.assert_allclose(r.dlam, [1.0], atol=1e-12)       # lam = x - 1
    np.testing.assert_allclose(r.dmu, [-1.0], atol=1e-12)       # mu = 1 - x
    assert r.dF == pytest.approx(1.0, abs=1e-12)                 # F = 1 + 0 + x
    np.testing.assert_allclose(l.dy, [-0.5, 0.5], atol=1e-12)   # -(1/2, -1/2)
    np.testing.assert_allclose(l.dlam, [0.0], atol=1e-12)
    np.testing.assert_allclose(l.dmu, [0.5], atol=1e-12)        # -(-1/2)
    assert l.dF == pytest.approx(-0.5, abs=1e-12)                # -(1/2 - 1 + 1)
    assert r.released == [] and l.released == ["pos"]


def test_weakly_active_bound_two_leaders_closed_form():
    # f = (y - x1 - x2)^2/2, y >= 0: y* = max(0, x1 + x2); at x = 0, dy(d) = max(0, d1 + d2),
    # F = y + x1: dF(d) = d1 + max(0, d1 + d2).
    p = wb.BilevelProblem([x1, x2], [y], upper_objective=y + x1, lower_objective=(y - x1 - x2) ** 2 / 2,
                          lower_constraints=[y >= 0])
    s = p.sensitivity({x1: 0.0, x2: 0.0})
    for d in ([1.0, -1.0], [1.0, 2.0], [-1.0, 0.5], [0.3, -0.1]):
        dd = s.directional(d)
        assert dd.dy[0] == pytest.approx(max(0.0, d[0] + d[1]), abs=1e-12)
        assert dd.dF == pytest.approx(d[0] + max(0.0, d[0] + d[1]), abs=1e-12)
    assert not s.differentiable
    with pytest.raises(wb.NotDifferentiable, match=r"\[0\]"):
        s.hypergradient


def test_weakly_active_bound_where_the_reply_is_smooth():
    # f = (y - x^2)^2/2, y >= 0: y* = x^2 >= 0 touches the bound at x = 0 with lam = 0, yet
    # y* is differentiable there: dy/dx = 2x = 0, dlam/dx = 0.
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x ** 2) ** 2 / 2,
                          lower_constraints=[y >= 0])
    s = p.sensitivity({x: 0.0})
    assert s.status == "weakly_active" and s.differentiable
    assert s.dy_dx[0, 0] == pytest.approx(0.0, abs=1e-12) and s.dlam_dx[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_result_sensitivity_uses_the_results_own_point():
    # Tilted seed: f = y^6 - 7/8 y^4 + 1/8 y^2 + x y, F = (y - 1)^2 + x, -1/100 <= x <= 1/100.
    # At the result's reply y, stationarity f_y = 0 and f_yx = 1 give dy/dx = -1/f_yy(y) with
    # f_yy = 30 y^4 - 21/2 y^2 + 1/4, so dF/dx = 1 + 2 (y - 1)(-1/f_yy(y)).
    p = wb.BilevelProblem([x], [y], upper_objective=(y - 1) ** 2 + x,
                          upper_constraints=[x >= -sp.Rational(1, 100), x <= sp.Rational(1, 100)],
                          lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2 + x * y)
    r = p.solve()
    assert r.status == "optimal" and r.y[0] > 0.5  # the certified reply is the right-hand well
    s = r.sensitivity()
    yv = float(r.y[0])
    assert s.response.y[0] == pytest.approx(yv, abs=1e-7)  # polished, not re-solved elsewhere
    fyy = 30 * yv ** 4 - 10.5 * yv ** 2 + 0.25
    assert s.hypergradient[0] == pytest.approx(1 + 2 * (yv - 1) * (-1 / fyy), abs=1e-6)

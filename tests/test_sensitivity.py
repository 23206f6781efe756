"""Sensitivities of the follower's reply at the seed examples (answers derived by hand)."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.errors import ValueInputError

x, y, y1, y2, q = sp.symbols("x y y1 y2 q", real=True)


def seed_kkt_problem():
    # follower: min 1/2 y^2 + x y  s.t.  y - x - 1 >= 0, y >= 0; leader objective F = (x-1)^2 + y^2
    return wb.BilevelProblem([x], [y], upper_objective=(x - 1) ** 2 + y ** 2,
                             lower_objective=y ** 2 / 2 + x * y,
                             lower_constraints=[y - x - 1 >= 0, y >= 0])


def test_seed_kkt_example_values_and_derivatives():
    # By hand at x = 1/2: unconstrained minimiser y = -x = -1/2 violates y >= x + 1, so g1 is
    # active: y = x + 1 = 3/2 > 0 (g2 inactive, lam2 = 0). Stationarity y + x - lam1 = 0 gives
    # lam1 = y + x = 2x + 1 = 2. Hence dy/dx = 1, dlam1/dx = 2, dlam2/dx = 0.
    p = seed_kkt_problem()
    fr = p.follower_response({x: 0.5})
    assert fr.follower[y] == pytest.approx(1.5, abs=1e-12)
    assert fr.multipliers[0] == pytest.approx(2.0, abs=1e-12)
    assert fr.multipliers[1] == pytest.approx(0.0, abs=1e-12)
    assert fr.active_set == [0]
    s = p.sensitivity({x: 0.5})
    assert s.status == "regular"
    assert s.dy_dx.shape == (1, 1) and s.dlam_dx.shape == (2, 1)
    np.testing.assert_allclose(s.dy_dx, [[1.0]], atol=1e-12)
    np.testing.assert_allclose(s.dlam_dx, [[2.0], [0.0]], atol=1e-12)
    assert s.multiplier_names == [0, 1]
    # hypergradient: d/dx[(x-1)^2 + y(x)^2] = 2(x-1) + 2 y dy/dx = -1 + 3 = 2
    np.testing.assert_allclose(s.hypergradient, [2.0], atol=1e-10)
    chk = s.check(h=1e-6)
    assert chk["max_abs"] < 1e-6


def test_seed_kkt_symbolic_region():
    # On the active set {g1}: y = x + 1, lam1 = 2x + 1; region: g2 = x + 1 > 0 and lam1 > 0,
    # i.e. x > -1/2. dy/dx = 1, dlam1/dx = 2.
    sym = seed_kkt_problem().sensitivity({x: 0.5}).symbolic()
    assert sym.dy_dx == sp.Matrix([[1]])
    assert sym.dlam_dx == sp.Matrix([[2], [0]])
    assert sp.simplify(sym.y[0] - (x + 1)) == 0
    region = sym.region
    assert region.subs(x, -0.49) and not region.subs(x, -0.51)
    assert sp.solve_univariate_inequality(region, x, relational=False) == sp.Interval.open(-sp.Rational(1, 2), sp.oo)
    assert "frac" in sym._repr_latex_()


def test_seed_unconstrained_quadratic_closed_form():
    # f = 1/2 y^T A(x) y - b(x)^T y, A = diag(1 + x^2, 2), b = (x, 1): y1 = x / (1 + x^2),
    # y2 = 1/2, so dy1/dx = (1 - x^2)/(1 + x^2)^2 (= 0.75/1.5625 = 0.48 at x = 1/2), dy2/dx = 0.
    # Seed formula: dy/dx = A^{-1}(b'(x) - A'(x) y) = ((1 - 2x * x/(1+x^2))/(1+x^2), 0).
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1 ** 2 + y2,
                          lower_objective=((1 + x ** 2) * y1 ** 2 + 2 * y2 ** 2) / 2 - x * y1 - y2)
    for xv in (0.5, -1.3, 2.0):
        s = p.sensitivity({x: xv})
        yv = np.array([xv / (1 + xv ** 2), 0.5])
        A = np.diag([1 + xv ** 2, 2.0])
        seed = np.linalg.solve(A, np.array([1.0, 0.0]) - np.diag([2 * xv, 0.0]) @ yv)
        np.testing.assert_allclose(s.dy_dx[:, 0], [(1 - xv ** 2) / (1 + xv ** 2) ** 2, 0.0], atol=1e-12)
        np.testing.assert_allclose(s.dy_dx[:, 0], seed, atol=1e-12)
    assert p.sensitivity({x: 0.5}).dy_dx[0, 0] == pytest.approx(0.48, abs=1e-12)


def test_equality_shadow_price():
    # min 1/2 (y1^2 + y2^2) s.t. y1 + y2 = x: y = (x/2, x/2); L = f - mu (y1 + y2 - x),
    # stationarity y_i = mu, so mu = x/2 (our convention: mu is the price of the rhs x) and
    # dmu/dx = 1/2, dy/dx = (1/2, 1/2).
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1,
                          lower_objective=(y1 ** 2 + y2 ** 2) / 2, lower_constraints={"budget": sp.Eq(y1 + y2, x)})
    s = p.sensitivity({x: 0.8})
    assert s.response.multipliers["budget"] == pytest.approx(0.4, abs=1e-12)
    np.testing.assert_allclose(s.dy_dx, [[0.5], [0.5]], atol=1e-12)
    np.testing.assert_allclose(s.dlam_dx, [[0.5]], atol=1e-12)
    assert s.multiplier_names == ["budget"]


def test_weakly_active_reports_both_one_sided_derivatives():
    # min 1/2 (y - x)^2 s.t. y >= 0: y*(x) = max(x, 0); at x = 0 the constraint is active with
    # lam = 0. Right derivative 1, left derivative 0; the two-sided derivative does not exist.
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2,
                          lower_constraints=[y >= 0])
    s = p.sensitivity({x: 0.0})
    assert s.status == "weakly_active"
    assert s.response.weakly_active == [0]
    assert not s.differentiable
    with pytest.raises(wb.NotDifferentiable, match=r"constraint\(s\) \[0\]"):
        s.dy_dx  # no branch presented as the derivative
    assert s.one_sided["+"][0, 0] == pytest.approx(1.0, abs=1e-12)
    assert s.one_sided["-"][0, 0] == pytest.approx(0.0, abs=1e-12)
    # F = y: one-sided hypergradients are the same numbers
    hg = s.one_sided_hypergradient
    assert hg["+"][0] == pytest.approx(1.0) and hg["-"][0] == pytest.approx(0.0, abs=1e-12)
    # away from the kink it is regular again: y = x for x > 0 (dy/dx = 1), y = 0 for x < 0
    assert p.sensitivity({x: 0.3}).dy_dx[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert p.sensitivity({x: -0.3}).dy_dx[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_licq_failure_unique_dy_nonunique_multipliers():
    # min 1/2 (y - x)^2 s.t. y >= 0, 2y >= 0 at x = -1: y = 0 (both active, gradients 1 and 2
    # are dependent). Stationarity y - x - lam1 - 2 lam2 = 0, so lam1 + 2 lam2 = -x = 1 (not unique),
    # and d(lam1 + 2 lam2)/dx = -1. dy/dx = 0 (y stays 0 for x < 0). Minimum-norm dlam = -(1, 2)/5;
    # the multiplier set direction is +-(2, -1)/sqrt(5).
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2,
                          lower_constraints=[y >= 0, 2 * y >= 0])
    s = p.sensitivity({x: -1.0})
    assert s.status == "licq_fails"
    assert s.dy_dx[0, 0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(s.dlam_dx[:, 0], [-0.2, -0.4], atol=1e-12)
    d = s.multiplier_directions[:, 0]
    np.testing.assert_allclose(abs(d @ np.array([2, -1]) / np.sqrt(5)), 1.0, atol=1e-12)
    lam = s.response.lam
    assert lam[0] + 2 * lam[1] == pytest.approx(1.0, abs=1e-9)
    assert "non-unique" in s.checks["dlam"]


def test_sosc_failure_gives_no_numbers():
    # min 1/2 (y1 + y2 - x)^2: the Hessian [[1, 1], [1, 1]] is singular, every point with
    # y1 + y2 = x is optimal, so y*(x) is not a function and dy/dx is undefined.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1, lower_objective=(y1 + y2 - x) ** 2 / 2)
    s = p.sensitivity({x: 0.3})
    assert s.status == "sosc_fails"
    assert s.checks["reduced_hessian_min_eig"] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isnan(s.dy_dx)) and np.all(np.isnan(s.hypergradient))


def test_sosc_failure_on_active_constraint_face():
    # min 1/2 (y1 - x)^2 s.t. 0 <= y2 <= 1: y2 does not enter the objective, so every y2 in
    # [0, 1] is optimal; no constraint is active and the reduced Hessian diag(1, 0) is singular.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1, lower_objective=(y1 - x) ** 2 / 2,
                          lower_constraints=[y2 >= 0, 1 - y2 >= 0])
    s = p.sensitivity({x: 0.3})
    assert s.status == "sosc_fails"
    assert np.all(np.isnan(s.dy_dx))


def test_parameters_as_wrt():
    # follower min 1/2 y^2 + q x y s.t. y - x - 1 >= 0: active at (x, q) = (1/2, 1); y = x + 1
    # (independent of q), lam1 = y + q x, so dlam1/dq = x = 1/2, dlam1/dx = 1 + q = 2.
    p = wb.BilevelProblem([x], [y], upper_objective=(x - 1) ** 2 + y ** 2, lower_objective=y ** 2 / 2 + q * x * y,
                          lower_constraints=[y - x - 1 >= 0, y >= 0], parameters={q: 1.0})
    s = p.sensitivity({x: 0.5}, wrt="parameters")
    assert s.wrt_names == [q]
    np.testing.assert_allclose(s.dy_dx, [[0.0]], atol=1e-12)
    np.testing.assert_allclose(s.dlam_dx, [[0.5], [0.0]], atol=1e-12)
    s2 = p.sensitivity({x: 0.5}, wrt=[q, x], parameters={q: 1.0})
    np.testing.assert_allclose(s2.dlam_dx, [[0.5, 2.0], [0.0, 0.0]], atol=1e-12)
    assert s2.check()["max_abs"] < 1e-6
    with pytest.raises(ValueInputError, match="neither a leader variable nor a parameter"):
        p.sensitivity({x: 0.5}, wrt=[y])
    with pytest.raises(ValueInputError, match="wrt="):
        p.sensitivity({x: 0.5}, wrt="followers")


def test_hypergradient_matches_finite_differences_nonlinear():
    # nonlinear follower min exp(y1) - x y1 + (y2 - x^2)^2 s.t. 2 - y1 - y2 >= 0: the analytic
    # hypergradient of F = y1^2 + y2 + x must equal central differences of F(x, y*(x)).
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1 ** 2 + y2 + x,
                          lower_objective=sp.exp(y1) - x * y1 + (y2 - x ** 2) ** 2,
                          lower_constraints=[2 - y1 - y2 >= 0])
    for xv in (0.7, 1.4):  # inactive at 0.7 (y = (log .7, .49)), active at 1.4
        s = p.sensitivity({x: xv})
        assert s.status == "regular"
        chk = s.check(h=1e-6)
        assert chk["hyper_abs"] < 1e-6 and chk["dy_abs"] < 1e-6 and chk["dlam_abs"] < 1e-6


def test_result_sensitivity_at_bilevel_solution():
    # Leader min (x-1)^2 + y^2 over the seed follower; y = x + 1 for x > -1/2, so
    # F = (x-1)^2 + (x+1)^2 is minimised at x = 0 (F' = 4x); hypergradient 0 there, dy/dx = 1.
    r = seed_kkt_problem().solve()
    s = r.sensitivity()
    assert s.dy_dx[0, 0] == pytest.approx(1.0, abs=1e-8)
    assert abs(s.hypergradient[0]) < 1e-5


def test_bad_leader_point_is_a_typed_error():
    p = seed_kkt_problem()
    with pytest.raises(ValueInputError):
        p.sensitivity({y: 0.5})
    with pytest.raises(ValueInputError):
        p.follower_response([np.nan])


def test_infeasible_follower_raises_solver_failure():
    # y >= x + 1 and y <= x cannot both hold: there is no follower reply to differentiate
    from workbench.errors import SolverFailure
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=y ** 2,
                          lower_constraints=[y >= x + 1, y <= x])
    with pytest.raises(SolverFailure, match="follower could not be solved"):
        p.sensitivity({x: 0.0})


def test_symbolic_refuses_singular_systems_and_falls_back_to_implicit_form():
    from workbench.errors import MethodError
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2,
                          lower_constraints=[y >= 0, 2 * y >= 0])
    with pytest.raises(MethodError, match="licq_fails"):
        p.sensitivity({x: -1.0}).symbolic()
    # exp(y) + y^4/4 - x y has no closed-form minimiser; implicit differentiation of
    # exp(y) + y^3 - x = 0 gives dy/dx = 1 / (exp(y) + 3 y^2) (constraint y <= x inactive at x = 0.3)
    q = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=sp.exp(y) + y ** 4 / 4 - x * y,
                          lower_constraints=[y <= x])
    s = q.sensitivity({x: 0.3})
    sym = s.symbolic()
    assert sym.implicit and sp.simplify(sym.dy_dx[0] - 1 / (sp.exp(y) + 3 * y ** 2)) == 0
    yv = s.response.y[0]
    assert s.dy_dx[0, 0] == pytest.approx(1 / (np.exp(yv) + 3 * yv ** 2), abs=1e-10)


def test_two_weakly_active_constraints_one_sided_against_one_sided_differences():
    # min 1/2 ((y1 - x)^2 + (y2 + x)^2) s.t. y1 >= 0, y2 >= 0: y1 = max(x, 0), y2 = max(-x, 0).
    # At x = 0 both constraints are weakly active; right derivative (1, 0), left derivative (0, -1).
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1 + y2,
                          lower_objective=((y1 - x) ** 2 + (y2 + x) ** 2) / 2,
                          lower_constraints=[y1 >= 0, y2 >= 0])
    s = p.sensitivity({x: 0.0})
    assert s.status == "weakly_active" and s.response.weakly_active == [0, 1]
    np.testing.assert_allclose(s.one_sided["+"][:, 0], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.one_sided["-"][:, 0], [0.0, -1.0], atol=1e-12)
    with pytest.raises(wb.NotDifferentiable, match=r"\[0, 1\]"):
        s.dy_dx
    # one-sided difference quotients of re-solved replies agree
    h = 1e-6
    y0 = p.follower_response({x: 0.0}).y
    right = (p.follower_response({x: h}).y - y0) / h
    left = (y0 - p.follower_response({x: -h}).y) / h
    np.testing.assert_allclose(right, s.one_sided["+"][:, 0], atol=1e-6)
    np.testing.assert_allclose(left, s.one_sided["-"][:, 0], atol=1e-6)

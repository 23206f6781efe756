"""Multiplier bounds derived from dual vertices (reformulate/multiplier_bounds.py), checked by hand."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.lower import lower
from workbench.reformulate.multiplier_bounds import gradient_enclosure, multiplier_box

x, y = sp.symbols("x y", real=True)


def test_lp_follower_vertex_multipliers():
    # min_y -y s.t. y >= 0 (A = 1), 1 - y >= 0 (A = -1): grad f = -1. Supports {}: nothing; {g1}: lam1 = -1
    # (not >= 0, so lam1 stays in [0, 0]); {g2}: lam2 = (-1)/(-1) = 1. By hand lam1 in [0, 0], lam2 in [0, 1].
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=-y, lower_constraints=[y >= 0, 1 - y >= 0])
    box = multiplier_box(lower(p), np.zeros(0), np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    assert box.derived
    assert box.lam_lo.tolist() == [0.0, 0.0]
    assert box.lam_hi == pytest.approx([0.0, 1.0], abs=1e-6)


def test_qp_follower_interval_of_the_affine_gradient():
    # f = (y - x)^2: r = 2y - 2x over x in [0, 2], y in [0, 3] ranges over [-4, 6] (by hand). Support {y >= 0}
    # (A = 1): lam1 = r <= 6; support {3 - y >= 0} (A = -1): lam2 = -r <= 4.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x * y, upper_constraints=[x >= 0, x <= 2],
                          lower_objective=(y - x) ** 2, lower_constraints=[y >= 0, 3 - y >= 0])
    box = multiplier_box(lower(p), np.zeros(0), np.array([0.0, 0.0]), np.array([2.0, 3.0]))
    assert box.lam_hi == pytest.approx([6.0, 4.0], rel=1e-6)


def test_equality_multiplier_is_bounded_both_ways():
    # min_y y^2/2 s.t. y - x = 0 (B = 1): r = y, mu = r / 1 = y in [-1, 2] over y in [-1, 2] (by hand).
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x, upper_constraints=[x >= -1, x <= 2],
                          lower_objective=y ** 2 / 2, lower_constraints=[sp.Eq(y - x, 0)])
    box = multiplier_box(lower(p), np.zeros(0), np.array([-1.0, -1.0]), np.array([2.0, 2.0]))
    assert box.mu_lo == pytest.approx([-1.0], rel=1e-6) and box.mu_hi == pytest.approx([2.0], rel=1e-6)


def test_nonaffine_gradient_is_enclosed_by_intervals():
    # r = y^3 - x over y in [-1, 2], x in [0, 1]: the true range is [-2, 8] (monotone in each); interval
    # arithmetic may be looser (y * y^2 gives [-5, 8]) but must contain it.
    import casadi as ca
    w = ca.SX.sym("w", 2)
    lo, hi = gradient_enclosure(w[1] ** 3 - w[0], w, np.array([0.0, -1.0]), np.array([1.0, 2.0]))
    assert lo[0] <= -2.0 and hi[0] >= 8.0 and lo[0] >= -5.0 - 1e-5 and hi[0] <= 8.0 + 1e-5


def test_multipliers_in_the_leader_are_not_bounded_by_vertices():
    # A leader that reads the follower's multiplier chooses among all of them: no vertex argument.
    lam = wb.multiplier("cap")
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=-lam, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=-y, lower_constraints=[wb.named("cap", x - y >= 0), y >= 0])
    box = multiplier_box(lower(p), np.zeros(0), np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    assert not box.derived and "multipliers" in box.reason


def test_global_route_reports_derived_multiplier_bounds():
    # Follower min_y -y s.t. y >= 0, x - y >= 0 (y* = x); leader min (x - 1/2)^2 - y... = (x - 1/2)^2 - x on
    # [0, 1]: derivative 2x - 2 < 0 on [0, 1), so x* = 1, y* = 1, F = 1/4 - 1 = -3/4 (by hand).
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - sp.Rational(1, 2)) ** 2 - y,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=-y,
                          lower_constraints=[y >= 0, x - y >= 0])
    r = p.solve(method="global")
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.upper_value == pytest.approx(-0.75, abs=1e-7)
    assert r.info["assumed_box"] == [] and r.info["global_scope"] == "derived bounds"
    mb = r.info["multiplier_bounds"]
    assert mb["assumed"] == [] and mb["derived"] == ["lam[0]", "lam[1]"]


def test_vertex_box_contains_the_simplex_duals_at_sampled_leaders():
    # An independent method: HiGHS' dual simplex returns vertex multipliers of the follower LP
    #   min_y  y1 + 2 y2  s.t.  y1 + y2 >= x, y1 - y2 >= -1, y1 >= 0, y2 >= 0, 4 - y1 - y2 >= 0
    # at each sampled x in [0, 3]; every such multiplier must lie in the derived box.
    from scipy.optimize import linprog
    y1, y2 = sp.symbols("y1 y2", real=True)
    p = wb.BilevelProblem(leader=[x], follower=[y1, y2], upper_objective=x + y1, upper_constraints=[x >= 0, x <= 3],
                          lower_objective=y1 + 2 * y2,
                          lower_constraints=[y1 + y2 - x >= 0, y1 - y2 + 1 >= 0, y1 >= 0, y2 >= 0, 4 - y1 - y2 >= 0])
    # box by hand: x in [0, 3], y >= 0 and y1 + y2 <= 4 give y in [0, 4]^2
    box = multiplier_box(lower(p), np.zeros(0), np.array([0.0, 0.0, 0.0]), np.array([3.0, 4.0, 4.0]))
    assert box.derived
    A = np.array([[1, 1], [1, -1], [1, 0], [0, 1], [-1, -1]], float)
    for xv in np.linspace(0, 3, 13):
        b = np.array([xv, -1, 0, 0, -4])
        r = linprog([1, 2], A_ub=-A, b_ub=-b, bounds=[(None, None)] * 2, method="highs-ds")
        assert r.status == 0
        lam = -r.ineqlin.marginals                     # g = A y - b >= 0 is -A y <= -b: lam = -marginal
        assert np.all(lam >= -1e-9) and np.all(lam <= box.lam_hi + 1e-9), (xv, lam, box.lam_hi)


def test_linear_follower_variables_get_lp_bounds_when_the_vertices_need_them():
    # y enters only linearly except through grad_y f = 2 (y - x), and is bounded only jointly with x:
    # -x <= y <= 3 - x, x in [0, 1] (LP: y in [-1, 3]). By hand y*(x) = x (inside the interval for x <= 3/2),
    # F = x + y = 2x, so the optimum is x = y = 0, F = 0, and every bound is derived.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=(y - x) ** 2, lower_constraints=[y + x >= 0, 3 - y - x >= 0])
    r = p.solve(method="global")
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.upper_value == pytest.approx(0.0, abs=1e-7)
    assert r.info["multiplier_bounds"]["assumed"] == [] and r.info["global_scope"] == "derived bounds"

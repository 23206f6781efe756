"""The compiled path (regular points, positive definite Hessian) and the general path (everything
else) give the same derivatives; each answer below is derived by hand."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, y1, y2, y3 = sp.symbols("x y1 y2 y3", real=True)


def test_convex_follower_takes_the_compiled_path_and_agrees_with_the_general_one():
    # follower min 1/2|y - (x, 2x, 1)|^2 s.t. y1 + y2 + y3 <= 1 (one linear constraint, H = I).
    # At x = 1 the unconstrained point (1, 2, 1) has sum 4 > 1: projecting onto the plane gives
    # y = c - (sum(c) - 1)/3 * (1,1,1) with c = (x, 2x, 1), i.e. y = (x - x, 2x - x, 1 - x) = (0, x, 1 - x);
    # dy/dx = (1 - 1, 2 - 1, 0 - 1) = (0, 1, -1). The multiplier is lam = (sum(c) - 1)/3 = x, dlam/dx = 1.
    # F = y1 + 2 y2 + 3 y3 -> dF/dx = 0 + 2 - 3 = -1.
    p = wb.BilevelProblem([x], [y1, y2, y3], upper_objective=y1 + 2 * y2 + 3 * y3,
                          lower_objective=((y1 - x) ** 2 + (y2 - 2 * x) ** 2 + (y3 - 1) ** 2) / 2,
                          lower_constraints=[1 - y1 - y2 - y3 >= 0])
    s = p.sensitivity({x: 1.0})
    assert s.status == "regular" and s.compiled is not None
    np.testing.assert_allclose(s.dy_dx[:, 0], [0.0, 1.0, -1.0], atol=1e-10)
    np.testing.assert_allclose(s.dlam_dx[:, 0], [1.0], atol=1e-10)
    np.testing.assert_allclose(s.hypergradient, [-1.0], atol=1e-10)
    g = p.sensitivity({x: 1.0}, compiled=False)  # SciPy assembly, dense checks, SuperLU
    assert g.status == "regular" and g.compiled is None
    np.testing.assert_allclose(g.dy_dx, s.dy_dx, atol=1e-12)
    np.testing.assert_allclose(g.dlam_dx, s.dlam_dx, atol=1e-12)
    np.testing.assert_allclose(g.hypergradient, s.hypergradient, atol=1e-12)


def test_indefinite_hessian_with_positive_reduced_hessian_uses_the_general_checks():
    # follower min -y1^2 + y2^2 - x y2 s.t. y1 - x = 0: H = diag(-2, 2) is indefinite (Cholesky fails),
    # but on the null space of the constraint (y2 only) the curvature is 2 > 0: SOSC holds.
    # y1 = x, y2 = x/2 -> dy/dx = (1, 1/2). L = f - mu (y1 - x): -2 y1 - mu = 0 -> mu = -2x, dmu/dx = -2.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1 + y2,
                          lower_objective=-y1 ** 2 + y2 ** 2 - x * y2,
                          lower_constraints=[sp.Eq(y1 - x, 0)])
    s = p.sensitivity({x: 0.4}, start={y1: 0.4, y2: 0.0})
    assert s.status == "regular" and s.compiled is None
    assert s.checks["sosc"] is True
    np.testing.assert_allclose(s.dy_dx[:, 0], [1.0, 0.5], atol=1e-10)
    np.testing.assert_allclose(s.dlam_dx[:, 0], [-2.0], atol=1e-10)
    np.testing.assert_allclose(s.hypergradient, [1.5], atol=1e-10)


def test_nearly_dependent_bounds_are_caught_by_the_licq_test():
    # y1 >= 0 and y1 >= 0 scaled by 2 (the same face twice), both active at x = -1:
    # min 1/2 (y1 - x)^2 + 1/2 y2^2 -> y = (0, 0); the active rows (1, 0) and (2, 0) are dependent.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1,
                          lower_objective=(y1 - x) ** 2 / 2 + y2 ** 2 / 2,
                          lower_constraints=[y1 >= 0, 2 * y1 >= 0])
    s = p.sensitivity({x: -1.0})
    assert s.status == "licq_fails" and s.compiled is None
    np.testing.assert_allclose(s.dy_dx[:, 0], [0.0, 0.0], atol=1e-10)


def test_failed_casadi_evaluation_raises_instead_of_returning_stale_numbers():
    import casadi as ca

    from workbench.sensitivity.kkt_matrix import _Evaluator
    H = ca.MX.sym("H", 2, 2)
    f = ca.Function("chol", [H], [ca.solve(H, ca.MX.ones(2, 1), "csparsecholesky")])
    ev = _Evaluator(f)
    np.testing.assert_allclose(ev(np.array([2.0, 0.0, 0.0, 4.0]))[0], [0.5, 0.25])  # diag(2, 4)^-1 (1, 1)
    with pytest.raises(RuntimeError, match="failed"):
        ev(np.array([1.0, 1.0, 1.0, 1.0]))  # singular: no Cholesky factor


def test_indefinite_coupled_hessian_fails_the_cholesky_and_is_still_regular():
    # follower min 1/2 y^T [[1, 2], [2, 1]] y - x y2 s.t. y1 - y2 = 0: H has eigenvalues 3 and -1
    # (no Cholesky), but on the constraint's null space d = (1, 1) the curvature is 6 > 0.
    # With y1 = y2 = t: f = 3 t^2 - x t -> t = x/6, dy/dx = (1/6, 1/6).
    # Stationarity y1 + 2 y2 - mu = 0 -> mu = 3t = x/2, dmu/dx = 1/2.
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=y1,
                          lower_objective=(y1 ** 2 + 4 * y1 * y2 + y2 ** 2) / 2 - x * y2,
                          lower_constraints=[sp.Eq(y1 - y2, 0)])
    s = p.sensitivity({x: 0.6})
    assert s.status == "regular" and s.compiled is None
    np.testing.assert_allclose(s.dy_dx[:, 0], [1 / 6, 1 / 6], atol=1e-10)
    np.testing.assert_allclose(s.dlam_dx[:, 0], [0.5], atol=1e-10)

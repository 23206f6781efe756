"""VectorBilevelProblem: the vectorised declaration equals the scalar SymPy one, stays sparse,
and rejects bad data with typed errors.

Reference problem (separable, solved by hand):
  follower  min_y ½(2 y0² + y1²) + (−1 + x) y0 − x y1,  0 <= y <= 1
            => y0*(x) = clip((1 − x)/2, 0, 1),  y1*(x) = clip(x, 0, 1)
  leader    min_x ½‖y − (0.2, 0.7)‖² + ½x²,  −2 <= x <= 2
  On 0 <= x <= 1: F = ½((1 − x)/2 − 0.2)² + ½(x − 0.7)² + ½x², F' = 2.25x − 0.85 = 0
  => x* = 17/45, y* = (14/45, 17/45). (x > 1 costs at least ½ > F(x*); x < 0 only raises F.)
"""
import casadi as ca
import numpy as np
import pytest
import scipy.sparse as sps
import sympy as sp

import workbench as wb
from workbench.errors import ModelError, NonSmoothError, ValueInputError
from workbench.lower import lower

Q = np.diag([2.0, 1.0])
c = np.array([-1.0, 0.0])
C = np.array([[1.0], [-1.0]])
YT = np.array([0.2, 0.7])
X_STAR = 17 / 45
Y_STAR = np.array([14 / 45, 17 / 45])


def vector_problem() -> wb.VectorBilevelProblem:
    return wb.VectorBilevelProblem.from_arrays(Q, c, n_x=1, C=C, y_bounds=(0, 1), M=np.eye(2), m=YT,
                                               P=np.eye(1), x_bounds=(-2, 2))


def scalar_problem() -> wb.BilevelProblem:
    x = sp.Symbol("x", real=True)
    y0, y1 = sp.symbols("y0 y1", real=True)
    f = (2 * y0 ** 2 + y1 ** 2) / 2 + (x - 1) * y0 - x * y1
    F = ((y0 - 0.2) ** 2 + (y1 - 0.7) ** 2) / 2 + x ** 2 / 2
    return wb.BilevelProblem([x], [y0, y1], F, f, [x >= -2, x <= 2], [y0 >= 0, y1 >= 0, y0 <= 1, y1 <= 1])


def test_vector_and_scalar_declarations_solve_alike():
    rv, rs = vector_problem().solve(), scalar_problem().solve()
    assert rv.status == rs.status == "optimal"
    np.testing.assert_allclose(rv.x, [X_STAR], atol=1e-6)
    np.testing.assert_allclose(rv.y, Y_STAR, atol=1e-6)
    np.testing.assert_allclose(rv.x, rs.x, atol=1e-7)
    assert rv.upper_value == pytest.approx(rs.upper_value, abs=1e-9)
    assert list(rv.multipliers) == ["y_lb[0]", "y_lb[1]", "y_ub[0]", "y_ub[1]"]


def test_follower_response_and_named_multipliers_match_scalar():
    # At x = 1.5: y0 = 0 (lower bound), y1 = 1 (upper bound). With L = f − lamᵀg:
    # y0: 2y0 − 1 + x − lam_lb0 = 0 => lam_lb0 = 0.5;  y1: y1 − x + lam_ub1 = 0 => lam_ub1 = 0.5.
    rv = vector_problem().follower_response([1.5])
    rs = scalar_problem().follower_response([1.5])
    np.testing.assert_allclose(rv.y, [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(rv.y, rs.y, atol=1e-9)
    assert rv.multipliers["y_lb[0]"] == pytest.approx(0.5, abs=1e-8)
    assert rv.multipliers["y_ub[1]"] == pytest.approx(0.5, abs=1e-8)
    np.testing.assert_allclose(rv.lam, rs.lam, atol=1e-8)  # same row order: lb0, lb1, ub0, ub1


def test_callable_blocks_with_parameters():
    # follower min ½‖y − t‖² s.t. y0 + y1 <= 1 (block "budget"); leader min ½‖y‖² + ½(x − 1)².
    # With t = (1, 1) the budget binds: y = (½, ½), lam_budget = ½ (y_i − t_i + lam = 0).
    # With t = (0.2, 0.3) it does not: y = t, lam = 0.
    A = sps.csc_matrix(np.ones((1, 2)))
    p = wb.VectorBilevelProblem(
        1, 2, upper_objective=lambda x, y, p: ca.sumsqr(y) / 2 + (x - 1) ** 2 / 2,
        lower_objective=lambda x, y, p: ca.sumsqr(y - p["t"]) / 2,
        lower_ineq={"budget": lambda x, y, p: 1 - ca.mtimes(wb.model.vector.sparse_dm(A, (1, 2), "A"), y)},
        parameters={"t": [1.0, 1.0]})
    r = p.follower_response([0.0])
    np.testing.assert_allclose(r.y, [0.5, 0.5], atol=1e-9)
    assert r.multipliers["budget[0]"] == pytest.approx(0.5, abs=1e-8)
    r2 = p.follower_response([0.0], parameters={"t": [0.2, 0.3]})
    np.testing.assert_allclose(r2.y, [0.2, 0.3], atol=1e-9)
    assert r2.multipliers["budget[0]"] == pytest.approx(0.0, abs=1e-8)


def test_large_declaration_is_linear_in_nonzeros():
    # A tridiagonal Q (3n − 2 nonzeros) with n = 5000: the follower objective's graph must
    # have O(nnz) nodes (a dense or scalar-by-scalar build would have ~n² or fail).
    n = 5000
    Qs = sps.diags([np.full(n - 1, -1.0), np.full(n, 4.0), np.full(n - 1, -1.0)], [-1, 0, 1], format="csc")
    p = wb.VectorBilevelProblem.from_arrays(Qs, np.ones(n), n_x=1, C=np.ones((n, 1)), y_bounds=(0, 1),
                                            M=sps.identity(n, format="csc"), m=np.zeros(n))
    lp = lower(p)
    nodes = ca.Function("f", [lp.x, lp.y], [lp.f]).n_nodes()
    assert nodes < 20 * Qs.nnz
    assert lp.g.numel() == 2 * n and len(p.g) == 2 * n and p.g[n].name == "y_ub[0]"
    hess = ca.hessian(lp.f, lp.y)[0]
    assert hess.nnz() == Qs.nnz  # the Hessian keeps Q's sparsity


def test_symbolic_route_says_it_needs_sympy():
    with pytest.raises(wb.MethodError, match="vectorised declaration"):
        vector_problem().solve(method="substitution")


def test_nonsmooth_callable_is_detected():
    p = wb.VectorBilevelProblem(1, 1, lambda x, y, p: x ** 2, lambda x, y, p: ca.fabs(y - x))
    with pytest.raises(NonSmoothError):
        p.solve()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(Q=np.eye(3)[:2]), ValueInputError, "shape"),
    (dict(C=np.ones((3, 1))), ValueInputError, "C has shape"),
    (dict(c=[np.nan, 0.0]), ValueInputError, "c entry 0"),
    (dict(Q=sps.csc_matrix(np.array([[np.nan, 0], [0, 1.0]]))), ValueInputError, "NaN"),
    (dict(y_bounds=(1.0, 0.0)), ValueInputError, "exceeds"),
    (dict(y_bounds=([0, 0, 0], 1)), ValueInputError, "3 entries"),
    (dict(M=np.eye(2), m=None), ValueInputError, "without m"),
])
def test_bad_arrays_raise_typed_errors(kwargs, error, match):
    args = dict(Q=Q, c=c, n_x=1, C=C)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        wb.VectorBilevelProblem.from_arrays(**args)


def test_bad_blocks_raise_model_errors():
    ok = lambda x, y, p: ca.sumsqr(y)  # noqa: E731
    with pytest.raises(ModelError, match="callable"):
        wb.VectorBilevelProblem(1, 2, "x**2", ok)
    with pytest.raises(ModelError, match="scalar"):
        wb.VectorBilevelProblem(1, 2, lambda x, y, p: y, ok)
    with pytest.raises(ModelError, match="does not depend"):
        wb.VectorBilevelProblem(1, 2, ok, lambda x, y, p: x ** 2)
    with pytest.raises(ModelError, match="reserved"):
        wb.VectorBilevelProblem(1, 2, ok, ok, lower_ineq={"y_lb": lambda x, y, p: y})
    with pytest.raises(ModelError, match="column"):
        wb.VectorBilevelProblem(1, 2, ok, ok, lower_ineq={"g": lambda x, y, p: ca.mtimes(y, y.T)})
    with pytest.raises(ValueInputError, match="x_start"):
        wb.VectorBilevelProblem(1, 2, ok, ok, x_start=[np.nan])

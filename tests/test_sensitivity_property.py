"""Property test: random strictly convex QP followers with a planted, non-degenerate active set.

Construction (independent of the library): pick y*, an active set A, lam_A > 0 and slacks > 0
for the inactive rows, then choose c and b so that the KKT conditions hold at x0:
    f = 1/2 y^T Q y + (c + B x)^T y,   g = M y - b - D x >= 0,
    Q y* + c + B x0 - M_A^T lam_A = 0,   M_A y* - b_A - D_A x0 = 0,   M_I y* - b_I - D_I x0 = slack.
On this active set y(x), lam_A(x) are affine and solve
    [[Q, -M_A^T], [M_A, 0]] [dy; dlam_A] = [-B; D_A]     (closed form, numpy dense solve),
with dlam = 0 for inactive rows.
"""
import numpy as np
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import workbench as wb


def planted_qp(seed: int, n_y: int, n_x: int, m: int):
    rng = np.random.default_rng(seed)
    Mq = rng.normal(size=(n_y, n_y))
    Q = Mq @ Mq.T + 0.5 * np.eye(n_y)
    B = rng.normal(size=(n_y, n_x))
    M = rng.normal(size=(m, n_y))
    D = rng.normal(size=(m, n_x))
    n_act = int(rng.integers(0, min(m, n_y) + 1))
    active = np.zeros(m, dtype=bool)
    active[rng.choice(m, n_act, replace=False)] = True
    x0 = rng.uniform(-1, 1, n_x)
    ystar = rng.uniform(-1, 1, n_y)
    lam = np.where(active, rng.uniform(0.5, 2.0, m), 0.0)
    slack = np.where(active, 0.0, rng.uniform(0.5, 2.0, m))
    c = M.T @ lam - Q @ ystar - B @ x0
    b = M @ ystar - D @ x0 - slack
    return Q, B, M, D, c, b, x0, ystar, lam, active


def to_problem(Q, B, M, D, c, b):
    n_y, n_x = B.shape
    xs = sp.symbols(f"x0:{n_x}", real=True)
    ys = sp.symbols(f"y0:{n_y}", real=True)
    X, Y = sp.Matrix(xs), sp.Matrix(ys)
    f = (Y.T * sp.Matrix(Q) * Y)[0] / 2 + ((sp.Matrix(c) + sp.Matrix(B) * X).T * Y)[0]
    g = sp.Matrix(M) * Y - sp.Matrix(b) - sp.Matrix(D) * X
    F = sum(v ** 2 for v in ys) + sum(xs)
    return wb.BilevelProblem(list(xs), list(ys), upper_objective=F, lower_objective=f,
                             lower_constraints=[gi >= 0 for gi in g]), xs


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), n_y=st.integers(1, 3), n_x=st.integers(1, 2), m=st.integers(1, 4))
def test_random_qp_matches_closed_form_and_finite_differences(seed, n_y, n_x, m):
    Q, B, M, D, c, b, x0, ystar, lam, active = planted_qp(seed, n_y, n_x, m)
    MA = M[active]
    assume(MA.shape[0] == 0 or np.linalg.cond(MA) < 1e3)
    p, xs = to_problem(Q, B, M, D, c, b)
    s = p.sensitivity(dict(zip(xs, x0)))
    np.testing.assert_allclose(s.response.y, ystar, atol=1e-8)
    np.testing.assert_allclose(s.response.lam, lam, atol=1e-8)
    assert s.status == "regular"
    k = MA.shape[0]
    K = np.block([[Q, -MA.T], [MA, np.zeros((k, k))]])
    sol = np.linalg.solve(K, np.vstack([-B, D[active]]))
    dlam = np.zeros((m, n_x))
    dlam[active] = sol[n_y:]
    np.testing.assert_allclose(s.dy_dx, sol[:n_y], atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(s.dlam_dx, dlam, atol=1e-8, rtol=1e-8)
    # hypergradient of F = |y|^2 + sum(x): 1 + 2 (dy/dx)^T y
    np.testing.assert_allclose(s.hypergradient, 1 + 2 * sol[:n_y].T @ ystar, atol=1e-8)
    chk = s.check(h=1e-6)
    # |error| / max(1, |value|): planted active sets can be ill-conditioned (cond(M_A) up to 1e3),
    # with multiplier derivatives of order 1e5 whose FD error is then ~1e-5 in absolute terms
    assert chk["dy_rel"] < 1e-5 and chk["dlam_rel"] < 1e-5 and chk["hyper_rel"] < 1e-5

"""method="hypergradient": min_x F(x, y*(x)) by SciPy with exact hypergradients.

Every expected number is derived by hand (or by an independent NumPy formula) next to the test.
"""
import casadi as ca
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.errors import MethodError, ValueInputError
from workbench.solve.smooth_follower import SmoothFollower

x, x1, x2 = sp.symbols("x x1 x2", real=True)
y, y1, y2 = sp.symbols("y y1 y2", real=True)


def seed_quadratic() -> wb.BilevelProblem:
    # f = ½ yᵀA(x)y − b(x)ᵀy with A = diag(1 + x², 2), b = (x, 1): y1 = x/(1 + x²), y2 = ½.
    return wb.BilevelProblem([x], [y1, y2], upper_objective=y1 ** 2 + y2,
                             lower_objective=((1 + x ** 2) * y1 ** 2 + 2 * y2 ** 2) / 2 - x * y1 - y2,
                             start={x: 0.5})


def test_seed_quadratic_follower_kkt_engine():
    # Φ(x) = x²/(1 + x²)² + ½. Seed formula ∇y* = A⁻¹(∇b − (∇A) y*) at x = ½: y1 = 0.4,
    # dy1/dx = (1 − 2·0.5·0.4)/1.25 = 0.48, so Φ'(½) = 2·0.4·0.48 = 0.384 (log row 0).
    # Φ' = 2x(1 − x²)/(1 + x²)³ vanishes at 0 (minimum, Φ = ½) and ±1 (maxima): from ½ descent ends at 0.
    xv = 0.5
    yv = np.array([xv / (1 + xv ** 2), 0.5])
    dy = np.linalg.solve(np.diag([1 + xv ** 2, 2.0]), np.array([1.0, 0.0]) - np.diag([2 * xv, 0.0]) @ yv)
    assert 2 * yv[0] * dy[0] == pytest.approx(0.384, abs=1e-12)
    r = seed_quadratic().solve(method="hypergradient", progress=False)
    assert r.status == "optimal" and r.optimality == "local"
    assert r.info["follower_engine"] == "kkt" and r.info["optimizer"] == "L-BFGS-B"
    assert r.log[0]["projected_gradient"] == pytest.approx(0.384, abs=1e-8)
    assert r.log[0]["F"] == pytest.approx(0.16 + 0.5, abs=1e-10)
    assert r.leader[x] == pytest.approx(0.0, abs=1e-5)
    assert r.upper_value == pytest.approx(0.5, abs=1e-9)
    assert r.info["reduced_stationarity"] <= 1e-6
    assert r.solver_stats.solver_name == "scipy-L-BFGS-B"
    assert {"F", "projected_gradient", "follower_iterations", "time_s", "kink"} <= set(r.log[-1])


def test_seed_quadratic_follower_matrix_engine():
    # The same follower declared with CasADi expressions: Newton–CG follower, CG adjoint.
    # Hypergradient at x = ½ is 0.384 (previous test); at x = 2: y1 = 0.4, dy1/dx = −3/25, Φ' = −0.096.
    p = wb.VectorBilevelProblem(
        1, 2, upper_objective=lambda x, y, p: y[0] ** 2 + y[1],
        lower_objective=lambda x, y, p: ((1 + x[0] ** 2) * y[0] ** 2 + 2 * y[1] ** 2) / 2 - x[0] * y[0] - y[1],
        x_start=[0.5])
    eng = SmoothFollower(p, p.parameter_vector())
    assert eng.evaluate(np.array([0.5])).grad[0] == pytest.approx(0.384, abs=1e-9)
    assert eng.evaluate(np.array([2.0])).grad[0] == pytest.approx(2 * 0.4 * (1 - 4) / 25, abs=1e-9)
    r = p.solve(method="hypergradient", progress=False)
    assert r.status == "optimal" and r.info["follower_engine"] == "matrix"
    assert r.x[0] == pytest.approx(0.0, abs=1e-5) and r.upper_value == pytest.approx(0.5, abs=1e-9)


def test_box_follower_active_set_changes_along_the_path():
    # y*(x) = clip(x, 0, 1) (projection of x on [0, 1]). Φ = (x − 2)² + (clip(x, 0, 1) − 1.5)²:
    # x < 0: Φ' = 2(x − 2) < 0; 0 < x < 1: Φ' = 2(x − 2) + 2(x − 1.5) < 0; x > 1: Φ' = 2(x − 2),
    # so from x = −1 the path crosses both kinks and ends at x* = 2, y* = 1, Φ* = 0.25.
    p = wb.BilevelProblem([x], [y], upper_objective=(x - 2) ** 2 + (y - 1.5) ** 2,
                          lower_objective=(y - x) ** 2 / 2, lower_constraints=[y >= 0, y <= 1],
                          upper_constraints=[x >= -3, x <= 3], start={x: -1.0})
    r = p.solve(method="hypergradient", progress=False)
    assert r.status == "optimal"
    assert r.leader[x] == pytest.approx(2.0, abs=1e-5)
    assert r.follower[y] == pytest.approx(1.0, abs=1e-8)
    assert r.upper_value == pytest.approx(0.25, abs=1e-8)
    assert r.log[0]["F"] == pytest.approx(9 + 2.25, abs=1e-8)   # x = −1: y = 0


def test_kink_at_the_start_uses_one_sided_derivatives():
    # Same reaction y = clip(x, 0, 1), Φ = (y − 1)² + 0.1 (x − 1)²: left of 1, Φ = 1.1 (x − 1)²,
    # right of 1, Φ = 0.1 (x − 1)². At x = 1 the bound y <= 1 is weakly active (multiplier 0):
    # one-sided derivatives g⁻ = g⁺ = 0, so x = 1 is stationary, Φ = 0, logged as a kink.
    p = wb.BilevelProblem([x], [y], upper_objective=(y - 1) ** 2 + sp.Rational(1, 10) * (x - 1) ** 2,
                          lower_objective=(y - x) ** 2 / 2, lower_constraints=[y >= 0, y <= 1],
                          upper_constraints=[x >= -3, x <= 3], start={x: 1.0})
    r = p.solve(method="hypergradient", progress=False)
    assert r.log[0]["kink"] is True and "one-sided" in r.log[0]["kink_note"]
    assert r.info["kinks"] >= 1
    assert r.leader[x] == pytest.approx(1.0, abs=1e-8)
    assert r.upper_value == pytest.approx(0.0, abs=1e-12)
    assert r.status == "optimal"


@pytest.mark.parametrize("optimizer", ["auto", "trust-constr"])
def test_leader_with_a_general_constraint(optimizer):
    # Follower y = x (unique minimiser of ‖y − x‖²); leader min ‖y − (1, 1)‖² s.t. x1 + x2 <= 1:
    # the projection of (1, 1) onto the half-plane, x* = (½, ½), F* = 2·¼ = ½.
    p = wb.BilevelProblem([x1, x2], [y1, y2], upper_objective=(y1 - 1) ** 2 + (y2 - 1) ** 2,
                          lower_objective=(y1 - x1) ** 2 + (y2 - x2) ** 2,
                          upper_constraints={"budget": x1 + x2 <= 1}, start={x1: 0.0, x2: 0.0})
    r = p.solve(method="hypergradient", optimizer=optimizer, progress=False)
    assert r.info["optimizer"] == ("SLSQP" if optimizer == "auto" else optimizer)
    assert r.info["general_constraints"] == ["budget"]
    assert r.status == "optimal"
    # SLSQP lands on the boundary; trust-constr (interior point) stops within its barrier, so its
    # point is accepted to 1e-4 (the KKT residual includes complementarity μ·|c|, <= 100 tol)
    atol = 1e-6 if optimizer == "auto" else 1e-4
    np.testing.assert_allclose(r.x, [0.5, 0.5], atol=atol)
    assert r.upper_value == pytest.approx(0.5, abs=4 * atol)
    assert r.info["reduced_stationarity"] <= 100 * 1e-6   # ∇Φ = (−1, −1) = μ·(−1, −1)ᵀ, μ = 1 >= 0


def test_bad_options_raise_typed_errors():
    p = seed_quadratic()
    with pytest.raises(MethodError, match="optimizer"):
        p.solve(method="hypergradient", optimizer="newton")
    with pytest.raises(ValueInputError, match="tol"):
        p.solve(method="hypergradient", tol=-1e-3)
    with pytest.raises(ValueInputError, match="max_iter"):
        p.solve(method="hypergradient", max_iter=0)
    with pytest.raises(MethodError, match="maxiter"):
        p.solve(method="hypergradient", maxiter=10)
    with pytest.raises(MethodError, match="follower"):
        p.solve(method="hypergradient", follower="matrix")   # a SymPy problem has no matrix engine
    q = wb.BilevelProblem([x1, x2], [y1, y2], upper_objective=(y1 - 1) ** 2 + (y2 - 1) ** 2,
                          lower_objective=(y1 - x1) ** 2 + (y2 - x2) ** 2, upper_constraints=[x1 + x2 <= 1])
    with pytest.raises(MethodError, match="L-BFGS-B"):
        q.solve(method="hypergradient", optimizer="L-BFGS-B")


def double_well() -> wb.BilevelProblem:
    # Follower y* = x (min ½(y − x)²), leader F = (u² − 1)² + 0.3u with u = y/5, x in [−10, 10]:
    # Φ'(x) = (4u³ − 4u + 0.3)/5 has three real roots u (numpy.roots below): a local minimum near
    # x = +4.80, the global one near −5.18 (0.3u makes the left well lower), a maximum near 0.38.
    u = y / 5
    return wb.BilevelProblem([x], [y], upper_objective=(u ** 2 - 1) ** 2 + 0.3 * u,
                             lower_objective=(y - x) ** 2 / 2, upper_constraints=[x >= -10, x <= 10], start={x: 6.0})


def test_n_starts_reaches_the_lower_of_two_stationary_points():
    u = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)          # Φ' = 0: u = −1.0356, 0.0752, 0.9601
    roots, phi = 5 * u, (u ** 2 - 1) ** 2 + 0.3 * u
    p = double_well()
    one = p.solve(method="hypergradient", progress=False)      # from 6 descent stays in the right well
    assert one.status == "optimal" and one.leader[x] == pytest.approx(roots[2], abs=1e-5)
    assert one.upper_value == pytest.approx(phi[2], abs=1e-9)
    many = p.solve(method="hypergradient", progress=False, n_starts=5, seed=0)
    assert len(many.info["starts"]) == 5 and {row["start"] for row in many.log} == set(range(5))
    assert many.leader[x] == pytest.approx(roots[0], abs=1e-5)  # some seeded start of [−10, 10] falls left of 0.38
    assert many.upper_value == pytest.approx(phi[0], abs=1e-9) and many.status == "optimal"
    assert many.upper_value == min(s["F"] for s in many.info["starts"] if s["converged"])
    with pytest.raises(ValueInputError, match="n_starts"):
        p.solve(method="hypergradient", n_starts=0)
    with pytest.raises(ValueInputError, match="seed"):
        p.solve(method="hypergradient", seed=-1)


def two_wells_and_a_bowl() -> wb.BilevelProblem:
    # Followers y_i* = x_i (min ½‖y − x‖²); leader F = g(u1) + 3(u2 + 1)², u_i = y_i/5, x in [−10, 10]²,
    # g(u) = (u² − 1)² + 0.3u the double well above (local well u = 0.9601, the lower one u = −1.0356).
    # Φ is separable: from the start (6, 6) coordinate 1 stays in g's right well, coordinate 2 goes to u2 = −1.
    # On the diagonal x = t·1, φ(u) = g(u) + 3(u + 1)² has φ'(u)/1 = 4u³ + 2u + 6.3 (φ'' = 12u² + 2 > 0:
    # one minimum, the real root of that cubic, u* ≈ −1.02), which lies in g's left basin (left of its
    # maximum u = 0.0752): descending from the tied point ends in the lower well (u1, u2) = (−1.0356, −1).
    u1, u2 = y1 / 5, y2 / 5
    return wb.BilevelProblem([x1, x2], [y1, y2], upper_objective=(u1 ** 2 - 1) ** 2 + 0.3 * u1 + 3 * (u2 + 1) ** 2,
                             lower_objective=((y1 - x1) ** 2 + (y2 - x2) ** 2) / 2,
                             upper_constraints=[x1 >= -10, x1 <= 10, x2 >= -10, x2 <= 10], start={x1: 6.0, x2: 6.0})


def test_tied_start_reaches_the_lower_well():
    wells = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)[[0, 2]]       # g' = 0: u = −1.0356 (lower), 0.9601
    g = (wells ** 2 - 1) ** 2 + 0.3 * wells
    tied_u = [r.real for r in np.roots([4.0, 0.0, 2.0, 6.3]) if abs(r.imag) < 1e-12]   # φ' = 0 on the diagonal
    assert len(tied_u) == 1 and tied_u[0] < 0.0752                      # one root, in g's left basin
    p = two_wells_and_a_bowl()
    off = p.solve(method="hypergradient", progress=False, tied_start="off")
    assert off.status == "optimal" and off.info["tied_start"] is None and len(off.info["starts"]) == 1
    assert [off.leader[x1], off.leader[x2]] == pytest.approx([5 * wells[1], -5.0], abs=1e-5)
    assert off.upper_value == pytest.approx(g[1], abs=1e-9)
    r = p.solve(method="hypergradient", progress=False)                 # default tied_start="extra"
    assert [s["origin"] for s in r.info["starts"]] == ["start", "tied"]
    assert r.info["starts"][0]["F"] == off.upper_value                  # the same first run as "off"
    assert r.info["tied_start"]["t"] == pytest.approx(5 * tied_u[0], abs=1e-5)
    assert r.status == "optimal" and [r.leader[x1], r.leader[x2]] == pytest.approx([5 * wells[0], -5.0], abs=1e-5)
    assert r.upper_value == pytest.approx(g[0], abs=1e-9)
    only = p.solve(method="hypergradient", progress=False, tied_start="only")
    assert [s["origin"] for s in only.info["starts"]] == ["tied"] and only.upper_value == pytest.approx(g[0], abs=1e-9)
    with pytest.raises(MethodError, match="tied_start"):
        p.solve(method="hypergradient", tied_start="sometimes")
    # One leader variable: the tied problem is the problem, so there is no tied stage.
    one = double_well().solve(method="hypergradient", progress=False)
    assert one.info["tied_start"] is None and [s["origin"] for s in one.info["starts"]] == ["start"]
    alone = double_well().solve(method="hypergradient", progress=False, tied_start="only")   # falls back to the start
    assert [s["origin"] for s in alone.info["starts"]] == ["start"] and alone.upper_value == one.upper_value


def test_iteration_limit_is_not_optimal():
    # One L-BFGS-B iteration from x = 6 cannot reach the stationary point 4.80 (previous test) to
    # the relative tolerance 1e-6: the route reports the point, not certified, and says why.
    r = double_well().solve(method="hypergradient", progress=False, max_iter=1)
    assert r.status == "not_certified"
    assert r.info["reduced_stationarity"] > r.info["stationarity_tolerance"]
    assert "stopped" in r.message


def _ridge_data(seed=0, n=40, nv=30, d=5):
    rng = np.random.default_rng(seed)
    X, Xv = rng.normal(size=(n, d)), rng.normal(size=(nv, d))
    w = np.array([1.5, -2.0, 0.0, 0.0, 0.5])[:d]
    return X, X @ w + rng.normal(size=n), Xv, Xv @ w + rng.normal(size=nv)


def test_ridge_family_hypergradient_matches_numpy_formula():
    # w(x) = H⁻¹ Xᵀt/n with H = XᵀX/n + diag(e^x); F = ‖X_v w − t_v‖²/(2 n_v), g_w = X_vᵀ(X_v w − t_v)/n_v.
    # ∂w/∂x_j = −H⁻¹ e_j e^{x_j} w_j, so ∂F/∂x_j = −e^{x_j} w_j (H⁻¹ g_w)_j.
    X, t, Xv, tv = _ridge_data()
    p = wb.VectorBilevelProblem.ridge_regression(X, t, Xv, tv)
    xv = np.array([-1.0, 0.0, 1.0, 2.0, -0.5])
    H = X.T @ X / 40 + np.diag(np.exp(xv))
    w = np.linalg.solve(H, X.T @ t / 40)
    gw = Xv.T @ (Xv @ w - tv) / 30
    expected = -np.exp(xv) * w * np.linalg.solve(H, gw)
    e = SmoothFollower(p, p.parameter_vector()).evaluate(xv)
    np.testing.assert_allclose(e.y, w, rtol=1e-10)
    np.testing.assert_allclose(e.grad, expected, rtol=1e-8, atol=1e-12)
    assert e.F == pytest.approx(np.sum((Xv @ w - tv) ** 2) / 60, rel=1e-12)
    r = p.solve(method="hypergradient", progress=False)
    assert r.status == "optimal" and r.info["leader_stationarity"] <= r.info["stationarity_tolerance"] <= 1e-6 * max(r.log[0]["F"], r.log[0]["projected_gradient"])
    xs = r.x
    Hs = X.T @ X / 40 + np.diag(np.exp(xs))
    ws = np.linalg.solve(Hs, X.T @ t / 40)
    assert r.upper_value == pytest.approx(np.sum((Xv @ ws - tv) ** 2) / 60, rel=1e-10)
    assert r.upper_value < p.solve(method="hypergradient", progress=False, max_iter=1).upper_value + 1e-12


def test_ridge_family_global_penalty_matches_a_fine_grid():
    # One penalty e^x for all weights: Φ is a smooth function of one variable; a grid over
    # x in [−8, 4] with spacing 1e-3 brackets the minimiser; the route must not be worse.
    X, t, Xv, tv = _ridge_data(seed=1)
    p = wb.VectorBilevelProblem.ridge_regression(X, t, Xv, tv, penalty="global")
    r = p.solve(method="hypergradient", progress=False)

    def phi(xv):
        w = np.linalg.solve(X.T @ X / 40 + np.exp(xv) * np.eye(5), X.T @ t / 40)
        return np.sum((Xv @ w - tv) ** 2) / 60
    grid = np.arange(-8, 4, 1e-3)
    best = min(phi(g) for g in grid)
    assert r.status == "optimal"
    assert r.upper_value <= best + 1e-9


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_family_hypergradient_matches_central_differences(classes):
    # Central differences of Φ(x) = F(x, y*(x)), y* re-solved tightly by an independent solver
    # (SciPy BFGS on the NumPy log-loss): agreement to 1e-6 relative.
    rng = np.random.default_rng(3)
    X, Xv = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    Wt = rng.normal(size=(3, classes))
    lab, labv = np.argmax(X @ Wt + rng.normal(size=(60, classes)), 1), np.argmax(Xv @ Wt + rng.normal(size=(40, classes)), 1)
    p = wb.VectorBilevelProblem.logistic_regression(X, lab, Xv, labv)
    K = 1 if classes == 2 else classes

    def loss_grad(W, A, labels):
        # mean log-loss and its gradient Aᵀ(P − Y)/n (P: softmax or sigmoid probabilities)
        Z = A @ W.reshape(3, K, order="F")
        if K == 1:
            P, Y = 1 / (1 + np.exp(-Z)), labels[:, None].astype(float)
            val = np.mean(np.logaddexp(0, Z[:, 0]) - Z[:, 0] * labels)
        else:
            P, Y = np.exp(Z) / np.exp(Z).sum(1, keepdims=True), np.eye(K)[labels]
            val = np.mean(np.log(np.exp(Z).sum(1)) - Z[np.arange(len(labels)), labels])
        return val, (A.T @ (P - Y) / len(labels)).reshape(-1, order="F")

    from scipy.optimize import minimize, root

    def phi(xv):
        pen = np.repeat(np.exp(xv), K).reshape(3, K).reshape(-1, order="F")

        def fol(W):
            v, g = loss_grad(W, X, lab)
            return v + 0.5 * np.sum(pen * W ** 2), g + pen * W
        W = minimize(fol, np.zeros(3 * K), jac=True, method="BFGS", options={"gtol": 1e-9}).x
        W = root(lambda W: fol(W)[1], W, tol=1e-14).x   # polish: MINPACK on the stationarity condition
        return loss_grad(W, Xv, labv)[0]
    xv = np.array([-1.0, 0.5, 0.0])
    e = SmoothFollower(p, p.parameter_vector()).evaluate(xv)
    assert e.F == pytest.approx(phi(xv), rel=1e-8)
    h = 1e-4
    fd = np.array([(phi(xv + h * u) - phi(xv - h * u)) / (2 * h) for u in np.eye(3)])
    np.testing.assert_allclose(e.grad, fd, rtol=1e-5, atol=1e-8)
    r = p.solve(method="hypergradient", progress=False)
    assert r.status == "optimal" and r.upper_value <= e.F


def test_logistic_family_rejects_bad_input():
    X = np.ones((4, 2))
    with pytest.raises(ValueInputError, match="penalty"):
        wb.VectorBilevelProblem.logistic_regression(X, [0, 1, 0, 1], X, [0, 1, 1, 0], penalty="per_class")
    with pytest.raises(ValueInputError, match="classes"):
        wb.VectorBilevelProblem.logistic_regression(X, [0, 0, 0, 0], X, [0, 0, 0, 0])
    with pytest.raises(ValueInputError, match="X_val"):
        wb.VectorBilevelProblem.ridge_regression(X, np.ones(4), np.ones((4, 3)), np.ones(4))


def test_does_not_mutate_user_input():
    X, t, Xv, tv = _ridge_data()
    copies = [a.copy() for a in (X, t, Xv, tv)]
    start = np.zeros(5)
    p = wb.VectorBilevelProblem.ridge_regression(X, t, Xv, tv)
    p.solve(method="hypergradient", start=start, progress=False)
    for a, b in zip((X, t, Xv, tv), copies):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(start, np.zeros(5))


def test_sparse_qp_family_agrees_with_the_kkt_route():
    # benchmarks/scale's ridge family at n = 20 (from_arrays: Q = XᵀX, E = I, lam in [0, 10]):
    # both routes must reach the same validation loss (checked to 1e-6 relative).
    import scipy.sparse as sps
    rng = np.random.default_rng(0)
    n = 20
    X, Xv = sps.random(40, n, density=0.3, random_state=1), sps.random(20, n, density=0.3, random_state=2)
    wt = rng.normal(size=n) * (rng.random(n) < 0.3)
    t, tv = X @ wt + 0.5 * rng.normal(size=40), Xv @ wt + 0.5 * rng.normal(size=20)
    p = wb.VectorBilevelProblem.from_arrays((X.T @ X).tocsc() + 1e-3 * sps.identity(n), -(X.T @ t), n_x=n,
                                            E=sps.identity(n, format="csc"), M=Xv, m=tv,
                                            P=0.01 * sps.identity(n, format="csc"), x_bounds=(0.0, 10.0),
                                            x_start=np.ones(n))
    r = p.solve(method="hypergradient", progress=False, tol=1e-9)
    k = p.solve(method="kkt", n_starts=1, global_search=False)
    assert r.status == "optimal" and k.status == "optimal"
    assert r.upper_value == pytest.approx(k.upper_value, rel=1e-6)
    assert ca is not None


def test_ridge_woodbury_factor_matches_a_dense_solve():
    # d = 12 features > n = 6 rows: the family factors K = nI + X D⁻¹ Xᵀ (Woodbury); the answer
    # must equal NumPy's dense solve of (XᵀX/n + diag(e^x)) w = b, and so must the route's hypergradient.
    rng = np.random.default_rng(3)
    X, Xv = rng.normal(size=(6, 12)), rng.normal(size=(5, 12))
    t, tv = rng.normal(size=6), rng.normal(size=5)
    p = wb.VectorBilevelProblem.ridge_regression(X, t, Xv, tv)
    xv = rng.normal(size=12) * 3            # penalties from e^-9 to e^9: the refinement step matters
    H = X.T @ X / 6 + np.diag(np.exp(xv))
    b = rng.normal(size=12)
    np.testing.assert_allclose(p._f.factor(xv)(b), np.linalg.solve(H, b), rtol=1e-9, atol=1e-12)
    w = np.linalg.solve(H, X.T @ t / 6)      # same closed form as test_ridge_family_hypergradient_matches_numpy_formula
    expected = -np.exp(xv) * w * np.linalg.solve(H, Xv.T @ (Xv @ w - tv) / 5)
    e = SmoothFollower(p, p.parameter_vector()).evaluate(xv)
    np.testing.assert_allclose(e.grad, expected, rtol=1e-7, atol=1e-12)


def test_banded_cholesky_matches_a_dense_solve_and_rejects_indefinite():
    # A shuffled tridiagonal matrix (RCM recovers the band); the solve must equal NumPy's, and an
    # indefinite matrix (diagonal 1, off-diagonal −1: eigenvalue 1 − 2cos(π/(n+1)) < 0) is refused.
    import scipy.sparse as sps
    from workbench.solve.smooth_follower import factor_pd
    n = 200
    T = sps.diags([np.full(n - 1, -1.0), np.full(n, 4.0), np.full(n - 1, -1.0)], [-1, 0, 1]).tocsr()
    perm = np.random.default_rng(0).permutation(n)
    A = T[perm][:, perm]
    b = np.arange(n, dtype=float)
    np.testing.assert_allclose(factor_pd(A)(b), np.linalg.solve(A.toarray(), b), rtol=1e-12)
    with pytest.raises(MethodError, match="positive definite"):
        factor_pd(sps.diags([np.full(n - 1, -1.0), np.ones(n), np.full(n - 1, -1.0)], [-1, 0, 1]).tocsr())


def test_auto_picks_the_route_for_a_large_strictly_convex_follower_and_says_why():
    # Ridge with n = 500 features (>= AUTO_MIN_FOLLOWER) and a diagonal design: the follower
    # ½ wᵀ(I + diag(λ))w − tᵀw is strictly convex for λ >= 0, and w_j = t_j/(1 + λ_j); F = ½‖w − s‖²
    # with s_j = t_j/2 is minimised at λ_j = 1 (w = s) for every j: Φ* = 0.
    import scipy.sparse as sps
    n = 500
    t = np.linspace(1.0, 2.0, n)
    p = wb.VectorBilevelProblem.from_arrays(sps.identity(n, format="csc"), -t, n_x=n, E=sps.identity(n, format="csc"),
                                            M=sps.identity(n, format="csc"), m=t / 2, x_bounds=(0.0, 10.0),
                                            x_start=np.full(n, 3.0))
    r = p.solve(method="auto", progress=False)
    assert r.method == "hypergradient" and r.info["route"].startswith("hypergradient (n_y = 500")
    assert r.status == "optimal" and r.certificate.proof == "convex"
    np.testing.assert_allclose(r.x, 1.0, atol=1e-4)
    small = wb.VectorBilevelProblem.from_arrays(sps.identity(3, format="csc"), -t[:3], n_x=3,
                                                E=sps.identity(3, format="csc"), M=sps.identity(3, format="csc"),
                                                m=t[:3] / 2, x_bounds=(0.0, 10.0))
    assert "n_y = 3 < 500" in small.solve(method="auto", n_starts=1).info["route"]


def test_blas_threads_must_be_a_positive_integer():
    with pytest.raises(ValueInputError, match="blas_threads"):
        seed_quadratic().solve(method="hypergradient", blas_threads=0)


def _mx_derivatives(block, x, y, v):
    # The same quantities from the block's CasADi expression by MX automatic differentiation:
    # an independent implementation of (value, ∇_x, ∇_y, ∇²_yy·v, ∇_x(∇_y·v), ∇²_yy).
    xs, ys, vs = ca.MX.sym("x", x.size), ca.MX.sym("y", y.size), ca.MX.sym("v", y.size)
    e = block(xs, ys, {})
    gy = ca.gradient(e, ys)
    fn = ca.Function("d", [xs, ys, vs], [e, ca.gradient(e, xs), gy, ca.jtimes(gy, ys, vs),
                                         ca.gradient(ca.dot(gy, vs), xs), ca.hessian(e, ys)[0]])
    return [np.asarray(o, float) for o in fn(x, y, v)]


@pytest.mark.parametrize("family,penalty,classes", [("ridge", "per_feature", 1), ("ridge", "global", 1),
                                                    ("logistic", "per_feature", 2), ("logistic", "per_feature", 3),
                                                    ("logistic", "per_class", 3), ("logistic", "global", 3),
                                                    ("qp", None, 1)])
def test_family_numeric_derivatives_match_casadi(family, penalty, classes):
    # The NumPy derivatives the families state (used by the matrix engine) against CasADi's AD of
    # the same blocks (used by the KKT route and the certificate): agreement to rounding.
    import scipy.sparse as sps
    rng = np.random.default_rng(7)
    X, Xv = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    if family == "qp":   # from_arrays with every leader and follower term present, nonsymmetric P and Q
        p = wb.VectorBilevelProblem.from_arrays(
            sps.random(6, 6, density=0.5, random_state=1) + 3 * sps.identity(6), rng.normal(size=6), n_x=3,
            C=sps.random(6, 3, density=0.5, random_state=2), E=sps.random(6, 3, density=0.5, random_state=3),
            P=sps.random(3, 3, density=0.7, random_state=4), q=rng.normal(size=3),
            M=sps.random(4, 6, density=0.5, random_state=5), m=rng.normal(size=4), d=rng.normal(size=6))
    elif family == "ridge":
        p = wb.VectorBilevelProblem.ridge_regression(X, rng.normal(size=30), Xv, rng.normal(size=20), penalty=penalty)
    else:
        p = wb.VectorBilevelProblem.logistic_regression(X, rng.integers(0, classes, 30), Xv,
                                                        rng.integers(0, classes, 20), penalty=penalty)
    x, y, v = rng.normal(size=p.n_x), rng.normal(size=p.n_y), rng.normal(size=p.n_y)
    for block, lower in ((p._f, True), (p._F, False)):
        val, gx, gy, hv, mixed, H = _mx_derivatives(block, x, y, v)
        nval, ngx, ngy = block.numeric(x, y)
        assert nval == pytest.approx(float(val.item()), rel=1e-12)
        np.testing.assert_allclose(ngx, gx.reshape(-1), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(ngy, gy.reshape(-1), rtol=1e-10, atol=1e-13)
        if family == "qp" and not lower:   # the protocol asks only numeric() of a leader block
            continue
        np.testing.assert_allclose(block.hessian_vector(x, y, v), hv.reshape(-1), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(block.mixed(x, y, v), mixed.reshape(-1), rtol=1e-10, atol=1e-13)
        if family == "logistic":
            np.testing.assert_allclose(block.hessian_at(x, y), H, rtol=1e-10, atol=1e-13)
        if not lower:
            continue
        if family == "qp":   # the stated Hessian of the quadratic path: Q + diag(E x)
            from workbench.solve.smooth_follower import _stated_hessian
            np.testing.assert_allclose(_stated_hessian(p)(x).toarray(), H, rtol=1e-12, atol=1e-13)


def test_vector_declaration_builds_no_sx_model_for_the_hypergradient_route():
    # The declaration is checked in MX on construction; the hypergradient route, its certificate
    # and r.upper_value use the MX form; the KKT route builds the SX model on demand and reaches
    # the same ridge optimum from the route's answer (a convex reduced problem in one penalty:
    # both stop at the stationary point of Φ, so the values agree to the tolerance).
    from workbench.lower.lowered import _CACHE
    X, t, Xv, tv = _ridge_data(seed=1)
    p = wb.VectorBilevelProblem.ridge_regression(X, t, Xv, tv, penalty="global")
    assert p not in _CACHE
    r = p.solve(method="hypergradient", progress=False)
    assert r.status == "optimal" and r.certificate.proof == "convex"
    r.upper_value, r.lower_value
    assert p not in _CACHE                         # no SX model was built
    k = p.solve(method="kkt", n_starts=1, global_search=False, start={"x": r.x})
    assert p in _CACHE and k.status == "optimal"
    assert k.upper_value == pytest.approx(r.upper_value, rel=1e-6)
    with pytest.raises(wb.errors.ModelError, match="column"):   # shape errors still surface on construction
        wb.VectorBilevelProblem(1, 2, lambda x, y, p: y[0] ** 2, lambda x, y, p: ca.mtimes(y, y.T))


def test_logistic_newton_follower_handles_tiny_penalties():
    # Separable training data with penalties e^-18 ≈ 1.5e-8: the weights grow to |w| ~ 10², the
    # Hessian's entries to ~1e-5 and its smallest eigenvalue (softmax's shift direction, penalised
    # only by e^x) to ~1e-8 (on load_digits such points stalled the Krylov solve). The Newton
    # engine must return ∇_w f ≈ 0, and its hypergradient must equal the implicit-function formula
    # ∇Φ = −(∂²f/∂w∂x)ᵀ H⁻¹ ∇_w F built from CasADi's AD of the declaration (H, the mixed
    # Jacobian, ∇_w F) and NumPy's dense solve at the same w.
    rng = np.random.default_rng(5)
    X, Xv = rng.normal(size=(80, 3)), rng.normal(size=(40, 3))
    Wt = 3 * rng.normal(size=(3, 3))
    lab, labv = np.argmax(X @ Wt, 1), np.argmax(Xv @ Wt + 0.5 * rng.normal(size=(40, 3)), 1)
    p = wb.VectorBilevelProblem.logistic_regression(X, lab, Xv, labv)
    xv = np.full(3, -18.0)
    e = SmoothFollower(p, p.parameter_vector()).evaluate(xv)
    assert np.max(np.abs(p._f.numeric(xv, e.y)[2])) <= 1e-9
    xs, ws = ca.MX.sym("x", 3), ca.MX.sym("w", 9)
    gw = ca.gradient(p._f(xs, ws, {}), ws)
    H, J, Fw = (np.asarray(o, float) for o in ca.Function("k", [xs, ws], [
        ca.jacobian(gw, ws), ca.jacobian(gw, xs), ca.gradient(p._F(xs, ws, {}), ws)])(xv, e.y))
    assert np.linalg.cond(H) > 1e3
    np.testing.assert_allclose(e.grad, -J.T @ np.linalg.solve(H, Fw.reshape(-1)), rtol=1e-6, atol=1e-14)

"""Closed-form reaction maps and the substitution route (issue 5, section 1)."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.analysis.reaction import NoClosedFormError

x, y = sp.symbols("x y", real=True)
x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2", real=True)


def seed_unconstrained():
    return wb.BilevelProblem([x], [y], x + y, (y - x) ** 2 / 2, upper_constraints=[x >= 0, x <= 1])


def seed_boxed(lo=-3, hi=3):
    return wb.BilevelProblem([x], [y], (x - 2) ** 2 + (y + 1) ** 2, (y - x) ** 2,
                             upper_constraints=[x >= lo, x <= hi], lower_constraints=[y >= -1, y <= 1])


def test_reaction_map_unconstrained_seed():
    # By hand: d/dy ½(y - x)² = y - x = 0  =>  y*(x) = x (one piece, valid for every x).
    rm = seed_unconstrained().reaction_map()
    assert sp.simplify(rm[y] - x) == 0
    assert list(rm) == [y] and rm.as_dict() == {y: x}
    assert rm(np.array([0.7]))[0] == pytest.approx(0.7)


def test_reaction_map_piecewise_seed_matches_hand_and_brute_force():
    # By hand: the unconstrained minimiser y = x is feasible for -1 <= x <= 1; for x < -1 the
    # bound y >= -1 is active (multiplier 2(-1 - x) >= 0), for x > 1 the bound y <= 1 (2(x - 1) >= 0).
    rm = seed_boxed().reaction_map()
    expected = sp.Piecewise((-1, x < -1), (x, (x >= -1) & (x <= 1)), (1, x > 1))
    assert rm[y] == expected
    # Brute force: minimise (y - x)² over a fine y-grid in [-1, 1] at several x.
    ygrid = np.linspace(-1, 1, 20001)
    for xv in (-2.5, -1.0, -0.3, 0.0, 0.8, 1.0, 1.7):
        y_bf = ygrid[np.argmin((ygrid - xv) ** 2)]
        assert rm(np.array([xv]))[0] == pytest.approx(y_bf, abs=1e-4)
        assert float(rm[y].subs(x, xv)) == pytest.approx(y_bf, abs=1e-4)
    # Multipliers of the active piece: at x = 3 the bound y <= 1 (index 1) has lam = 2(3 - 1) = 4.
    lam, _ = rm.multipliers(np.array([3.0]))
    assert lam == pytest.approx([0.0, 4.0])


def test_solve_substitution_seed_is_exact():
    # By hand: reduced objective F(x, x) = 2x on [0, 1], increasing => x* = 0, y* = 0, F* = 0.
    r = seed_unconstrained().solve(method="substitution")
    assert r.status == "optimal" and r.info["exact"]
    assert sp.simplify(r.info["reduced_objective"] - 2 * x) == 0
    assert r.info["exact_x"] == {x: 0} and r.info["exact_value"] == 0
    assert r.leader[x] == 0.0 and r.follower[y] == 0.0 and r.upper_value == 0.0


def test_solve_substitution_piecewise_exact_and_numeric_agree_with_grid():
    # Brute force: Phi(x) = min over the feasible y-grid reply, on an x-grid of [-3, 3];
    # Phi = (x-2)² + (x+1)² on [-1, 1] (min 4.5 at x = 1/2), (x-2)² + 4 on (1, 3] (min 4 at x = 2),
    # (x-2)² >= 9 on [-3, -1). So x* = 2, y* = 1, F* = 4, and lam(y <= 1) = 2(x - y) = 2.
    xs = np.linspace(-3, 3, 6001)
    phi = (xs - 2) ** 2 + (np.clip(xs, -1, 1) + 1) ** 2
    assert xs[np.argmin(phi)] == pytest.approx(2.0) and phi.min() == pytest.approx(4.0)
    p = seed_boxed()
    r = p.solve(method="substitution")
    assert r.status == "optimal" and r.info["exact_x"] == {x: 2} and r.info["exact_value"] == 4
    assert r.follower[y] == 1.0 and r.multipliers[1] == pytest.approx(2.0)
    rn = p.solve(method="substitution", exact=False)
    assert rn.status == "optimal" and not rn.info["exact"]
    assert rn.leader[x] == pytest.approx(2.0, abs=1e-6) and rn.upper_value == pytest.approx(4.0, abs=1e-8)


def test_solve_substitution_with_coupled_leader_constraint():
    # By hand: y*(x) = x and the leader needs y >= 1/2, i.e. x >= 1/2; F = 2x is increasing,
    # so x* = 1/2 (the box [-2, 1] alone would give x = -2).
    p = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2 / 2,
                          upper_constraints=[x >= -2, x <= 1, y >= sp.Rational(1, 2)])
    r = p.solve(method="substitution")
    assert r.status == "optimal" and r.info["exact_x"] == {x: sp.Rational(1, 2)}
    assert r.upper_value == pytest.approx(1.0)


def test_solve_substitution_two_leaders_numeric():
    # By hand: F = (x1-1)² + (x2-1)² - y1 - y2 >= -1 because y1 + y2 <= 1. At x = (1, 1) the follower
    # min (y1-1)² + (y2-1)² + y1 y2 / 2 s.t. y >= 0, y1 + y2 <= 1 is symmetric: y = (1/2, 1/2) with
    # KKT 2(1/2 - 1) + 1/4 + lam = 0 => lam = 3/4 >= 0, so F = -1 is attained: x* = (1, 1).
    p = wb.BilevelProblem([x1, x2], [y1, y2], (x1 - 1) ** 2 + (x2 - 1) ** 2 - y1 - y2,
                          (y1 - x1) ** 2 + (y2 - x2) ** 2 + y1 * y2 / 2,
                          upper_constraints=[x1 >= 0, x2 >= 0, x1 <= 2, x2 <= 2],
                          lower_constraints=[y1 >= 0, y2 >= 0, y1 + y2 <= 1])
    r = p.solve(method="substitution")
    assert r.status == "optimal" and not r.info["exact"]
    assert r.upper_value == pytest.approx(-1.0, abs=1e-7)
    assert list(r.y) == pytest.approx([0.5, 0.5], abs=1e-6)
    assert r.multipliers[2] == pytest.approx(0.75, abs=1e-6)


@pytest.mark.parametrize("follower, constraints, options, reason", [
    # f = (x - 1) y is linear in y: f_yy = 0, not strictly convex.
    ((x - 1) * y, [y >= 0, y <= 1], {}, NoClosedFormError.NOT_STRICTLY_CONVEX),
    # f_yy = 192 y² - 16 < 0 at y = 0: two minimisers ±1/2.
    ((4 * y ** 2 - 1) ** 2, [], {}, NoClosedFormError.NOT_STRICTLY_CONVEX),
    # y² <= 1 is not affine in y.
    ((y - x) ** 2, [y ** 2 <= 1], {}, NoClosedFormError.NONLINEAR_CONSTRAINTS),
    # two bounds on one y: active sets {}, {lo}, {hi} = 3 > 2.
    ((y - x) ** 2, [y >= -1, y <= 1], {"max_active_sets": 2}, NoClosedFormError.TOO_MANY_ACTIVE_SETS),
    # f_yy = cosh(y) + 2 > 0, but sinh(y) + 2y = x has no closed-form solution.
    (sp.cosh(y) + y ** 2 - x * y, [], {}, NoClosedFormError.UNSOLVABLE),
])
def test_no_closed_form_says_why(follower, constraints, options, reason):
    p = wb.BilevelProblem([x], [y], x, follower, upper_constraints=[x >= 0, x <= 2], lower_constraints=constraints)
    with pytest.raises(NoClosedFormError) as err:
        p.reaction_map(**options)
    assert err.value.reason == reason and isinstance(err.value, wb.MethodError)
    with pytest.raises(wb.MethodError):
        p.solve(method="substitution", **options)


def test_parameters_and_maximised_follower():
    # Follower max -(y - a x)² s.t. y >= 0 with a = 2: y*(x) = max(0, 2x) (by hand).
    # Reduced objective on x >= 0: (x-1)² + 4x², derivative 10x - 2 = 0 => x = 1/5, y = 2/5;
    # on x < 0: (x-1)² > 1 > F(1/5) = 16/25 + 4/25 = 4/5. So x* = 1/5, F* = 4/5.
    a = sp.Symbol("a", real=True)
    p = wb.BilevelProblem([x], [y], (x - 1) ** 2 + y ** 2, wb.Maximize(-(y - a * x) ** 2),
                          upper_constraints=[x >= -2, x <= 2], lower_constraints=[y >= 0], parameters={a: 2.0})
    assert p.reaction_map()[y] == sp.Piecewise((0, x < 0), (2 * x, True))
    r = p.solve(method="substitution")
    assert r.info["exact_x"] == {x: sp.Rational(1, 5)} and r.info["exact_value"] == sp.Rational(4, 5)
    assert r.status == "optimal" and r.follower[y] == pytest.approx(0.4)
    # a = -1 gives y*(x) = max(0, -x); the user's problem is not changed by the override.
    assert p.reaction_map(parameters={a: -1})[y].subs(x, -3) == 3
    assert p.parameter_values == {a: 2.0}


def test_equality_constrained_follower():
    # Follower min y1² + y2² s.t. y1 + y2 = x, y1 >= 0. By hand: x >= 0 -> y = (x/2, x/2);
    # x < 0 -> y1 = 0 active, y2 = x. F = x² + y1 - y2 is x² (x >= 0) or x² - x (x < 0): min 0 at x = 0.
    y1, y2 = sp.symbols("y1 y2", real=True)
    p = wb.BilevelProblem([x], [y1, y2], x ** 2 + y1 - y2, y1 ** 2 + y2 ** 2,
                          upper_constraints=[x >= -2, x <= 2], lower_constraints=[sp.Eq(y1 + y2, x), y1 >= 0])
    rm = p.reaction_map()
    assert list(rm(np.array([1.0]))) == pytest.approx([0.5, 0.5])
    assert list(rm(np.array([-1.0]))) == pytest.approx([0.0, -1.0])
    r = p.solve(method="substitution")
    assert r.status == "optimal" and r.info["exact_x"] == {x: 0} and r.upper_value == 0.0


def test_unbounded_and_infeasible_reduced_problems():
    # y*(x) = x; F = -x² + x -> -oo as x -> oo on x >= 0: unbounded.
    u = wb.BilevelProblem([x], [y], -x ** 2 + y, (y - x) ** 2, upper_constraints=[x >= 0])
    assert u.solve(method="substitution").status == "unbounded"
    # y*(x) = x <= 1 but the leader demands y >= 2: infeasible.
    v = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2, upper_constraints=[x >= 0, x <= 1, y >= 2])
    r = v.solve(method="substitution")
    assert r.status == "infeasible"
    with pytest.raises(wb.SolverFailure):
        r.leader


def test_random_boxed_qp_followers_agree_with_ipopt():
    # Independent check: for random strictly convex QP followers with box constraints, the closed-form
    # y*(x) equals Ipopt's follower solution (FollowerSolver) at random leader points.
    from workbench.lower import lower
    from workbench.solve import FollowerSolver
    rng = np.random.default_rng(7)
    for _ in range(3):
        M = rng.normal(size=(2, 2))
        Q = M @ M.T + 0.5 * np.eye(2)
        B = rng.normal(size=(2, 2))
        ys = sp.Matrix(sp.symbols("y1 y2", real=True))
        xs = sp.Matrix(sp.symbols("x1 x2", real=True))
        Qs, Bs = sp.Matrix(np.round(Q, 3)).applyfunc(sp.nsimplify), sp.Matrix(np.round(B, 3)).applyfunc(sp.nsimplify)
        f = (ys.T * Qs * ys / 2)[0] - (ys.T * Bs * xs)[0]
        p = wb.BilevelProblem(list(xs), list(ys), xs[0] + ys[0], f,
                              lower_constraints=[ys[0] >= -1, ys[0] <= 1, ys[1] >= -1, ys[1] <= 1])
        rm = p.reaction_map()
        fs = FollowerSolver(lower(p))
        for xv in rng.uniform(-3, 3, size=(4, 2)):
            ref = fs.solve(xv, [], np.zeros(2))
            assert ref.success
            assert rm(xv) == pytest.approx(ref.y, abs=1e-6)


def test_reduction_and_exact_minimum_on_the_boxed_seed():
    # seed_boxed with the values of the test above: Phi(x) = (x-2)^2 + (clip(x, -1, 1) + 1)^2 on [-3, 3].
    # The reduced NLP evaluates it: Phi(0) = 4 + 1 = 5, Phi(2) = 0 + 4 = 4; the two leader bounds are
    # its rows (x + 3 >= 0, 3 - x >= 0 at x = 2: 5 and 1). point(2) = (2, y* = 1, lam(y <= 1) = 2(2 - 1) = 2).
    import casadi as ca
    from workbench.analysis.reduced_exact import exact_minimum
    from workbench.reformulate.substitution import Substitution

    p = seed_boxed()
    rm = p.reaction_map()
    red = Substitution(rm, {})
    nlp, inv = red.apply(p)
    f = ca.Function("f", [nlp.x], [nlp.f, nlp.g])
    assert float(f(0.0)[0]) == pytest.approx(5.0) and float(f(2.0)[0]) == pytest.approx(4.0)
    assert np.asarray(f(2.0)[1]).ravel().tolist() == pytest.approx([5.0, 1.0])
    assert nlp.lbg.tolist() == [0.0, 0.0] and nlp.ubg.tolist() == [np.inf, np.inf]
    pt = red.invert(np.array([2.0]), inv)
    assert (pt.x[0], pt.y[0]) == (2.0, 1.0) and pt.lam.tolist() == pytest.approx([0.0, 2.0])
    ex = exact_minimum(p, rm, {})
    assert ex.best[0] == 4 and ex.best[1] == 2 and not ex.below and not ex.unbounded

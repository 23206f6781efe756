"""Follower uniqueness and the pessimistic formulation (issue 5, section 3)."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.analysis import follower_uniqueness

x, y = sp.symbols("x y", real=True)


def two_minimisers():
    # Follower min (4y² - 1)²: Y*(x) = {-1/2, 1/2} for every x.
    return wb.BilevelProblem([x], [y], (x - y) ** 2, (4 * y ** 2 - 1) ** 2, upper_constraints=[x >= -1, x <= 1])


def stackelberg_price():
    # Follower min (x - 1) y on [0, 1]: y = 1 for x < 1, any y in [0, 1] at x = 1, y = 0 for x > 1.
    return wb.BilevelProblem([x], [y], -x * y, (x - 1) * y, upper_constraints=[x >= 0, x <= 2],
                             lower_constraints=[y >= 0, y <= 1])


def test_uniqueness_two_isolated_minimisers():
    # By hand: f = 0 exactly at y = ±1/2, f > 0 elsewhere; f'' = 192y² - 16 = 32 > 0 there (isolated).
    rep = follower_uniqueness(two_minimisers(), {x: 0.3})
    assert rep.singleton is False and rep.finite
    assert sorted(float(m[0]) for m in rep.minimizers) == pytest.approx([-0.5, 0.5], abs=1e-6)
    assert min(rep.curvature) == pytest.approx(32.0, rel=1e-4)


def test_uniqueness_lp_dual_degeneracy():
    p = stackelberg_price()
    # At x = 1 the cost vector is zero: the optimal face is all of [0, 1] (width 1).
    rep = follower_uniqueness(p, [1.0])
    assert rep.singleton is False and rep.lp_face_width[0] == pytest.approx(1.0)
    assert "dual degenerate" in rep.summary()
    # At x = 0.5 the cost is -1/2 < 0: unique vertex y = 1.
    rep = follower_uniqueness(p, [0.5])
    assert rep.singleton is True and rep.certain and rep.minimizers[0][0] == pytest.approx(1.0)


def test_uniqueness_zero_curvature_continuum():
    # Follower min (y1 + y2 - x)²: Y*(x) is the line y1 + y2 = x; the reduced Hessian [[2, 2], [2, 2]]
    # has the zero eigenvalue along (1, -1), and moving along it keeps f = 0.
    y1, y2 = sp.symbols("y1 y2", real=True)
    p = wb.BilevelProblem([x], [y1, y2], x, (y1 + y2 - x) ** 2)
    rep = follower_uniqueness(p, [1.0])
    assert rep.singleton is False and rep.flat_moves and min(rep.curvature) == pytest.approx(0.0, abs=1e-7)
    assert sum(rep.flat_moves[0]) == pytest.approx(1.0, abs=1e-6)


def test_uniqueness_strictly_convex_follower_is_certain():
    rep = follower_uniqueness(wb.BilevelProblem([x], [y], x, (y - x) ** 2 / 2), [0.3])
    assert rep.singleton is True and rep.certain and rep.minimizers[0][0] == pytest.approx(0.3)


def test_pessimistic_two_minimisers_seed():
    # By hand: phi_p(x) = max((x - 1/2)², (x + 1/2)²) = (|x| + 1/2)², minimal at x = 0: 1/4.
    #          phi_o(x) = min(...) = (|x| - 1/2)², minimal (0) at x = ±1/2. Gap 1/4.
    # Brute force on a grid of [-1, 1] confirms both.
    xs = np.linspace(-1, 1, 2001)
    assert np.max([(xs - 0.5) ** 2, (xs + 0.5) ** 2], axis=0).min() == pytest.approx(0.25)
    r = two_minimisers().solve(formulation="pessimistic")
    assert r.status == "optimal" and r.info["attained"] is True
    assert r.leader[x] == pytest.approx(0.0, abs=1e-7) and r.upper_value == pytest.approx(0.25, abs=1e-7)
    assert abs(r.follower[y]) == pytest.approx(0.5, abs=1e-7)
    assert r.info["optimistic_value"] == pytest.approx(0.0, abs=1e-9)
    assert abs(r.info["optimistic_x"][0]) == pytest.approx(0.5, abs=1e-6)
    assert r.info["pessimistic_gap"] == pytest.approx(0.25, abs=1e-7)
    assert r.info["singleton"] is False and "not a singleton" in r.message


def test_pessimistic_stackelberg_price_not_attained():
    # By hand: phi_p(x) = -x for x < 1 (y = 1), phi_p(1) = max_{y in [0,1]} -y = 0, phi_p(x) = 0 for x > 1.
    # inf phi_p = lim_{x -> 1-} -x = -1, never attained. Optimistic: phi_o(1) = -1 (y = 1), attained.
    r = stackelberg_price().solve(formulation="pessimistic", epsilon=1e-6)
    assert r.status == "not_attained" and r.info["attained"] is False
    assert r.info["infimum"] == pytest.approx(-1.0, abs=1e-6)
    assert r.info["limit_point"][0] == pytest.approx(1.0)
    assert r.info["value_at_limit"] == pytest.approx(0.0, abs=1e-9)
    assert "not attained" in r.message
    # The returned x is epsilon-optimal: below 1, with -x within 1e-6 of -1.
    assert r.leader[x] < 1.0 and r.upper_value <= -1.0 + 1e-6 + 1e-9
    assert r.info["epsilon"] <= 1e-6 and r.follower[y] == pytest.approx(1.0)
    assert r.info["optimistic_value"] == pytest.approx(-1.0, abs=1e-9)
    assert r.info["optimistic_x"][0] == pytest.approx(1.0, abs=1e-9)
    assert r.info["pessimistic_gap"] == pytest.approx(0.0, abs=1e-6)


def test_pessimistic_needs_a_bounded_leader():
    p = wb.BilevelProblem([x], [y], x * y, (4 * y ** 2 - 1) ** 2)
    with pytest.raises(wb.MethodError, match="bounded leader box"):
        p.solve(formulation="pessimistic")


def test_pessimistic_coupled_leader_constraint_must_hold_for_every_follower_optimum():
    # By hand: Y*(x) = {-1/2, 1/2}; x - y >= 0 for both replies needs x >= 1/2. On [1/2, 1]
    # phi_p(x) = (x + 1/2)² is increasing: x* = 1/2, value 1. Optimistically only y = -1/2 must satisfy it
    # (x >= -1/2) and phi_o(-1/2) = 0.
    p = wb.BilevelProblem([x], [y], (x - y) ** 2, (4 * y ** 2 - 1) ** 2,
                          upper_constraints=[x >= -1, x <= 1, x - y >= 0])
    r = p.solve(formulation="pessimistic")
    assert r.info["attained"] and r.leader[x] == pytest.approx(0.5, abs=1e-6)
    assert r.upper_value == pytest.approx(1.0, abs=1e-6)
    assert r.info["optimistic_value"] == pytest.approx(0.0, abs=1e-9)
    assert r.info["pessimistic_gap"] == pytest.approx(1.0, abs=1e-6)


def test_uniqueness_accepts_a_result():
    # The strictly convex seed (y*(x) = x) solved by substitution: Y*(0) = {0}, a singleton.
    p = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2 / 2, upper_constraints=[x >= 0, x <= 1])
    rep = follower_uniqueness(p, p.solve(method="substitution"))
    assert rep.singleton is True and rep.minimizers[0][0] == pytest.approx(0.0, abs=1e-9)


def test_pessimistic_inner_nlp_extremes_over_the_optimal_face():
    # The inner NLP of reformulate/pessimistic_inner.py, solved directly. Follower (x - 1) y on [0, 1]:
    # at x = 1 the cost vanishes, Y*(1) = [0, 1] (phi = 0), and F = -x y = -y there, so
    # max_{Y*} F = 0 at y = 0 (pessimistic) and min_{Y*} F = -1 at y = 1 (optimistic).
    # At x = 1/2, Y*_delta = [1 - 2 delta, 1]: both extremes are F = -1/2 (to 1e-9).
    from workbench.lower import lower
    from workbench.reformulate.pessimistic_inner import PessimisticInner
    from workbench.solve import IpoptSolver
    from workbench.solve.ipopt import TIGHT_OPTIONS

    prob = stackelberg_price()
    lp, p = lower(prob), prob.parameter_vector(None)
    reduction = PessimisticInner()
    nlp, inv = reduction.apply(lp)
    assert nlp.n_x == 1 and nlp.n_p == 3 and nlp.n_g == 3   # y; [x, sign, level]; y >= 0, 1 - y >= 0, level - f >= 0
    solver = IpoptSolver(nlp, TIGHT_OPTIONS)

    def extreme(x_val, sign, phi, delta=1e-9):
        r = solver.solve([0.5], reduction.parameters([x_val], p, sign, phi + delta))
        assert r.success
        y_val = reduction.invert(r.w, inv)
        return float(-x_val * y_val[0])

    assert extreme(1.0, -1.0, 0.0) == pytest.approx(0.0, abs=1e-7)
    assert extreme(1.0, 1.0, 0.0) == pytest.approx(-1.0, abs=1e-7)
    assert extreme(0.5, -1.0, -0.5) == pytest.approx(-0.5, abs=1e-7)
    assert extreme(0.5, 1.0, -0.5) == pytest.approx(-0.5, abs=1e-7)

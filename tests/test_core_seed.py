"""Seed examples of the core issue, each with its answer derived by hand next to it."""
import math

import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, y = sp.symbols("x y", real=True)


def seed_substitution():
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                             upper_constraints=[x >= 0, x <= 1], lower_objective=(y - x) ** 2 / 2)


def seed_kkt():
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 1) ** 2,
                             upper_constraints=[x >= -2, x <= 2], lower_objective=y ** 2 / 2 + x * y,
                             lower_constraints=[y - x - 1 >= 0, y >= 0])


def seed_spurious():
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                             upper_constraints=[x >= -1, x <= 1],
                             lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2)


def test_seed_substitution():
    # y*(x) = x (unconstrained strictly convex follower), so F = 2x on [0, 1]: minimum at x = 0.
    r = seed_substitution().solve()
    assert r.status == "optimal"
    assert r.leader[x] == pytest.approx(0, abs=1e-6)
    assert r.follower[y] == pytest.approx(0, abs=1e-6)
    assert r.upper_value == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("relaxation", ["scholtes", "fischer_burmeister", "kanzow_schwartz", "penalty"])
def test_seed_kkt_every_relaxation(relaxation):
    # By hand: y*(x) = -x for x <= -1/2 and x + 1 for x >= -1/2. On x >= -1/2, F = (x-1)^2 + x^2 is
    # minimal at x = 1/2 (F = 1/2); on x <= -1/2, F = (x-1)^2 + (x+1)^2 >= 2.5. So x = 1/2, y = 3/2.
    # Stationarity y + x = lam1 + lam2 with g2 = y > 0 inactive: lam1 = 2, lam2 = 0.
    r = seed_kkt().solve(relaxation=relaxation)
    assert r.status == "optimal", r.summary()
    assert r.leader[x] == pytest.approx(0.5, abs=1e-6)
    assert r.follower[y] == pytest.approx(1.5, abs=1e-6)
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert r.multipliers[0] == pytest.approx(2.0, abs=1e-5)
    assert r.multipliers[1] == pytest.approx(0.0, abs=1e-5)
    assert r.certificate.passed and r.certificate.value_gap < 1e-6
    assert r.log and {"eps", "objective", "complementarity", "ipopt_status"} <= set(r.log[0])


def test_seed_spurious_kkt_point_is_not_returned():
    # f(y) = y^6 - 7/8 y^4 + 1/8 y^2: f'(y) = y (6y^4 - 7/2 y^2 + 1/4) = 0 at y = 0, y^2 = 1/12, y^2 = 1/2.
    # f(0) = 0, f(+-1/sqrt 2) = 1/8 - 7/32 + 1/16 = -1/32 (global). The follower ignores x, so the
    # bilevel optimum is min x^2 + 1/2 at x = 0, F = 1/2; (0, 0) is a spurious KKT point with gap 1/32.
    r = seed_spurious().solve()
    assert r.status == "optimal"
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert abs(r.follower[y]) == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert r.lower_value == pytest.approx(-1 / 32, abs=1e-9)


def test_spurious_point_is_never_called_optimal_without_cuts():
    # One start from (0, 0), no cuts, no global search: the homotopy stays at the spurious KKT point y = 0.
    # The certificate must then show the follower gap f(0) - (-1/32) = 1/32 and refuse "optimal".
    p = seed_spurious()
    r = p.solve(n_starts=1, response_starts=False, max_cut_rounds=0, global_search=False)
    assert r.follower[y] == pytest.approx(0, abs=1e-6)
    assert r.status == "not_certified"
    assert r.certificate.value_gap == pytest.approx(1 / 32, abs=1e-8)
    assert abs(r.certificate.better_y[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-6)


def test_equality_and_bounds_follower():
    # Follower min (y1-2)^2 + y2^2 s.t. y1 + y2 = x, 0 <= y1 <= 1. With y2 = x - y1 the unconstrained
    # minimiser is y1 = (2 + x)/2, clipped to [0, 1]; for x >= 0, y1 = 1 and y2 = x - 1. Leader
    # F = (x-3)^2 + (y2-1)^2 = (x-3)^2 + (x-2)^2 on [0, 4] -> x = 2.5, y = (1, 1.5), F = 0.5.
    # Multipliers (L = f - lam_lo y1 - lam_cap (1 - y1) - mu (y1 + y2 - x)): d/dy2: 2 y2 - mu = 0 -> mu = 3;
    # d/dy1: 2(y1 - 2) - lam_lo + lam_cap - mu = 0 with lam_lo = 0 -> lam_cap = 5.
    y1, y2 = sp.symbols("y1 y2", real=True)
    p = wb.BilevelProblem(leader=[x], follower=[y1, y2], upper_objective=(x - 3) ** 2 + (y2 - 1) ** 2,
                          upper_constraints=[x >= 0, x <= 4], lower_objective=(y1 - 2) ** 2 + y2 ** 2,
                          lower_constraints={"budget": sp.Eq(y1 + y2, x), "floor": y1 >= 0, "cap": y1 <= 1})
    r = p.solve()
    assert r.status == "optimal"
    assert (r.leader[x], r.follower[y1], r.follower[y2]) == pytest.approx((2.5, 1.0, 1.5), abs=1e-6)
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert r.multipliers["budget"] == pytest.approx(3.0, abs=1e-5)
    assert r.multipliers["cap"] == pytest.approx(5.0, abs=1e-5)
    assert r.multipliers["floor"] == pytest.approx(0.0, abs=1e-6)


def test_parameters_change_without_rebuilding():
    # Follower min (y - b x)^2 / 2 -> y = b x; leader (x - a)^2 + y^2 = (x - a)^2 + b^2 x^2 is minimal
    # at x = a / (1 + b^2). a = 1, b = 1: x = 1/2, y = 1/2, F = 1/2. b = 2: x = 1/5, y = 2/5, F = 0.8.
    a, b = sp.symbols("a b", real=True)
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - a) ** 2 + y ** 2,
                          lower_objective=(y - b * x) ** 2 / 2, parameters={a: 1.0, b: 1.0})
    from workbench.lower import lower
    lp = lower(p)
    r1 = p.solve()
    assert (r1.leader[x], r1.follower[y], r1.upper_value) == pytest.approx((0.5, 0.5, 0.5), abs=1e-6)
    r2 = p.solve(parameters={b: 2.0})
    assert (r2.leader[x], r2.follower[y], r2.upper_value) == pytest.approx((0.2, 0.4, 0.8), abs=1e-6)
    assert lower(p) is lp  # the CasADi model was built once
    assert p.parameter_values == {a: 1.0, b: 1.0}  # the declaration is unchanged


def test_maximizing_follower():
    # The follower maximises profit x y - y^2 over y >= 0: y*(x) = x/2 for x >= 0 (concave, so the
    # stationary point is the maximum). Leader (x-3)^2 + (y-2)^2 = (x-3)^2 + (x/2-2)^2: derivative
    # d/dx = 2(x-3) + (x/2-2) = 2.5x - 8 = 0 -> x = 3.2, y = 1.6, F = 0.04 + 0.16 = 0.2.
    # The reported lower value is the profit itself: 3.2 * 1.6 - 1.6^2 = 2.56.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 3) ** 2 + (y - 2) ** 2,
                          upper_constraints=[x >= 0, x <= 5], lower_objective=wb.Maximize(x * y - y ** 2),
                          lower_constraints=[y >= 0])
    r = p.solve()
    assert r.status == "optimal"
    assert (r.leader[x], r.follower[y]) == pytest.approx((3.2, 1.6), abs=1e-6)
    assert r.upper_value == pytest.approx(0.2, abs=1e-6)
    assert r.lower_value == pytest.approx(2.56, abs=1e-6)


def test_infeasible_follower_is_reported_not_returned():
    # y >= x + 1 and y <= x cannot hold together for any x: no bilevel-feasible point exists.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                          lower_objective=y ** 2, lower_constraints=[y >= x + 1, y <= x])
    r = p.solve(n_starts=2)
    assert r.status in {"infeasible", "solver_failed"}
    assert r.ipopt_status and r.ipopt_status != "Solve_Succeeded"
    assert r.log and all(row["ipopt_status"] for row in r.log)
    with pytest.raises(wb.SolverFailure) as err:
        r.leader
    assert r.ipopt_status in str(err.value)


def test_unbounded_follower_is_reported_not_returned():
    # f = -y has no minimiser for any x: no bilevel-feasible point exists.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=-y)
    r = p.solve(n_starts=2)
    assert r.status == "unbounded"
    assert r.ipopt_status and r.ipopt_status != "Solve_Succeeded" and "unbounded" in r.message
    with pytest.raises(wb.SolverFailure, match="unbounded"):
        r.follower

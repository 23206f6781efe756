"""method="global" (SCIP): proven global optima, each checked against an answer derived by hand."""
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.errors import IntegerVariableError, MethodError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_core_seed import seed_kkt, seed_spurious  # noqa: E402

x, y = sp.symbols("x y", real=True)


def integer_leader(integer=True):
    # Follower: min_y y s.t. y >= 0, y >= 2x - 3, y <= 10, so y*(x) = max(0, 2x - 3) on 0 <= x <= 3.
    # Leader: min -x + 2y over 0 <= x <= 3: F(x) = -x for x <= 3/2 and 3x - 6 beyond.
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=-x + 2 * y,
                             upper_constraints=[x >= 0, x <= 3], lower_objective=y,
                             lower_constraints=[y >= 0, y - 2 * x + 3 >= 0, y <= 10], integer=[x] if integer else None)


@pytest.mark.parametrize("method", ["milp", "global"])
def test_integer_leader_enumerated_by_hand(method):
    # By hand, x in {0, 1, 2, 3}: F = 0, -1, 0, 3 (y = 0, 0, 1, 3): the optimum is x = 1, y = 0, F = -1.
    # (The continuous optimum x = 3/2, F = -3/2, is not integer.)
    r = integer_leader().solve(method=method)
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.leader[x] == 1.0
    assert r.follower[y] == pytest.approx(0.0, abs=1e-7)
    assert r.upper_value == pytest.approx(-1.0, abs=1e-7)
    assert r.bound == pytest.approx(-1.0, abs=1e-6) and r.gap <= 1e-6


def test_without_integrality_the_continuous_optimum():
    # Same problem without integer=[x]: x = 3/2, y = 0, F = -3/2 (the kink of F(x), by hand above).
    r = integer_leader(integer=False).solve(method="global")
    assert r.status == "optimal" and r.optimality == "global"
    assert r.leader[x] == pytest.approx(1.5, abs=1e-6)
    assert r.upper_value == pytest.approx(-1.5, abs=1e-6)


def test_integer_declarations_are_checked_and_refused_where_not_honoured():
    with pytest.raises(IntegerVariableError, match="y"):
        wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x, lower_objective=y, integer=[y])
    with pytest.raises(MethodError, match=r"\['x'\].*integer"):
        integer_leader().solve(method="kkt")


def double_well():
    # Follower min_y (y - x)^2: y*(x) = x (a convex QP). F = (y^2 - 1)^2 + 3/10 x on [-2, 2] reduces to
    # (x^2 - 1)^2 + 3/10 x: two wells, near x = +1 (local) and x = -1 (global, the linear term is negative).
    # Declared start x = y = 1.2 sits in the local well.
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(y ** 2 - 1) ** 2 + sp.Rational(3, 10) * x,
                             upper_constraints=[x >= -2, x <= 2], lower_objective=(y - x) ** 2,
                             start={x: 1.2, y: 1.2})


def test_convex_qp_follower_local_kkt_answer_is_beaten():
    # Stationary points of F(x) = (x^2 - 1)^2 + 0.3 x: 4x^3 - 4x + 0.3 = 0 (np.roots, an independent method).
    roots = np.sort(np.real(np.roots([4, 0, -4, 0.3])))
    F = lambda t: (t ** 2 - 1) ** 2 + 0.3 * t  # noqa: E731
    x_glob, x_loc = roots[0], roots[2]         # the outer roots are the two minima
    assert F(x_glob) < F(x_loc) - 0.5          # -0.3..., +0.29...: the wells differ by 0.6
    local = double_well().solve(method="kkt", n_starts=1, global_search=False)
    assert local.leader[x] == pytest.approx(x_loc, abs=1e-5)   # the local well, from the declared start
    r = double_well().solve(method="global")
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.leader[x] == pytest.approx(x_glob, abs=1e-5)
    assert r.upper_value == pytest.approx(F(x_glob), abs=1e-6)
    assert r.upper_value < local.upper_value - 0.5
    assert r.bound <= r.upper_value + 1e-9 and r.gap <= 1e-6 * (1 + abs(r.upper_value))
    assert r.info["assumed_box"] == []                     # bounds derived from x's bounds and y = x
    assert r.solver_stats.solver_name == "scip"


def test_seed_kkt_example_globally():
    # test_core_seed's hand derivation: x = 1/2, y = 3/2, F = 1/2 (global: F >= 2.5 on the other branch).
    r = seed_kkt().solve(method="global")
    assert r.status == "optimal" and r.optimality == "global"
    assert (r.leader[x], r.follower[y], r.upper_value) == pytest.approx((0.5, 1.5, 0.5), abs=1e-6)
    assert r.info["numpy_check"]["F"] == pytest.approx(0.5, abs=1e-6)


def test_spurious_kkt_example_proven_by_the_bounding_scheme():
    # test_core_seed: f(y) = y^6 - 7/8 y^4 + 1/8 y^2 has its global minima at y = +-1/sqrt 2 (f = -1/32) and a
    # spurious KKT point y = 0; the follower ignores x, so the optimum is x = 0, y = +-1/sqrt 2, F = 1/2.
    r = seed_spurious().solve(method="global", time_limit=30)
    assert r.info["kkt_relaxation"]["F"] == pytest.approx(0.0, abs=1e-7)   # the KKT optimum is the spurious one
    assert "bounding scheme" in r.info["route"]
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.leader[x] == pytest.approx(0.0, abs=1e-6)
    assert abs(r.follower[y]) == pytest.approx(2 ** -0.5, abs=1e-6)
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert 0.5 - 0.5e-3 * 1.5 - 1e-9 <= r.bound <= 0.5 + 1e-9   # the cutoff: UB - gap_tol (1 + |F|) / 2
    assert [b["variable"] for b in r.info["assumed_box"]] == ["y"]   # y has no bound: the box is reported


def test_unbounded_problem_is_not_optimal_on_an_assumed_box():
    # y*(x) = x, so F = -x y = -x^2 over x >= 1 is unbounded below (by hand).
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=-x * y, upper_constraints=[x >= 1],
                          lower_objective=(y - x) ** 2)
    r = p.solve(method="global")
    assert r.status == "unbounded", r.message
    ev = r.info["unbounded_evidence"]
    assert ev[1]["F"] < ev[0]["F"] < -1e5   # F keeps falling as the assumed box grows
    assert r.optimality is None and r.bound is None


def test_pessimistic_global_is_refused_with_the_reason():
    # Not built: the route must refuse with a typed error, not answer with the pessimistic scan.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=0 * y, lower_constraints=[y >= 0, y <= 1])
    with pytest.raises(MethodError, match="pessimistic.*not built"):
        p.solve(method="global", formulation="pessimistic")


def test_bounding_scheme_alone_on_an_affine_follower():
    # algorithm="bounding" skips the KKT stage: the scheme alone must reach test_core_seed's hand-derived
    # optimum x = 1/2, y = 3/2, F = 1/2 (closed to its gap 1e-3 (1 + |F|)).
    r = seed_kkt().solve(method="global", algorithm="bounding", time_limit=30)
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert "forced" in r.info["route"] and "kkt_program" not in r.info
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert (r.leader[x], r.follower[y]) == pytest.approx((0.5, 1.5), abs=1e-5)
    assert 0.5 - 1e-3 * 1.5 - 1e-9 <= r.bound <= 0.5 + 1e-9


def test_kkt_only_leaves_the_spurious_example_unproven_and_bad_algorithms_are_refused():
    # algorithm="kkt": the KKT relaxation's optimum y = 0 is spurious (test_core_seed), so without the scheme
    # no global optimum may be claimed; the relaxation's value 0 stays a valid lower bound (the optimum is 1/2).
    r = seed_spurious().solve(method="global", algorithm="kkt", time_limit=30)
    assert r.optimality != "global" and "bounding scheme" not in r.info.get("route", "")
    assert r.known_bound is None or r.known_bound <= 0.5 + 1e-9
    with pytest.raises(MethodError, match="algorithm='mlb' is not one of"):
        seed_kkt().solve(method="global", algorithm="mlb")


def test_bounding_scheme_where_the_follower_is_indifferent_only_at_one_leader_point():
    # MitsosBarton2006Ex38 by hand: f = y (x + e^x) on y in [-1, 1], so the follower's reply is y = -sign(x + e^x)
    # except at the root x* of x + e^x = 0 (x* = -W(1) = -0.5671432904), where every y is optimal; the leader's
    # y^2 with |y| <= 0.1 forces that point: F = 0 at x = x*, y = 0. Met only to the follower's tolerance, from the
    # relaxation's own y (the reply at the floating-point x* is y = +-1, infeasible for the leader).
    from workbench import bolib
    r = bolib.load("MitsosBarton2006Ex38").solve(method="global", algorithm="bounding", time_limit=30)
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.x[0] == pytest.approx(-0.5671432904097838, abs=1e-6)
    assert abs(r.y[0]) <= 1e-6 and r.upper_value == pytest.approx(0.0, abs=1e-9)
    assert r.bound <= r.upper_value + 1e-12

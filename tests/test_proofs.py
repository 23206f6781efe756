"""Every "optimal" is a proof: hand-derived answers for the cases that used to be claimed wrongly."""
import warnings

import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, y = sp.symbols("x y", real=True)


from test_core_seed import seed_kkt, seed_spurious  # noqa: E402 - the seed examples, declared once


def test_seed_kkt_proof_is_convex_with_checked_residuals():
    # f = y²/2 + xy is convex in y, g affine: at x = 1/2, y = 3/2, lam = (2, 0) (see test_core_seed)
    # stationarity y + x - lam1 - lam2 = 0 and complementarity hold exactly.
    r = seed_kkt().solve()
    assert r.status == "optimal" and r.certificate.proof == "convex"
    c = r.certificate
    assert c.stationarity <= 1e-7 and c.complementarity <= 1e-7 and c.sign == 0.0
    assert r.optimality == "local"
    assert r.solver_stats.solver_name == "ipopt"


def test_seed_spurious_proof_is_global():
    # f(y) = y⁶ - 7/8 y⁴ + 1/8 y² has global minimisers y = ±1/√2 (f = -1/32) for every x; the
    # bilevel optimum is x = 0, F = 1/2. Convexity fails, so only SCIP's bound can prove it.
    r = seed_spurious().solve()
    assert r.status == "optimal" and r.certificate.proof == "global"
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert r.certificate.phi_lower == pytest.approx(-1 / 32, abs=1e-8)


def test_narrow_basin_is_found_or_not_claimed():
    # f = ((y-x)/10)² - 2 exp(-((y-6.123)/0.001)²) on -10 <= y <= 10: the well (depth 2) beats the
    # quadratic's spread (at most ((10+2)/10)² = 1.44 on the box, 0.66 near the well), so y*(x) ≈ 6.123 for
    # every x in [0, 2]. F = (x-1)² + (6.123-x)² falls on [0, 2] (derivative 4x - 14.246 < 0): x = 2,
    # F = 1 + 4.123² = 17.999.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - x) ** 2,
                          upper_constraints=[x >= 0, x <= 2],
                          lower_objective=((y - x) / 10) ** 2 - 2 * sp.exp(-((y - sp.Float("6.123")) / sp.Float("0.001")) ** 2),
                          lower_constraints=[y >= -10, y <= 10])
    r = p.solve(time_limit=60)
    if r.status == "optimal":
        assert r.leader[x] == pytest.approx(2.0, abs=1e-6)
        assert r.follower[y] == pytest.approx(6.123, abs=1e-3)
        assert r.upper_value == pytest.approx(17.999, abs=2e-3)
    else:
        assert r.status != "optimal"
    # The old answer (1, 1) must be refuted by the certificate.
    c = p.certify({x: 1.0, y: 1.0})
    assert not c.passed and c.better_y is not None and abs(c.better_y[0] - 6.123) < 1e-3


def test_zlobec2001b_infimum_is_not_attained():
    # F = x + y; the follower maximises y on [0, 1] subject to x y = 0. For x > 0: y = 0, F = x -> 0;
    # at x = 0: y = 1, F = 1. The infimum 0 is approached but not attained.
    p = wb.bolib.load("Zlobec2001b")
    r = p.solve()
    assert r.status == "not_attained"
    assert r.info["infimum"] == pytest.approx(0.0, abs=1e-6)
    values = [F for _, F in r.info["approaching"]]
    assert values == sorted(values, reverse=True) and values[-1] < 1e-5
    assert r.leader[p.leader[0]] >= 0.0                     # every reported point lies inside x >= 0


def test_design_centring_p2_is_unbounded():
    # F = -pi x3 x4 with only x3, x4 <= 1: x3 = x4 = -t is feasible for every t > 0 (the follower's
    # ellipses just scale), so F = -pi t² is unbounded below.
    p = wb.bolib.load("DesignCentringP2")
    r = p.solve(time_limit=60)
    assert r.status == "unbounded", r.summary()
    values = [F for _, F in r.info["unbounded_evidence"]]
    assert all(b < a for a, b in zip(values, values[1:]))


def test_mitsos_barton_ex313_never_below_global_optimum():
    # F = x - y, f = -x³y + x y²/2 on y in [-1, 1], x in [-1, 1]. For x > 0, f is convex in y with
    # minimiser y = x²: F = x - x² >= 0. For x < 0, f is concave in y: the endpoint values differ by
    # f(-1) - f(1) = 2x³ < 0, so y = -1 and F = x + 1 >= 0. At x = 0, f ≡ 0 and the optimistic reply
    # y = 1 gives the global optimum F = -1. Near x = 0⁻ the reply y = 1 is worse by only 2|x|³: a
    # tolerance there would buy F = x - 1 < -1, which must never be returned.
    p = wb.bolib.load("MitsosBarton2006Ex313")
    r = p.solve()
    assert r.status == "optimal" and r.upper_value == pytest.approx(-1.0, abs=1e-6)
    assert r.upper_value >= -1 - 1e-9 and r.x[0] == 0.0
    x1, y1 = p.leader[0], p.follower[0]
    old = p.certify({x1: -0.0037, y1: 1.0})       # the old false claim: F = -1.0037
    assert not old.passed and old.better_y[0] == pytest.approx(-1.0, abs=1e-6)
    best = p.certify({x1: 0.0, y1: 1.0})          # the global optimum: f ≡ 0 at x = 0
    assert best.passed


def test_certify_refuses_points_feasible_only_relative_to_a_large_offset():
    # Both objectives carry a 1e7 offset. The first point violates the follower's y <= 1 by 4.5, the
    # second the leader's x <= 1 by 3: absolute tolerances refuse both, whatever the offset.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=1e7 + x + y,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=1e7 + (y - x) ** 2,
                          lower_constraints=[y <= 1])
    bad_follower = p.certify({x: 0.5, y: 5.5})
    assert not bad_follower.passed and bad_follower.lower_infeasibility == pytest.approx(4.5)
    bad_leader = p.certify({x: 4.0, y: 1.0})
    assert not bad_leader.passed and bad_leader.leader_bound_violation == pytest.approx(3.0)
    good = p.certify({x: 0.5, y: 0.5})                     # y*(x) = x on [0, 1]: the follower's optimum
    assert good.passed and good.proof == "convex"


def test_certify_a_users_point_with_multipliers():
    # Seed KKT example at its optimum x = 1/2, y = 3/2 with lam = (2, 0); wrong multipliers are
    # replaced by the follower's own (one re-solve) and the residuals reported.
    p = seed_kkt()
    c = p.certify({x: 0.5, y: 1.5}, multipliers={0: 2.0, 1: 0.0})
    assert c.passed and c.proof == "convex" and c.stationarity <= 1e-9
    c2 = p.certify({x: 0.5, y: 1.5}, multipliers={0: 5.0, 1: 0.0})
    assert c2.passed and c2.lam[0] == pytest.approx(2.0, abs=1e-7)
    with pytest.raises(wb.ValueInputError, match="no follower constraint named"):
        p.certify({x: 0.5, y: 1.5}, multipliers={"cap": 1.0})


def test_seed_substitution_optimum_inside_the_bound():
    # y*(x) = x, F = 2x on [0, 1]: x = 0 exactly, never a point outside x >= 0.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=(y - x) ** 2 / 2)
    for method in ("kkt", "substitution"):
        r = p.solve(method=method)
        assert r.status == "optimal"
        assert 0.0 <= r.leader[x] <= 1e-9


def test_feasibility_follower():
    # f ≡ 0: every y with 0 <= y <= x is optimal; the optimistic leader picks y = x, then F = (x-1)² +
    # (x-2)² is minimal at x = 1.5 (inside x <= 3): x = y = 1.5, F = 0.5.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 2) ** 2,
                          upper_constraints=[x <= 3], lower_objective=0 * y, lower_constraints=[y >= 0, y <= x])
    r = p.solve()
    assert r.status == "optimal"
    assert (r.leader[x], r.follower[y]) == pytest.approx((1.5, 1.5), abs=1e-6)
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)


def test_same_status_word_through_kkt_and_auto():
    # f = -y on an unbounded y has no minimiser at any x (linear problem: auto tries the MILP first).
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=-y, lower_constraints=[y >= 0])
    a, b = p.solve(method="kkt", n_starts=2), p.solve(method="auto")
    assert a.status == b.status == "unbounded"
    assert a.status in wb.status.INF_OR_UNB


def test_leader_only_follower_constraint_becomes_a_leader_requirement():
    # "cap: x <= 1/2" has no follower variable: it restricts x only, so it is the leader's constraint
    # and has no multiplier. y*(x) = x (f = (y-x)²), F = (x-2)² + x² falls on x <= 1/2: x = 1/2 at the
    # cap, y = 1/2, F = 9/4 + 1/4 = 5/2.
    with pytest.warns(UserWarning, match="cap"):
        p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 2) ** 2 + y ** 2,
                              lower_objective=(y - x) ** 2, lower_constraints=[wb.named("cap", x <= sp.Rational(1, 2))])
    assert [c.name for c in p.G] == ["cap"] and p.g == []
    r = p.solve()
    assert "cap" not in r.multipliers
    assert r.status == "optimal" and r.leader[x] == pytest.approx(0.5, abs=1e-7)
    assert r.upper_value == pytest.approx(2.5, abs=1e-7)


def test_declaration_errors_are_typed():
    p = seed_kkt()
    z = sp.Symbol("z")
    with pytest.raises(wb.ValueInputError, match="z"):
        p.solve(start={z: 1.0})
    with pytest.raises(wb.ValueInputError, match="time_limit"):
        p.solve(time_limit=0)
    with pytest.raises(wb.ValueInputError, match="time_limit"):
        p.solve(time_limit=-1.0)
    with pytest.raises(wb.ModelError, match="complex"):
        wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + sp.I * y, lower_objective=y ** 2)
    with pytest.raises(wb.ConstraintError, match="complex"):
        wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x, lower_objective=y ** 2,
                          lower_constraints=[sp.Eq(y + sp.I * x, 1)])
    with pytest.raises(wb.ConstraintError, match="set"):
        wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x, lower_objective=y ** 2,
                          lower_constraints={y >= 0, y <= 1})


def test_status_groups():
    S = wb.Status
    assert S.OPTIMAL == "optimal" and str(S.NOT_ATTAINED) == "not_attained"
    assert wb.status.SOLUTION_PRESENT == {S.OPTIMAL, S.NOT_CERTIFIED, S.NOT_ATTAINED}
    assert wb.status.FAILED == {S.INFEASIBLE, S.UNBOUNDED, S.TIME_LIMIT, S.SOLVER_FAILED}

"""Global follower proofs with SCIP (real solves), each answer derived by hand next to it."""
import math

import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.certify.global_follower import global_follower, prove_follower_optimal
from workbench.errors import MethodError, UnsupportedExpressionError
from workbench.lower import lower
from workbench.lower.casadi2scip import scip_follower, scip_tape

pytest.importorskip("pyscipopt")

x, y, z = sp.symbols("x y z", real=True)


def narrow_basin():
    # f = ((y - x)/10)^2 - 2 exp(-((y - 6.123)/0.001)^2) on -10 <= y <= 10: a basin 0.001 wide.
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                             lower_objective=((y - x) / 10) ** 2
                             - 2 * sp.exp(-((y - sp.Float("6.123")) / sp.Float("0.001")) ** 2),
                             lower_constraints=[y >= -10, y <= 10])


def test_narrow_basin_refutes_the_local_point():
    # At x = 1, y = 1 is a local minimiser with f = 0 - 2 exp(-5123^2) = 0 (to double precision).
    # Near y = 6.123 the Gaussian term is -2 while ((6.123 - 1)/10)^2 = 0.26245129, so the
    # global value is ~ 0.26245 - 2 = -1.73755 and the proof at y = 1 fails by gap ~ 1.7375.
    lp = lower(narrow_basin())
    proof = prove_follower_optimal(lp, [1.0], [1.0])
    assert not proof.passed
    assert proof.gap == pytest.approx(2 - 0.26245129, abs=1e-4)
    assert proof.better_y is not None and proof.better_y[0] == pytest.approx(6.123, abs=1e-4)
    r = proof.result
    assert r.status == "optimal" and r.assumed == [] and r.box[0][0] == -10 and r.box[1][0] == 10
    assert r.phi_lower == pytest.approx(((6.123 - 1) / 10) ** 2 - 2, abs=1e-4)
    assert r.violation <= 1e-9


def test_convex_qp_proof_passes_at_closed_form_reply():
    # min (y - x)^2 + (z - 2)^2 s.t. y + z <= 1 at x = 1: the unconstrained point (1, 2) violates
    # y + z <= 1, so y* is its projection (1, 2) - ((1 + 2 - 1)/2)(1, 1) = (0, 1), f* = 1 + 1 = 2.
    p = wb.BilevelProblem(leader=[x], follower=[y, z], upper_objective=x + y,
                          lower_objective=(y - x) ** 2 + (z - 2) ** 2, lower_constraints=[y + z <= 1])
    lp = lower(p)
    proof = prove_follower_optimal(lp, [1.0], [0.0, 1.0])
    assert proof.passed, proof.reason
    assert proof.value == pytest.approx(2.0, abs=1e-12)
    assert abs(proof.gap) <= proof.tol
    # the polyhedron y + z <= 1 bounds neither variable: both boxes are assumed, and said so
    assert proof.result.assumed == [0, 1] and proof.conditional
    assert proof.cross_check is not None  # a near tie gets a second, differently seeded solve
    # a non-optimal reply (0.5, 0.5): f = 0.25 + 2.25 = 2.5, refuted with gap 0.5
    bad = prove_follower_optimal(lp, [1.0], [0.5, 0.5])
    assert not bad.passed and bad.gap == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(bad.better_y, [0.0, 1.0], atol=1e-5)


def test_box_derived_from_a_linear_constraint():
    # y >= 0 and x + y <= 3: at x = 1 the second row is 2 - y >= 0, so the box is [0, 2]
    # (nothing assumed). f = (y - 5)^2 is minimised on [0, 2] at y = 2 with f = 9.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                          lower_objective=(y - 5) ** 2, lower_constraints=[y >= 0, x + y <= 3])
    r = global_follower(lower(p), [1.0])
    assert r.assumed == []
    np.testing.assert_allclose(r.box[0], [0.0])
    np.testing.assert_allclose(r.box[1], [2.0])
    assert r.status == "optimal" and r.y[0] == pytest.approx(2.0, abs=1e-7)
    assert r.phi_lower == pytest.approx(9.0, abs=1e-7)


def test_box_by_lp_bound_propagation():
    # y, z >= 0 and y + 2 z <= 4 - x: at x = 0, y <= 4 and z <= 2 follow only from the LP
    # (no single row bounds them). f = -y z (nonconvex bilinear): on y + 2z = 4, -y z = -(4 - 2z) z
    # is minimal at z = 1, y = 2 with f = -2.
    p = wb.BilevelProblem(leader=[x], follower=[y, z], upper_objective=x,
                          lower_objective=-y * z, lower_constraints=[y >= 0, z >= 0, y + 2 * z <= 4 - x])
    r = global_follower(lower(p), [0.0])
    assert r.assumed == [] and "LP bound propagation" in r.derived_from
    np.testing.assert_allclose(r.box[1], [4.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(r.y, [2.0, 1.0], atol=1e-5)
    assert r.phi_lower == pytest.approx(-2.0, abs=1e-7)


def test_unbounded_variable_is_assumed_and_reported():
    # min (y - x)^2 with no constraints: no bound can be derived, so |y - y_ref| <= 1e3 (1 + |y_ref|)
    # is assumed (y_ref = 1: K = 2000, box [-1999, 2001]); the minimiser y = x = 1 is interior.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, lower_objective=(y - x) ** 2)
    lp = lower(p)
    r = global_follower(lp, [1.0], y_ref=[1.0])
    assert r.assumed == [0] and "assumed" in r.derived_from
    assert r.box[0][0] == pytest.approx(-1999.0) and r.box[1][0] == pytest.approx(2001.0)
    assert not r.on_assumed_bound and r.y[0] == pytest.approx(1.0, abs=1e-5)
    # min -y s.t. y >= 0 is unbounded: SCIP's minimiser sits on the assumed upper bound -> no proof
    q = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, lower_objective=-y,
                          lower_constraints=[y >= 0])
    proof = prove_follower_optimal(lower(q), [1.0], [1.0])
    assert proof.result.on_assumed_bound and not proof.passed
    assert "assumed bound" in proof.reason


def test_spurious_kkt_seed_two_global_minimisers():
    # f = y^6 - 7/8 y^4 + 1/8 y^2: f' = y (6 y^4 - 7/2 y^2 + 1/4) = 0 gives y = 0 or u = y^2 with
    # 6u^2 - 3.5u + 0.25 = 0, u = (3.5 +- 2.5)/12 = 1/2 or 1/12. f(+-1/sqrt 2) = 1/8 - 7/32 + 1/16
    # = -1/32 (the two global minima); y = 0 is a local minimum (f = 0) and y = 1/sqrt 12 a local
    # maximum (f = 1/1728 - 7/1152 + 1/96 = 17/3456). All are KKT points of the unconstrained follower.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                          upper_constraints=[x >= -1, x <= 1],
                          lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2)
    lp = lower(p)
    for y_star in (1 / math.sqrt(2), -1 / math.sqrt(2)):
        proof = prove_follower_optimal(lp, [0.3], [y_star])
        assert proof.passed, proof.reason
        assert proof.phi_lower == pytest.approx(-1 / 32, abs=1e-9)
    at_zero = prove_follower_optimal(lp, [0.3], [0.0])
    assert not at_zero.passed and at_zero.gap == pytest.approx(1 / 32, abs=1e-8)
    assert abs(at_zero.better_y[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-5)
    at_max = prove_follower_optimal(lp, [0.3], [1 / math.sqrt(12)])
    assert not at_max.passed and at_max.gap == pytest.approx(17 / 3456 + 1 / 32, abs=1e-8)


def test_unsupported_operation_raises_typed_error_naming_it():
    # max(y, x) has no SCIP expression: the typed error names the operation and the constraint.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, lower_objective=y ** 2,
                          lower_constraints=[wb.named("cap", sp.Max(y, x) <= 3), y >= -5])
    lp = lower(p)
    import pyscipopt
    m = pyscipopt.Model()
    v = m.addVar(lb=None)
    with pytest.raises(UnsupportedExpressionError, match=r"fmax.*|'cap'") as info:
        scip_follower(lp, [1.0], [], [v])
    assert "fmax" in str(info.value) and "'cap'" in str(info.value) and "kkt" in str(info.value)
    assert isinstance(info.value, MethodError)
    r = global_follower(lp, [1.0])
    assert r.status == "unsupported" and "fmax" in r.message
    assert not prove_follower_optimal(lp, [1.0], [0.0]).passed
    # a non-smooth operation on x alone is constant-folded and is fine
    q = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                          lower_objective=(y - sp.Max(x, 2)) ** 2, lower_constraints=[y >= -5, y <= 5])
    assert prove_follower_optimal(lower(q), [1.0], [2.0]).passed  # y* = max(1, 2) = 2


def test_tape_replays_numbers_like_casadi():
    # the tape evaluated with numbers agrees with CasADi's own evaluation
    p = narrow_basin()
    lp = lower(p)
    tape = scip_tape(lp)
    assert scip_tape(lp) is tape  # recorded once per problem
    for yy in (1.0, 6.123, -3.0):
        vals = tape.replay([1.3], [yy], [], ("f", "g", "F"))
        assert vals["f"][0] == pytest.approx(float(lp.evaluate("lower_objective", 1.3, yy, [])[0]), rel=1e-12)
        np.testing.assert_allclose(vals["g"], lp.evaluate("lower_ineq", 1.3, yy, []), rtol=1e-12)
        assert vals["F"][0] == pytest.approx(1.3 + yy)


def test_verifier_refuses_a_point_only_multistart_optimal_in_a_narrow_basin():
    # y = 1 at x = 1 is what a multistart local search accepts (no start lands in the 0.001-wide
    # basin and a 4001-point grid on [-10, 10] with spacing 0.005 sees at best
    # 0.2627 - 2 exp(-4) > 0 there). The global proof refuses it: gap ~ 1.7375, better y ~ 6.123.
    from workbench.bench.verify import verify_point
    p = narrow_basin()
    v = verify_point(p, [1.0], [1.0])
    assert v.feasible and not v.follower_optimal
    assert v.gap == pytest.approx(2 - 0.26245129, abs=1e-4)
    assert v.better_y[0] == pytest.approx(6.123, abs=1e-4) and "refuted" in v.reason
    # at the global reply the verifier (benchmark tolerance 1e-5 relative) accepts
    ok = verify_point(p, [1.0], [6.123 - 0.0000000256])
    assert ok.feasible and ok.follower_optimal, ok.reason


def test_inputs_are_not_mutated():
    p = narrow_basin()
    lp = lower(p)
    xs, ys = np.array([1.0]), np.array([1.0])
    prove_follower_optimal(lp, xs, ys)
    assert xs.tolist() == [1.0] and ys.tolist() == [1.0]


def test_follower_pinned_to_one_point_is_not_widened():
    # y >= x/3 and y <= x/3 pin y = x/3 (the feasible set is one point); f = (y - 1)^2. The
    # constraints go to SCIP as written (no slack); bounds that cross by rounding keep the point.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, lower_objective=(y - 1) ** 2,
                          lower_constraints=[y >= x / 3, y <= x / 3])
    lp = lower(p)
    proof = prove_follower_optimal(lp, [0.7], [0.7 / 3])
    assert proof.passed, proof.reason
    assert proof.result.assumed == [] and proof.result.box[1][0] - proof.result.box[0][0] <= 1e-12
    assert proof.phi_lower == pytest.approx((0.7 / 3 - 1) ** 2, abs=1e-9)


def test_verifier_lp_follower_with_an_unbounded_optimal_face():
    """WangJiaoLi2005's follower, min -y1 - y2 s.t. y2 >= x + y1 - 1, y1 + y2 <= 1, y free: at x = 0
    the optimal value is -1 on the unbounded face y1 + y2 = 1, y2 >= 0 (by hand), so SCIP would need
    an assumed box; the LP verdict by HiGHS needs none."""
    from workbench.bench.verify import verify_point
    x, y1, y2 = sp.symbols("x y1 y2")
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=-100 * x - 1000 * y1, lower_objective=-y1 - y2,
                          upper_constraints=[x >= 0, x <= 1],
                          lower_constraints=[y2 - x - y1 + 1 >= 0, 1 - y1 - y2 >= 0])
    ok = verify_point(p, [0.0], [1.0, 0.0])          # f = -1 = the LP's optimum
    assert ok.follower_optimal and "HiGHS" in ok.reason
    bad = verify_point(p, [0.0], [0.0, 0.0])         # f = 0, one worse than the optimum -1
    assert not bad.follower_optimal and bad.gap == pytest.approx(1.0, abs=1e-9)


def test_verifier_judges_a_near_singleton_at_the_points_own_violation():
    """DempeDutta2012Ex31 at x = (1, 1): the two discs |y - (1, 2)| <= 1 and |y - (-1, 2)| <= 1
    touch only at y = (0, 2) (by hand), so that reply is optimal; SCIP's relaxed feasibility finds
    a 'better' reply about sqrt(1e-9) away, which is not feasible once projected."""
    from workbench.bench.verify import verify_point
    x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2")
    p = wb.BilevelProblem([x1, x2], [y1, y2], upper_objective=-y2, lower_objective=y1**2 + (y2 + 1)**2,
                          upper_constraints=[x1 >= 0, x2 >= 0],
                          lower_constraints=[1 - (x1 - y1)**2 - (x1 - y2 + 1)**2 >= 0,
                                             1 - (x2 + y1)**2 - (x2 - y2 + 1)**2 >= 0])
    v = verify_point(p, [1.0, 1.0], [0.0, 2.0])
    assert v.feasible and v.follower_optimal, v.reason
    # a feasible but worse reply is still refuted: at x = (0.5, 0.5) the lens is y1 = 0,
    # 1.5 - sqrt(0.75) <= y2 <= 1.5 + sqrt(0.75) on its axis, so (0, 2.3) is feasible and (0, 0.634) better
    w = verify_point(p, [0.5, 0.5], [0.0, 2.3])
    assert not w.follower_optimal


def test_affine_follower_with_an_unbounded_optimal_face_is_proven():
    """FrankeEtal2018Ex521's follower: min y1 s.t. (y2 - 1/2)^2 - (y1 - 1)^2 + 5/4 >= 0, y1 + y2 <= 1,
    y1 >= 0. At y1 = 0 the first row reads (y2 - 1/2)^2 + 1/4 >= 0, true for every y2 <= 1, so the
    optimal value is 0 on the unbounded face {0} x (-inf, 1] (by hand): SCIP needs an assumed box for y2,
    but f = y1 >= 0 over the derived bound y1 >= 0 proves the value without it."""
    y1, y2 = sp.symbols("y1 y2", real=True)
    p = wb.BilevelProblem([x], [y1, y2], upper_objective=-y2, lower_objective=y1,
                          lower_constraints=[(y2 - sp.Rational(1, 2)) ** 2 - (y1 - 1) ** 2 + sp.Rational(5, 4) >= 0,
                                             y1 + y2 <= 1, y1 >= 0])
    proof = prove_follower_optimal(lower(p), [0.0], [0.0, 1.0])
    assert proof.passed, proof.reason
    worse = prove_follower_optimal(lower(p), [0.0], [0.5, 0.0])   # f = 0.5 > 0: refuted
    assert not worse.passed and worse.gap == pytest.approx(0.5, abs=1e-6)


def test_follower_undefined_at_the_leader_point_is_no_proof():
    """f = y^2/(x + 1) is undefined at x = -1 (division by zero): no proof, and no crash."""
    p = wb.BilevelProblem([x], [y], upper_objective=x + y, lower_objective=y ** 2 / (x + 1),
                          lower_constraints=[y >= -1, y <= 1])
    proof = prove_follower_optimal(lower(p), [-1.0], [0.0])
    assert not proof.passed and "not finite" in proof.reason
    assert prove_follower_optimal(lower(p), [0.0], [0.0]).passed   # at x = 0, f = y^2: y = 0 is optimal

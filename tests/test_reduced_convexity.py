"""Reduced objective F(x, y*(x)) and emergent non-convexity (issue 5, section 2)."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, y = sp.symbols("x y", real=True)


def seed(lo=-3, hi=3):
    # Convex leader objective, strictly convex follower, and yet a non-convex reduced objective.
    return wb.BilevelProblem([x], [y], (x - 2) ** 2 + (y + 1) ** 2, (y - x) ** 2,
                             upper_constraints=[x >= lo, x <= hi], lower_constraints=[y >= -1, y <= 1])


def test_reduced_objective_closed_form_matches_nested_brute_force():
    # Brute force: for each x, minimise (y - x)² over a y-grid of [-1, 1], then evaluate F.
    ro = seed().reduced_objective()
    assert ro.closed_form
    ygrid = np.linspace(-1, 1, 4001)
    for xv in (-2.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0):
        yb = ygrid[np.argmin((ygrid - xv) ** 2)]
        assert ro(np.array([xv])) == pytest.approx((xv - 2) ** 2 + (yb + 1) ** 2, abs=1e-6)
        assert float(ro.expr.subs(x, xv)) == pytest.approx((xv - 2) ** 2 + (yb + 1) ** 2, abs=1e-6)
    # By hand: Phi(0) = 4 + 1 = 5, Phi(1) = 1 + 4 = 5, Phi(2) = 0 + 4 = 4.
    assert [ro.expr.subs(x, v) for v in (0, 1, 2)] == [5, 5, 4]
    # The middle piece, by hand: (x-2)² + (x+1)² on -1 <= x <= 1.
    assert sp.expand(ro.pieces[1][0] - ((x - 2) ** 2 + (x + 1) ** 2)) == 0


def test_seed_is_nonconvex_with_midpoint_counterexample_and_kink():
    # By hand: Phi(1) = 5 > (Phi(0) + Phi(2)) / 2 = (5 + 4) / 2 = 9/2; at x = 1 the slope drops from
    # d/dx[(x-2)² + (x+1)²] = 4x - 2 = 2 to d/dx[(x-2)² + 4] = 2(x-2) = -2.
    v = seed().check_convexity((0, 2))
    assert v.verdict == "nonconvex" and v.convex is False
    ce = v.counterexample
    assert (ce.x0, ce.x1, ce.xm) == (0, 2, 1)
    assert (ce.f0, ce.f1, ce.fm, ce.average) == (5, 4, 5, sp.Rational(9, 2))
    kink = [k for k in v.kinks if k["at"] == 1][0]
    assert (kink["left_slope"], kink["right_slope"], kink["convex"]) == (2, -2, False)
    # every smooth piece is convex on its own (second derivatives 2, 4, 2 by hand): the
    # non-convexity is emergent, created by the follower's active-set change.
    assert [pc.hessian[0, 0] for pc in v.pieces] == [2, 4, 2]
    assert "9/2" in v.summary()


def test_convex_on_a_region_without_the_bad_kink():
    # By hand: on [-3, 1/2] Phi is (x-2)² (Phi'' = 2) then (x-2)² + (x+1)² (Phi'' = 4), joined at
    # x = -1 with equal slopes 2(-1-2) = -6 and 4(-1) - 2 = -6: convex.
    v = seed().check_convexity({x: (-3, 0.5)})
    assert v.verdict == "convex" and v.counterexample is None
    assert [(k["at"], k["left_slope"], k["right_slope"]) for k in v.kinks] == [(-1, -6, -6)]


def test_numeric_reduced_objective_when_no_closed_form():
    # Follower (4y² - 1)² has Y*(x) = {-1/2, 1/2}; optimistic tie-break => Phi(x) = (|x| - 1/2)².
    p = wb.BilevelProblem([x], [y], (x - y) ** 2, (4 * y ** 2 - 1) ** 2, upper_constraints=[x >= -1, x <= 1])
    ro = p.reduced_objective()
    assert not ro.closed_form and "not strictly convex" in ro.reason
    for xv in (-0.8, 0.0, 0.3):
        assert ro(np.array([xv])) == pytest.approx((abs(xv) - 0.5) ** 2, abs=1e-8)
    # By hand: the 3-point grid -1, 0, 1 shows no violation (all values 1/4); on the 5-point grid
    # -1, -1/2, 0, 1/2, 1 the largest one is Phi(0) = 1/4 > (Phi(-1/2) + Phi(1/2)) / 2 = 0.
    v = p.check_convexity()
    assert v.verdict == "nonconvex"
    assert (v.counterexample.x0, v.counterexample.x1) == (-sp.Rational(1, 2), sp.Rational(1, 2))
    assert v.counterexample.fm == pytest.approx(0.25, abs=1e-8)


def test_region_errors():
    p = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2)  # no leader bounds
    with pytest.raises(wb.MethodError, match="bounded region"):
        p.check_convexity()
    with pytest.raises(wb.MethodError, match="lo < hi"):
        p.check_convexity((1, 0))

"""KKT pitfalls made visible: diagnose(), constraint qualifications, follower convexity in y.

Every expected number is derived by hand in the comment next to it.
"""
import math

import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.analysis import constraint_qualification, follower_convexity_report
from workbench.certify import certify
from workbench.lower import lower
from workbench.reformulate import Bilevel2MPCC, Chain, MPCCRelax, Relaxation, initial_w
from workbench.solve import Homotopy

x, y, z = sp.symbols("x y z", real=True)


def seed():
    """Follower min y^6 - 7/8 y^4 + 1/8 y^2 (no x), leader min x^2 + y^2, x in [-1, 1].

    f'(y) = y (6y^4 - 7/2 y^2 + 1/4) = 0 at y = 0, y^2 = 1/12 and y^2 = 1/2.
    f(0) = 0, f(1/sqrt 2) = 1/8 - 7/32 + 1/16 = -1/32, f(1/sqrt 12) = 0.0049 (local max).
    f''(y) = 30y^4 - 21/2 y^2 + 1/4: f''(0) = 1/4 > 0 (y = 0 is a local min, not global),
    f''(1/sqrt 12) = 30/144 - 21/24 + 1/4 = -5/12 < 0; min f'' at y^2 = 7/40: -107/160.
    """
    return wb.BilevelProblem([x], [y], x ** 2 + y ** 2,
                             y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2,
                             upper_constraints=[x >= -1, x <= 1], name="seed_nonconvex")


def spurious_result(p):
    """KKT route pieces with one raw start (x, y) = (0.5, 0) and no cuts: the MPCC minimum (0, 0)
    is a KKT point of the follower with F = 0 < 1/2 (the true bilevel value)."""
    lp = lower(p)
    chain = Chain([Bilevel2MPCC(), MPCCRelax(Relaxation.parse("scholtes"))])
    relaxed, inv = chain.apply(lp)
    h = Homotopy(relaxed).run(initial_w(relaxed.mpcc, np.array([0.5]), np.array([0.0]), lp.p_default), lp.p_default)
    sol = chain.invert(h.w, inv)
    cert = certify(lp, sol.x, sol.y, lp.p_default, sol.lam)
    return wb.BilevelResult(status="not_certified", problem=p, method="kkt", x=sol.x, y=sol.y, lam=sol.lam,
                            mu=sol.mu, parameters=lp.p_default, certificate=cert)


def test_diagnose_spurious_result_in_words():
    p = seed()
    r = spurious_result(p)
    assert abs(r.y[0]) < 1e-6 and not r.certificate.passed
    d = p.diagnose(r)
    assert d.spurious and d.gap == pytest.approx(1 / 32, abs=1e-7)
    assert abs(d.best_y[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert d.best_follower_value == pytest.approx(-1 / 32, abs=1e-9)
    assert "local minimiser of the follower that is not global" in d.classification
    assert d.leader_value == pytest.approx(0.0, abs=1e-9) and d.leader_value_at_best == pytest.approx(0.5, abs=1e-6)
    assert "better" in str(d) and "0.03125" in d.text and "0.707107" in d.text
    assert d.convexity.verdict == "nonconvex"
    assert d._repr_markdown_().startswith("**Diagnosis: spurious")


def test_diagnose_points():
    p = seed()
    d0 = p.diagnose(point={x: 0, y: 0})
    assert d0.spurious and d0.gap == pytest.approx(1 / 32, abs=1e-9)
    d_max = p.diagnose(point={x: 0, y: 1 / math.sqrt(12)})
    # f(1/sqrt 12) = 1/1728 - 7/1152 + 1/96 = 17/3456; gap to -1/32 = 17/3456 + 108/3456 = 125/3456
    assert d_max.gap == pytest.approx(125 / 3456, abs=1e-8)
    assert "negative curvature" in d_max.classification and d_max.cq.sosc is False
    d_ok = p.diagnose(point={x: 0, y: 1 / math.sqrt(2)})
    assert not d_ok.spurious and "global minimiser" in d_ok.classification
    with pytest.raises(wb.ValueInputError):
        p.diagnose()


def cq_problem(**info):
    """Follower min 1/2 (y - x)^2 s.t. y >= 0 and 2y >= 0 (the same set, written twice)."""
    return wb.BilevelProblem([x], [y], x ** 2 + y ** 2, (y - x) ** 2 / 2, upper_constraints=[x >= -2, x <= 2],
                             lower_constraints=[y >= 0, 2 * y >= 0], info=info)


def test_licq_fails_mfcq_holds():
    # At x = -1: y = max(x, 0) = 0, both constraints active with gradients 1 and 2 (rank 1 < 2: no LICQ);
    # d = 1 gives 1 > 0, 2 > 0 (MFCQ). Stationarity y - x = 1 = lam1 + 2 lam2, lam >= 0: the segment
    # from (1, 0) to (0, 1/2), dimension 1. lam = (1/2, 1/4) is strictly complementary.
    c = constraint_qualification(cq_problem(), {x: -1}, follower_point={y: 0})
    assert c.active == [0, 1] and c.jacobian_rank == 1 and not c.licq and c.mfcq
    assert not c.multipliers_unique and c.multiplier_set_dimension == 1
    assert c.multiplier_ranges[0] == pytest.approx((0.0, 1.0), abs=1e-9)
    assert c.multiplier_ranges[1] == pytest.approx((0.0, 0.5), abs=1e-9)
    assert c.multiplier[0] + 2 * c.multiplier[1] == pytest.approx(1.0, abs=1e-9)
    assert c.strict_complementarity and c.ill_posed is None
    assert "NOT unique" in c.text and "LICQ FAILS" in c.text
    # the follower point is found by a solve when not given: same conclusions
    c2 = constraint_qualification(cq_problem(), {x: -1})
    assert abs(c2.follower_point[0]) < 1e-7 and not c2.licq and c2.multiplier_set_dimension == 1


def test_inactive_point_and_ill_posedness():
    # At x = 1: y = 1 > 0, nothing active, unique (empty) multipliers; SOSC: f'' = 1 > 0.
    c = constraint_qualification(cq_problem(), {x: 1}, follower_point={y: 1})
    assert c.licq and c.mfcq and c.multipliers_unique and c.sosc and c.reduced_hessian_min_eig == pytest.approx(1.0)
    # A leader that (declaredly) uses the multipliers: ill-posed exactly where they are not unique.
    p = cq_problem(upper_uses_multipliers=True)
    assert constraint_qualification(p, {x: -1}, follower_point={y: 0}).ill_posed is True
    assert constraint_qualification(p, {x: 1}, follower_point={y: 1}).ill_posed is False


def test_mfcq_failure_and_no_multipliers():
    # Follower min y s.t. -y^2 >= 0: feasible set {0}; active gradient -2y = 0 at y = 0, so LICQ and
    # MFCQ fail, and 1 = lam * 0 has no solution: y = 0 is the minimiser but not a KKT point.
    p = wb.BilevelProblem([x], [y], x + y, y, upper_constraints=[x >= 0], lower_constraints=[-y ** 2 >= 0])
    c = constraint_qualification(p, {x: 0}, follower_point={y: 0})
    assert not c.licq and not c.mfcq and c.multiplier_set_empty


def test_follower_convexity_verdicts():
    v = follower_convexity_report(seed())
    # f'' = 30y^4 - 21/2 y^2 + 1/4 is minimal at y^2 = 7/40 with value -107/160 (see seed()).
    assert v.verdict == "nonconvex" and v.proved and "-107/160" in v.text
    convex = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2 / 2, lower_constraints=[y >= 0, 1 - y ** 2 >= 0])
    assert follower_convexity_report(convex).verdict == "convex"        # f'' = 1, -(1 - y^2)'' = 2 >= 0
    bad_set = wb.BilevelProblem([x], [y], x + y, -y, lower_constraints=[y ** 2 - 1 >= 0])
    assert follower_convexity_report(bad_set).convex is False           # y^2 - 1 >= 0 is not a convex set
    # Hessian of y^4 + z^2 + y z is [[12 y^2, 1], [1, 2]], indefinite when 24 y^2 < 1: SymPy cannot
    # decide the sign symbolically here, sampling must find such a point.
    two = wb.BilevelProblem([x], [y, z], x + y, y ** 4 + z ** 2 + y * z, upper_constraints=[x >= 0, x <= 1])
    w = follower_convexity_report(two)
    assert w.verdict == "nonconvex" and w.counterexample["eigenvalue"] < 0
    assert 24 * w.counterexample["point"]["y"] ** 2 < 1

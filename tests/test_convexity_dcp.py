"""Convexity of the follower beyond quadratics: DCP composition rules and second-order cones.

Each verdict is derived by hand next to it; "not shown" is never "nonconvex", so the negative
cases are ones where the rules must not claim convexity (a wrong True would make a KKT point
a false global proof).
"""
import math

import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.certify import follower_is_convex
from workbench.lower import lower

x, y1, y2, t, u1, u2 = sp.symbols("x y1 y2 t u1 u2", real=True)


def convex(f, g=(), at=1.0, ys=(y1, y2)):
    p = wb.BilevelProblem([x], list(ys), upper_objective=x, lower_objective=f, lower_constraints=list(g))
    lp = lower(p)
    return follower_is_convex(lp, np.array([at]), lp.p_default)


@pytest.mark.parametrize("f, g, at, expected", [
    ((x + y1 + y2 - 20) ** 4, [], 1.0, True),           # even power of an affine function
    (sp.exp(y1 + y2) + y1 ** 2, [], 1.0, True),           # exp of affine + square
    (x * y1 ** 4 - x * y2, [], 1.0, True),                # positive coefficient x = 1 at the point
    (x * y1 ** 4 - x * y2, [], -1.0, False),              # x = -1: -y1^4 is concave
    (-sp.log(y1) - sp.sqrt(y2), [], 1.0, True),           # -log, -sqrt of affine: convex
    (y1 ** 3, [], 1.0, False),                             # odd power, sign of y1 unknown: not shown
    (y1 * y2, [], 1.0, False),                             # indefinite product
    (y1 ** 4, [1 - y1 ** 2 - sp.exp(y2) >= 0], 1.0, True),  # concave row: convex set
    (y1, [y1 ** 2 - 1 >= 0], 1.0, False),                  # {|y1| >= 1}: not convex
    (sp.cos(y1) + y2 ** 2, [], 1.0, False),               # cos: no DCP rule
])
def test_dcp_rules(f, g, at, expected):
    assert convex(f, g, at) is expected


@pytest.mark.parametrize("rows, expected", [
    # t >= 0 and t^2 - (u1 - x)^2 - u2^2 >= 0: one sheet of the Lorentz cone (convex)
    ([t >= 0, t ** 2 - (u1 - x) ** 2 - u2 ** 2 >= 0], True),
    # without a row selecting a sheet the set {t^2 >= |u|^2} is two cones: not convex
    ([t ** 2 - (u1 - x) ** 2 - u2 ** 2 >= 0], False),
    # t >= -1 does not separate the sheets of a cone with its apex at t = 0
    ([t >= -1, t ** 2 - (u1 - x) ** 2 - u2 ** 2 >= 0], False),
    # t^2 - |u|^2 + 1 >= 0 is a one-sheeted hyperboloid, connected and not convex, even with t >= 0
    ([t >= 0, t ** 2 - u1 ** 2 - u2 ** 2 + 1 >= 0], False),
    # t^2 - |u|^2 - 1 >= 0 is two-sheeted (t >= 1 or t <= -1): t >= 0.9 keeps one sheet, t >= -1.1 both
    ([t >= 0.9, t ** 2 - u1 ** 2 - u2 ** 2 - 1 >= 0], True),
    ([t >= -1.1, t ** 2 - u1 ** 2 - u2 ** 2 - 1 >= 0], False),
])
def test_second_order_cone_written_smoothly(rows, expected):
    assert convex(t, rows, ys=(t, u1, u2)) is expected


def test_socp_follower_bilevel_is_proven_convex():
    # Follower: min t s.t. t >= |(u1, u2) - (x1, x2)|, u1 + u2 = 1, so t = |x1 + x2 - 1| / sqrt(2) (distance
    # to a line). Leader F = (x1 - 2)^2 + (x2 - 2)^2 + t; by symmetry x1 = x2 = a > 1/2 and
    # dF/da = 4(a - 2) + sqrt(2) = 0, so a = 2 - sqrt(2)/4, F = 2(a - 2)^2 + (2a - 1)/sqrt(2).
    x1, x2 = sp.symbols("x1 x2", real=True)
    p = wb.BilevelProblem([x1, x2], [t, u1, u2], upper_objective=(x1 - 2) ** 2 + (x2 - 2) ** 2 + t,
                          upper_constraints=[x1 >= -5, x1 <= 5, x2 >= -5, x2 <= 5], lower_objective=t,
                          lower_constraints=[t >= 0, t ** 2 - (u1 - x1) ** 2 - (u2 - x2) ** 2 >= 0,
                                             sp.Eq(u1 + u2, 1)])
    r = p.solve()
    a = 2 - math.sqrt(2) / 4
    assert r.status == "optimal" and r.certificate.proof == "convex"
    assert r.x == pytest.approx([a, a], abs=1e-6)
    assert r.upper_value == pytest.approx(2 * (a - 2) ** 2 + (2 * a - 1) / math.sqrt(2), abs=1e-7)

"""Bad input gets a typed error naming the culprit; nothing the user passed is mutated."""
import math

import pytest
import sympy as sp

import workbench as wb

x, y, z, a = sp.symbols("x y z a", real=True)


def make(**kw):
    base = dict(leader=[x], follower=[y], upper_objective=x + y, lower_objective=(y - x) ** 2)
    base.update(kw)
    return wb.BilevelProblem(**base)


def test_unknown_symbol_is_named():
    with pytest.raises(wb.UnknownSymbolError, match=r"\bz\b.*parameters="):
        make(lower_constraints=[y >= z])


def test_variable_in_both_levels():
    with pytest.raises(wb.ModelError, match="x is listed as both leader and follower"):
        make(follower=[y, x])


@pytest.mark.parametrize("bad, words", [
    (y > 0, "strict"), (y < x, "strict"), (sp.Ne(y, 1), "!="), (y + 1, "not a relational"),
    ("y >= 0", "not a SymPy relational"), (sp.Integer(1) >= 0, "evaluated to True"),
    (sp.And(y >= 0, y <= 1), "not a relational"),
])
def test_bad_constraints(bad, words):
    with pytest.raises(wb.ConstraintError, match=words):
        make(lower_constraints=[bad])


def test_bad_objectives():
    with pytest.raises(wb.ModelError, match="string"):
        make(upper_objective="x + y")
    with pytest.raises(wb.ModelError, match="relational"):
        make(upper_objective=x >= y)
    with pytest.raises(wb.ModelError, match="scalar"):
        make(upper_objective=sp.Matrix([x, y]))
    # A follower objective without follower variables is a feasibility follower (every feasible y is
    # optimal), a valid bilevel problem: accepted, not an error (see tests/test_proofs.py).
    assert make(lower_objective=x ** 2).f == x ** 2


@pytest.mark.parametrize("value", [math.nan, math.inf, "abc", [1.0, 2.0]])
def test_bad_parameter_values(value):
    with pytest.raises(wb.ValueInputError, match="parameter a"):
        make(lower_objective=(y - a * x) ** 2, parameters={a: value})


def test_bad_starts_and_overrides():
    with pytest.raises(wb.ValueInputError, match="start value of y"):
        make(start={y: math.nan})
    with pytest.raises(wb.ValueInputError, match="z"):
        make(start={z: 1.0})
    p = make(lower_objective=(y - a * x) ** 2, parameters={a: 1.0})
    with pytest.raises(wb.ValueInputError, match="not a declared parameter"):
        p.solve(parameters={z: 1.0})
    with pytest.raises(wb.ValueInputError, match="finite"):
        p.solve(parameters={a: math.inf})


@pytest.mark.parametrize("fn", [sp.Abs, lambda t: sp.Max(t, 0), sp.sign, sp.floor])
def test_nonsmooth_follower_needs_consent(fn):
    p = make(lower_objective=(y - x) ** 2 + fn(y))
    with pytest.raises(wb.NonSmoothError, match="non-smooth"):
        p.solve()


def test_nonsmooth_follower_warns_when_allowed():
    # |y| + (y - x)^2 with x in [1, 2]: y*(x) = x - 1/2 > 0 away from the kink, so the route still works;
    # F = x + y = 2x - 1/2 is minimal at x = 1: F = 1.5.
    p = make(lower_objective=(y - x) ** 2 + sp.Abs(y), upper_constraints=[x >= 1, x <= 2])
    with pytest.warns(UserWarning, match="kinks"):
        r = p.solve(nonsmooth="warn")
    assert r.upper_value == pytest.approx(1.5, abs=1e-6)


def test_unknown_method_and_relaxation():
    p = make()
    with pytest.raises(wb.MethodError, match="unknown method"):
        p.solve(method="magic")
    with pytest.raises(wb.MethodError, match="unknown relaxation"):
        p.solve(relaxation="magic")


def test_user_objects_are_not_mutated():
    cons = [y >= 0, wb.named("cap", y <= x + 1)]
    cons_before = list(cons)
    start = {x: 0.3, y: 0.1}
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + y ** 2,
                          lower_objective=(y - x) ** 2, lower_constraints=cons,
                          upper_constraints=[x >= 0, x <= 2], start=start)
    p.solve(n_starts=2)
    assert cons == cons_before and cons[1].relation == (y <= x + 1)
    assert start == {x: 0.3, y: 0.1}

"""The SymPy -> CasADi translator agrees with SymPy's own numeric evaluation."""
import casadi as ca
import pytest
import sympy as sp

import workbench as wb
from workbench.lower import SympyToCasadi, lower

a, b = sp.symbols("a b", real=True)

EXPRESSIONS = [
    a + 2 * b - sp.Rational(3, 4), a * b ** 3, a ** -2 + sp.sqrt(b), sp.exp(a) * sp.cos(b) - sp.sin(a * b),
    sp.log(1 + a ** 2) / sp.tan(b), sp.atan(a) + sp.tanh(b) + sp.pi, sp.Abs(a - b) + sp.Max(a, b, 0) - sp.Min(a, 1),
    sp.Piecewise((a ** 2, a < 0), (b, True)), (a ** 2 + 1) ** b, sp.asinh(a) + sp.erf(b),
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=[str(e) for e in EXPRESSIONS])
def test_translation_matches_sympy(expr):
    sa, sb = ca.SX.sym("a"), ca.SX.sym("b")
    f = ca.Function("f", [sa, sb], [SympyToCasadi({a: sa, b: sb})(expr)])
    for va, vb in [(0.7, 0.3), (-0.4, 0.9), (1.3, 1.1), (-1.2, 0.5), (0.2, 0.25)]:
        expected = float(expr.subs({a: va, b: vb}).evalf())
        assert float(f(va, vb)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_unsupported_function_is_named():
    with pytest.raises(wb.ModelError, match="gamma"):
        SympyToCasadi({a: ca.SX.sym("a")})(sp.gamma(a))


def test_lowered_problem_pieces():
    # g = [y - x - 1, y] >= 0 at (x, y) = (0.5, 1.5): [0, 1.5]; F = (x-1)^2 + (y-1)^2 = 0.5.
    x, y = sp.symbols("x y", real=True)
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 1) ** 2,
                          lower_objective=y ** 2 / 2 + x * y, lower_constraints=[y - x - 1 >= 0, y >= 0])
    lp = lower(p)
    assert lower(p) is lp
    assert lp.evaluate("lower_ineq", [0.5], [1.5], []) == pytest.approx([0.0, 1.5])
    assert lp.evaluate("upper_objective", [0.5], [1.5], [])[0] == pytest.approx(0.5)
    assert lp.function("lower_ineq").name_in() == ["x", "y", "p"]

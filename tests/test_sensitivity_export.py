"""Export of the sensitivity map (CasADi Function, generated C compiled with gcc) and LaTeX views."""
import ctypes
import shutil
import subprocess

import casadi as ca
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.errors import MethodError

x, y, y1, y2, q = sp.symbols("x y y1 y2 q", real=True)


def problem():
    # follower min 1/2 (y1^2 + y2^2) + q x y1 s.t. y1 + y2 - x - 1 >= 0, y2 >= 0.
    # At x = 1/2, q = 1: unconstrained y = (-1/2, 0) violates g1 (sum -1/2 < 3/2), so g1 is active:
    # y1 - lam = -q x, y2 - lam = 0, y1 + y2 = x + 1 -> lam = (x + 1 + q x)/2 = 1, y = (1/2, 1).
    # dlam/dx = (1 + q)/2 = 1, dy1/dx = dlam/dx - q = 0, dy2/dx = 1; dlam/dq = x/2 = 1/4,
    # dy1/dq = 1/4 - x = -1/4, dy2/dq = 1/4.
    return wb.BilevelProblem([x], [y1, y2], upper_objective=y1 ** 2 + y2, parameters={q: 1.0},
                             lower_objective=(y1 ** 2 + y2 ** 2) / 2 + q * x * y1,
                             lower_constraints=[y1 + y2 - x - 1 >= 0, y2 >= 0])


EXPECTED_DY = np.array([[0.0, -0.25], [1.0, 0.25]])
EXPECTED_DLAM = np.array([[1.0, 0.25], [0.0, 0.0]])


def test_casadi_function_of_x_and_p():
    s = problem().sensitivity({x: 0.5}, wrt=[x, q])
    np.testing.assert_allclose(s.dy_dx, EXPECTED_DY, atol=1e-12)
    np.testing.assert_allclose(s.dlam_dx, EXPECTED_DLAM, atol=1e-12)
    f = s.to_casadi()
    yv, lam, dy, dlam, valid = f(0.5, 1.0)
    assert float(valid) == 1.0
    np.testing.assert_allclose(np.array(yv).ravel(), [0.5, 1.0], atol=1e-8)
    np.testing.assert_allclose(np.array(lam).ravel(), [1.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(np.array(dy), EXPECTED_DY, atol=1e-8)
    np.testing.assert_allclose(np.array(dlam), EXPECTED_DLAM, atol=1e-8)
    # same active set at x = 0.7: lam = (1.7 + 0.7)/2 = 1.2, y = (1.2 - 0.7, 1.2) = (0.5, 1.2)
    yv, lam, dy, _, _ = f(0.7, 1.0)
    np.testing.assert_allclose(np.array(yv).ravel(), [0.5, 1.2], atol=1e-8)
    np.testing.assert_allclose(np.array(dy), [[0.0, -0.35], [1.0, 0.35]], atol=1e-8)


def test_generated_c_compiles_and_matches(tmp_path):
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc is needed to compile the generated sensitivity code"
    s = problem().sensitivity({x: 0.5}, wrt=[x, q])
    path = s.codegen(str(tmp_path), name="seed_sens")
    lib = tmp_path / "libseed_sens.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", path, "-o", str(lib), "-lm"], check=True)
    ctypes.CDLL(str(lib))  # a real shared object
    f = ca.external("seed_sens", str(lib))
    dy, dlam, valid = f(0.5, 1.0, s.response.y, np.concatenate([s.response.lam, s.response.mu]))
    assert float(valid) == 1.0
    np.testing.assert_allclose(np.array(dy), EXPECTED_DY, atol=1e-12)
    np.testing.assert_allclose(np.array(dlam), EXPECTED_DLAM, atol=1e-12)
    # the compiled map evaluated at another point on the same active set (x = 0.7, y = (0.5, 1.2),
    # lam = 1.2): dy/dq = (lam_q - x, lam_q) with lam_q = x/2 = 0.35
    dy, _, valid = f(0.7, 1.0, [0.5, 1.2], [1.2, 0.0])
    np.testing.assert_allclose(np.array(dy), [[0.0, -0.35], [1.0, 0.35]], atol=1e-12)
    # a point that is not a KKT point of this active set (lam1 = 0 with g1 = 0): valid 0, NaN
    dy, dlam, valid = f(0.7, 1.0, [0.5, 1.2], [0.0, 0.0])
    assert float(valid) == 0.0 and np.all(np.isnan(np.array(dy))) and np.all(np.isnan(np.array(dlam)))


def test_export_refuses_degenerate_points():
    p = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2,
                          lower_constraints=[y >= 0])
    s = p.sensitivity({x: 0.0})
    with pytest.raises(MethodError, match="weakly_active"):
        s.to_casadi()


def test_latex_of_result_and_kkt_system():
    s = problem().sensitivity({x: 0.5})
    tex = s._repr_latex_()
    assert tex.startswith("$") and "status: regular" in tex and r"\frac{\partial y^*}" in tex
    system = s.system()
    # active set {g1}: K = [[1, 0, 1], [0, 1, 1], [1, 1, 0]] (J = grad_y g1 = (1, 1)),
    # rhs = -[L_yx; c_x] = -[(q, 0); -1] = (-1, 0, 1) at q = 1 (q stays symbolic)
    assert system.matrix == sp.Matrix([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    assert system.rhs == sp.Matrix([[-q], [0], [1]])
    assert r"\left[\begin{matrix}" in system._repr_latex_()
    sym = s.symbolic()
    # closed form on this active set: y1 = (1 + x - q x)/2, y2 = (x + 1 + q x)/2 -> dy/dx = ((1-q)/2, (1+q)/2)
    assert sp.simplify(sym.dy_dx - sp.Matrix([[(1 - q) / 2], [(1 + q) / 2]])) == sp.zeros(2, 1)


def test_export_function_shortcut():
    # wb.sensitivity.export_function(p, x) == p.sensitivity(x).to_casadi(); at x = 1/2, q = 1 the
    # values derived in problem(): y = (1/2, 1), lam = (1, 0), dy/dx = (0, 1)
    from workbench.sensitivity import export_function
    f = export_function(problem(), {x: 0.5})
    yv, lam, dy, dlam, valid = f(0.5, 1.0)
    assert float(valid) == 1.0
    np.testing.assert_allclose(np.array(yv).ravel(), [0.5, 1.0], atol=1e-8)
    np.testing.assert_allclose(np.array(dy).ravel(), [0.0, 1.0], atol=1e-8)
    np.testing.assert_allclose(np.array(dlam).ravel(), [1.0, 0.0], atol=1e-8)


def test_export_on_the_other_branch_is_invalid_and_nan():
    # seed KKT example f = y^2/2 + x y, g1 = y - x - 1 >= 0, g2 = y >= 0, built at x = 1/2 (g1 active,
    # dy/dx = 1). At x = -2 the unconstrained minimiser y = -x = 2 is feasible (2 >= -1, 2 >= 0), so
    # the reply is y = 2 with no active row and dy/dx = -1: another branch, so valid = 0 and NaN.
    x_ = sp.Symbol("x", real=True)
    p = wb.BilevelProblem([x_], [y], upper_objective=(x_ - 1) ** 2 + y ** 2, lower_objective=y ** 2 / 2 + x_ * y,
                          lower_constraints=[y - x_ - 1 >= 0, y >= 0])
    f = p.sensitivity({x_: 0.5}).to_casadi()
    from workbench.sensitivity.export import to_casadi
    assert "ONE active set" in to_casadi.__doc__
    yv, lam, dy, dlam, valid = f(-2.0, [])
    assert float(yv) == pytest.approx(2.0, abs=1e-8)
    assert float(valid) == 0.0 and np.isnan(float(dy)) and np.all(np.isnan(np.array(dlam)))
    yv, lam, dy, dlam, valid = f(0.7, [])  # same branch: y = x + 1, dy/dx = 1, lam1 = 2x + 1
    assert float(valid) == 1.0 and float(dy) == pytest.approx(1.0, abs=1e-8)
    # infeasible follower (y >= x + 1 and y <= 3 fail together for x > 2): valid = 0
    q = wb.BilevelProblem([x_], [y], upper_objective=y, lower_objective=y ** 2, lower_constraints=[y >= x_ + 1, y <= 3])
    g = q.sensitivity({x_: 0.0}).to_casadi()  # y = 1, lam1 = 2y = 2: dy/dx = 1
    assert float(g(0.0, [])[4]) == 1.0 and float(g(0.0, [])[2]) == pytest.approx(1.0, abs=1e-8)
    assert float(g(5.0, [])[4]) == 0.0 and np.isnan(float(g(5.0, [])[2]))

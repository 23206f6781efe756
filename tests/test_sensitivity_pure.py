"""Sensitivities as pure functions of one factorisation (JAXopt's root_jvp / root_vjp shape), a status
that is final once ``sensitivity()`` returns, and one set of symbols shared with the symbolic twin
(reformulate/symbolic.py): expressions from ``kkt_system(p)`` and ``s.symbolic()`` combine."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla
import sympy as sp

import workbench as wb
from workbench.errors import MethodError, ValueInputError
from workbench.sensitivity import minimum_norm

x, y, y1, y2, q = sp.symbols("x y y1 y2 q", real=True)


def problem():
    # follower min 1/2 (y1^2 + y2^2) + q x y1 s.t. g1 = y1 + y2 - x - 1 >= 0, g2 = y2 >= 0 (derived in
    # tests/test_sensitivity_export.py): at x = 1/2, q = 1, g1 is active, lam1 = (x + 1 + q x)/2 = 1,
    # y = (1/2, 1); dy/d(x, q) = [[0, -1/4], [1, 1/4]], dlam1/d(x, q) = (1, 1/4), lam2 = 0.
    return wb.BilevelProblem([x], [y1, y2], upper_objective=y1 ** 2 + y2, parameters={q: 1.0},
                             lower_objective=(y1 ** 2 + y2 ** 2) / 2 + q * x * y1,
                             lower_constraints=[y1 + y2 - x - 1 >= 0, y2 >= 0])


DY = np.array([[0.0, -0.25], [1.0, 0.25]])
DLAM = np.array([[1.0, 0.25], [0.0, 0.0]])


@pytest.mark.parametrize("compiled", [True, False])
def test_jvp_vjp_jacobian_give_the_hand_derivatives(compiled):
    s = problem().sensitivity({x: 0.5}, wrt=[x, q], compiled=compiled)
    assert s.status == "regular"
    dy, dlam = s.jacobian()
    np.testing.assert_allclose(dy, DY, atol=1e-12)
    np.testing.assert_allclose(dlam, DLAM, atol=1e-12)
    # along d = (1, 2): dy = DY d = (-1/2, 3/2), dlam = (3/2, 0) (hand)
    dy_d, dlam_d = s.jvp([1.0, 2.0])
    np.testing.assert_allclose(dy_d, [-0.5, 1.5], atol=1e-12)
    np.testing.assert_allclose(dlam_d, [1.5, 0.0], atol=1e-12)
    # cotangents: e_1 on y reads the first row of DY; e_1 on lam the first row of DLAM
    np.testing.assert_allclose(s.vjp([1.0, 0.0]), [0.0, -0.25], atol=1e-12)
    np.testing.assert_allclose(s.vjp([0.0, 0.0], w_lam=[1.0, 0.0]), [1.0, 0.25], atol=1e-12)
    # F = y1^2 + y2: dF/dx = 2 y1 dy1/dx + dy2/dx = 1, dF/dq = 2 (1/2)(-1/4) + 1/4 = 0 (hand)
    np.testing.assert_allclose(s.hypergradient, [1.0, 0.0], atol=1e-12)
    assert s.status == "regular"


def test_solve_is_injectable():
    s = problem().sensitivity({x: 0.5}, wrt=[x, q])
    calls = []

    def spsolve(K, B):
        calls.append(K.shape)
        return spla.spsolve(K.tocsc(), B)
    np.testing.assert_allclose(s.jvp([0.0, 1.0], solve=spsolve)[0], DY[:, 1], atol=1e-12)
    np.testing.assert_allclose(s.vjp([0.0, 1.0], solve=spsolve), DY[1], atol=1e-12)
    assert calls == [(3, 3), (3, 3)]  # K = [[H, J^T], [J, 0]]: 2 follower variables + 1 active row
    np.testing.assert_allclose(s.jacobian(solve=minimum_norm)[0], DY, atol=1e-12)


def test_pure_functions_refuse_bad_input_and_degenerate_points():
    s = problem().sensitivity({x: 0.5}, wrt=[x, q])
    with pytest.raises(ValueInputError, match="2 entries"):
        s.jvp([1.0])
    with pytest.raises(ValueInputError, match="cotangent on y"):
        s.vjp([1.0, 2.0, 3.0])
    # y* = max(x, 0) at x = 0: y >= 0 weakly active, no linear map to solve
    w = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2, lower_constraints=[y >= 0])
    d = w.sensitivity({x: 0.0})
    with pytest.raises(MethodError, match="weakly_active"):
        d.jvp([1.0])


def test_status_is_final_after_sensitivity():
    # regular (x = 1: y = 1 interior), weakly active (x = 0: a kink) and SOSC failing (a flat follower)
    w = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=(y - x) ** 2 / 2, lower_constraints=[y >= 0])
    flat = wb.BilevelProblem([x], [y1, y2], upper_objective=y1, lower_objective=(y1 + y2 - x) ** 2 / 2)
    for s in (w.sensitivity({x: 1.0}), w.sensitivity({x: 0.0}), flat.sensitivity({x: 1.0})):
        before = s.status
        for read in ("dy_dx", "dlam_dx", "hypergradient", "one_sided", "differentiable"):
            try:
                getattr(s, read)
            except wb.NotDifferentiable:
                pass
        assert s.status == before
    assert [s.status for s in (w.sensitivity({x: 1.0}), w.sensitivity({x: 0.0}))] == ["regular", "weakly_active"]


def test_symbolic_and_kkt_system_share_symbols():
    p = problem()
    k = wb.display.kkt_system(p)
    s = p.sensitivity({x: 0.5}, wrt=[x, q])
    sym = s.symbolic()
    # the closed-form reply and multipliers satisfy the follower's own stationarity (same symbols)
    on_piece = {**dict(zip(p.follower, sym.y)), **dict(zip(k.multipliers, sym.multipliers))}
    assert all(sp.simplify(e.subs(on_piece)) == 0 for e in k.stationarity)
    assert sp.simplify(sym.multipliers[0] - (x + 1 + q * x) / 2) == 0  # lam1 by hand (problem())
    # the symbolic block system at the point is the numeric KKT matrix (one sign convention)
    system = s.system()
    assert system.multipliers == [k.multipliers[0]]
    point = {x: 0.5, q: 1.0, y1: 0.5, y2: 1.0, k.multipliers[0]: 1.0}
    np.testing.assert_allclose(np.array(system.matrix.subs(point), float), s.K.toarray(), atol=1e-12)
    # implicit form: exp(y) + y^3 - x = 0 has no closed form; dy/dx = 1 / (exp(y) + 3 y^2) in the user's y
    r = wb.BilevelProblem([x], [y], upper_objective=y, lower_objective=sp.exp(y) + y ** 4 / 4 - x * y,
                          lower_constraints=[y <= x])
    imp = r.sensitivity({x: 0.3}).symbolic()
    assert imp.implicit and imp.dy_dx.free_symbols <= {y} | set(wb.display.kkt_system(r).multipliers)

"""Sensitivities of a model built directly in CasADi (an object with ``_lower()``, no SymPy)."""
import casadi as ca
import numpy as np
import pytest

from workbench.errors import MethodError
from workbench.lower import LoweredProblem
from workbench.sensitivity import follower_response, sensitivity


class ProjectionModel:
    """follower min_y 1/2 |y - B x|^2 s.t. y >= 0, leader F = sum(y)."""

    def __init__(self, B, sym=ca.SX):
        self.B = np.asarray(B, dtype=float)
        self.sym = sym

    def _lower(self):
        n_y, n_x = self.B.shape
        x, y, p = self.sym.sym("x", n_x), self.sym.sym("y", n_y), self.sym.sym("p", 0)
        empty = self.sym(0, 1)
        return LoweredProblem(x=x, y=y, p=p, F=ca.sum1(y), G=empty, H=empty,
                              f=0.5 * ca.sumsqr(y - ca.mtimes(ca.DM(self.B), x)), g=y, h=empty,
                              g_names=[f"y{i}>=0" for i in range(n_y)], h_names=[], G_names=[], H_names=[],
                              p_default=np.zeros(0), x_start=np.zeros(n_x), y_start=np.ones(n_y))


@pytest.mark.parametrize("sym", [ca.SX, ca.MX], ids=["SX", "MX"])
def test_projection_onto_the_orthant(sym):
    # y*(x) = max(Bx, 0) componentwise. At x = (1, 1), Bx = (3, -1, 0.5): rows 0 and 2 free
    # (dy_i/dx = B_i), row 1 clipped (dy_1/dx = 0, lam_1 = -(Bx)_1 = 1, dlam_1/dx = -B_1).
    B = np.array([[1.0, 2.0], [-2.0, 1.0], [0.25, 0.25]])
    m = ProjectionModel(B, sym)
    fr = follower_response(m, [1.0, 1.0])
    np.testing.assert_allclose(fr.y, [3.0, 0.0, 0.5], atol=1e-12)
    assert fr.active_set == ["y1>=0"]
    s = sensitivity(m, [1.0, 1.0])
    assert s.status == "regular" and s.wrt_names == ["x0", "x1"]
    assert s.compiled is not None  # H = I: the compiled path, for SX and MX models alike
    np.testing.assert_allclose(s.dy_dx, [[1, 2], [0, 0], [0.25, 0.25]], atol=1e-12)
    np.testing.assert_allclose(s.dlam_dx, [[0, 0], [2, -1], [0, 0]], atol=1e-12)
    # F = sum(y): hypergradient = column sums of dy/dx = (1.25, 2.25)
    np.testing.assert_allclose(s.hypergradient, [1.25, 2.25], atol=1e-12)
    dy, dlam = s.directional(np.array([1.0, -1.0]))
    np.testing.assert_allclose(dy, [-1.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(MethodError, match="SymPy declaration"):
        s.symbolic()

"""Linear structure of a bilevel problem, read off the SymPy declaration.

The strong-duality and big-M MILP reductions (``lp_dual.py``, ``lp_bigm_milp.py``), the
auto route's choice and the shadow-price LP need to know *that* the follower is an LP in
y (and, for the MILP, that everything is affine in (x, y)) and, when it is not,
*which* expression is nonlinear in *which* variable, so the error can say so.
:func:`linear_bilevel` reads the numeric data  A [x; y] + b  of every piece
(:class:`LinearBilevel`) that the MILP is built from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Sequence

import numpy as np
import sympy as sp

from ..errors import MethodError
from .reduction import Reduction

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


def nonlinear_in(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> sp.Symbol | None:
    """The first variable in which ``expr`` is not affine (jointly in ``variables``), else None.

    ``expr`` is affine in v when every first derivative is free of all of ``variables``.
    """
    vs = set(variables)
    for v in variables:
        d = sp.diff(expr, v)
        if d.free_symbols & vs:
            return v
        if d.has(sp.nan, sp.zoo):
            return v
    return None


def follower_pieces(problem: BilevelProblem) -> list[tuple[str, sp.Expr]]:
    """(label, expression) of the lower objective and every lower constraint."""
    out = [("lower objective", problem.f)]
    out += [(f"lower constraint {c.name!r} ({c.source})", c.expr) for c in problem.g + problem.h]
    return out


def leader_pieces(problem: BilevelProblem) -> list[tuple[str, sp.Expr]]:
    """(label, expression) of the upper objective and every upper constraint."""
    out = [("upper objective", problem.F)]
    out += [(f"upper constraint {c.name!r} ({c.source})", c.expr) for c in problem.G + problem.H]
    return out


def require_lp_follower(problem: BilevelProblem, method: str) -> None:
    """Raise MethodError naming the first follower expression that is nonlinear in y."""
    for what, e in follower_pieces(problem):
        v = nonlinear_in(e, problem.follower)
        if v is not None:
            raise MethodError(
                f"method={method!r} needs a follower that is a linear program in y, but the {what} "
                f"is nonlinear in the follower variable {v} (d/d{v} = {sp.diff(e, v)} still depends on "
                f"{sorted(map(str, sp.diff(e, v).free_symbols & set(problem.follower)))}). "
                "Use method='kkt' for nonlinear followers.")


def require_linear_bilevel(problem: BilevelProblem, method: str) -> None:
    """Raise MethodError unless every piece is affine jointly in (x, y) (parameters are constants)."""
    require_lp_follower(problem, method)
    xy = list(problem.leader) + list(problem.follower)
    for what, e in leader_pieces(problem) + follower_pieces(problem):
        v = nonlinear_in(e, xy)
        if v is not None:
            raise MethodError(
                f"method={method!r} needs a linear leader and a follower LP whose data are affine in x, "
                f"but the {what} is nonlinear in {v} (d/d{v} = {sp.diff(e, v)}). "
                "Use method='strong_duality' (bilinear allowed, local solve) or method='kkt'.")


@dataclass
class AffineRows:
    """Rows ``A @ [x, y] + b`` of affine expressions with numeric coefficients."""

    A: np.ndarray
    b: np.ndarray
    names: list[Hashable]

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        return self.A @ xy + self.b


def affine_rows(exprs: Sequence[sp.Expr], names: Sequence[Hashable], variables: Sequence[sp.Symbol],
                values: dict[sp.Symbol, float]) -> AffineRows:
    """Numeric coefficients of affine expressions (parameters substituted by ``values``)."""
    n = len(variables)
    A = np.zeros((len(exprs), n))
    b = np.zeros(len(exprs))
    zero = {v: 0 for v in variables}
    for i, e in enumerate(exprs):
        e = sp.sympify(e).subs(values)
        for j, v in enumerate(variables):
            A[i, j] = float(sp.diff(e, v))
        b[i] = float(e.subs(zero))
    return AffineRows(A, b, list(names))


@dataclass
class LinearBilevel:
    """min c_F.[x,y] s.t. G, H (upper), y solving min_y f s.t. g >= 0, h = 0, with every piece affine
    in (x, y) except f, whose y-gradient ``grad`` is affine (f linear, or a convex QP in y)."""

    nx: int
    ny: int
    F: AffineRows      # one row
    grad: AffineRows   # grad_y f = grad.A @ [x, y] + grad.b (ny rows)
    G: AffineRows
    H: AffineRows
    g: AffineRows
    h: AffineRows

    @property
    def c_follower(self) -> np.ndarray:
        """grad_y f at (x, y) = 0; the follower's cost vector when it is an LP."""
        return self.grad.b

    @property
    def is_lp(self) -> bool:
        return not np.any(self.grad.A)

    def Ay(self, block: str) -> np.ndarray:
        return getattr(self, block).A[:, self.nx:]


def require_qp_follower(problem: BilevelProblem, method: str) -> None:
    xy = list(problem.leader) + list(problem.follower)
    for yi in problem.follower:
        d = sp.diff(problem.f, yi)
        v = nonlinear_in(d, xy)
        if v is not None:
            raise MethodError(
                f"method={method!r} needs a follower objective that is linear or quadratic in y with a gradient "
                f"affine in (x, y), but d f/d{yi} = {d} is nonlinear in {v}. Use method='kkt'.")
    for what, e in leader_pieces(problem) + follower_pieces(problem)[1:]:
        v = nonlinear_in(e, xy)
        if v is not None:
            raise MethodError(f"method={method!r} needs affine constraints and a linear leader objective, but "
                              f"the {what} is nonlinear in {v}. Use method='kkt'.")


def linear_bilevel(problem: BilevelProblem, p: np.ndarray, method: str = "milp", allow_qp: bool = False) -> LinearBilevel:
    """Numeric data of a linear bilevel problem at parameter values ``p`` (structure checked first).

    With ``allow_qp`` the follower may be a convex QP in y (constant PSD Hessian, gradient affine in
    (x, y)); a nonconvex quadratic follower is refused.
    """
    if allow_qp:
        require_qp_follower(problem, method)
    else:
        require_linear_bilevel(problem, method)
    values = dict(zip(problem.parameter_symbols, (float(v) for v in p)))
    xy = list(problem.leader) + list(problem.follower)
    rows = lambda cs: affine_rows([c.expr for c in cs], [c.name for c in cs], xy, values)  # noqa: E731
    grad = affine_rows([sp.diff(problem.f, yi) for yi in problem.follower], list(problem.follower), xy, values)
    Q = grad.A[:, problem.n_x:]
    if np.any(Q):
        eig = np.linalg.eigvalsh((Q + Q.T) / 2)
        if eig.min() < -1e-10 * max(1.0, np.abs(Q).max()):
            raise MethodError(
                f"method={method!r}: the follower is a quadratic in y with Hessian eigenvalues "
                f"{np.round(eig, 6).tolist()}, not a convex QP, so its KKT points need not be minimisers. "
                "Use method='kkt' (and check the certificate).")
    return LinearBilevel(
        nx=problem.n_x, ny=problem.n_y, F=affine_rows([problem.F], ["F"], xy, values), grad=grad,
        G=rows(problem.G), H=rows(problem.H), g=rows(problem.g), h=rows(problem.h))


class Bilevel2Linear(Reduction):
    """A declaration -> its :class:`LinearBilevel` data at parameter values ``p`` (structure checked
    first, see :func:`linear_bilevel`); solutions pass back unchanged (same variables)."""

    def __init__(self, p: np.ndarray, method: str = "milp", allow_qp: bool = False):
        self.p, self.method, self.allow_qp = p, method, allow_qp

    def apply(self, problem: BilevelProblem) -> tuple[LinearBilevel, None]:
        return linear_bilevel(problem, self.p, self.method, self.allow_qp), None

    def invert(self, solution: Any, inverse_data: None) -> Any:
        return solution

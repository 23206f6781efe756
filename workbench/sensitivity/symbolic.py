"""SymPy view of the sensitivity on the current active set.

``symbolic()`` solves the active-set KKT equations in closed form when SymPy can,
differentiates y(z) and the multipliers, and states the region where this
active set stays optimal (inactive constraints > 0, active multipliers > 0).
If SymPy cannot solve them, the implicit-function formula -K^{-1} R is
returned in terms of the follower variables and multiplier symbols.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..errors import MethodError


def _require_sympy(s: Any) -> Any:
    p = s.problem
    if not all(hasattr(p, a) for a in ("f", "g", "h", "follower", "leader")):
        raise MethodError("symbolic sensitivities need a SymPy declaration (BilevelProblem); "
                          "this problem was built directly in CasADi")
    return p


def _multiplier_symbols(p: Any) -> tuple[list, list]:
    lam = [sp.Symbol(f"lambda_{c.name}", real=True) for c in p.g]
    mu = [sp.Symbol(f"mu_{c.name}", real=True) for c in p.h]
    return lam, mu


@dataclass
class KKTSystem:
    """K [dy/dz; -dnu/dz] = -R for the active set (SymPy matrices)."""

    K: sp.Matrix
    unknown: sp.Matrix
    rhs: sp.Matrix
    multipliers: list

    def _repr_latex_(self) -> str:
        return ("$\\displaystyle " + sp.latex(self.K) + sp.latex(self.unknown)
                + " = " + sp.latex(self.rhs) + "$")


def _pieces(s: Any):
    p = _require_sympy(s)
    lam, mu = _multiplier_symbols(p)
    act = [i for i, a in enumerate(s.rows) if a]
    nu = [lam[i] for i in act] + mu
    cons = [p.g[i].expr for i in act] + [c.expr for c in p.h]
    L = p.f - sum((lam[i] * p.g[i].expr for i in act), sp.Integer(0)) - sum(
        (m * c.expr for m, c in zip(mu, p.h)), sp.Integer(0))
    ys = list(p.follower)
    zs = [list(p.leader) + list(p.parameter_symbols)][0]
    zsel = [zs[c] for c in s.columns]
    grad = sp.Matrix([sp.diff(L, v) for v in ys])
    H = grad.jacobian(ys)
    J = sp.Matrix(cons).jacobian(ys) if cons else sp.zeros(0, len(ys))
    m = J.shape[0]
    K = sp.BlockMatrix([[H, J.T], [J, sp.zeros(m, m)]]).as_explicit() if m else H
    R = sp.Matrix.vstack(grad.jacobian(zsel), sp.Matrix(cons).jacobian(zsel)) if m else grad.jacobian(zsel)
    return p, lam, mu, act, nu, cons, ys, zsel, grad, K, -R


def kkt_system(s: Any) -> KKTSystem:
    p, lam, mu, act, nu, cons, ys, zsel, grad, K, rhs = _pieces(s)
    names = [sp.Symbol(f"\\frac{{d{sp.latex(v)}}}{{d{sp.latex(z)}}}") for v in ys for z in zsel]
    dy = sp.Matrix(len(ys), len(zsel), names) if zsel else sp.zeros(len(ys), 0)
    dnu = sp.Matrix(len(nu), len(zsel), [-sp.Symbol(f"\\frac{{d{sp.latex(v)}}}{{d{sp.latex(z)}}}")
                                          for v in nu for z in zsel])
    unknown = sp.Matrix.vstack(dy, dnu) if nu else dy
    return KKTSystem(K, unknown, rhs, nu)


@dataclass
class SymbolicSensitivity:
    """dy/dz and dlam/dz as SymPy matrices, valid where ``region`` holds."""

    dy_dx: sp.Matrix
    dlam_dx: sp.Matrix
    y: sp.Matrix | None
    multipliers: sp.Matrix | None
    conditions: list
    region: Any
    implicit: bool
    wrt: list

    def _repr_latex_(self) -> str:
        parts = [r"\frac{dy}{dz} = " + sp.latex(self.dy_dx), r"\frac{d\lambda}{dz} = " + sp.latex(self.dlam_dx)]
        body = r",\quad ".join(parts)
        return f"$\\displaystyle {body}\\quad \\text{{on }} {sp.latex(self.region)}$"


def _region(conditions: list, zsel: list) -> Any:
    conds = [c for c in conditions if c is not sp.true]
    if any(c is sp.false for c in conds):
        return sp.false
    free = set().union(*[c.free_symbols for c in conds]) if conds else set()
    if len(free) == 1:
        try:
            return sp.reduce_inequalities(conds, list(free)[0])
        except (NotImplementedError, ValueError, TypeError):
            return sp.And(*conds)
    return sp.And(*conds)


def symbolic_sensitivity(s: Any) -> SymbolicSensitivity:
    if s.status in ("sosc_fails", "licq_fails", "singular"):
        raise MethodError(f"no symbolic dy/dx on this active set: status is {s.status!r}, so the KKT matrix is "
                          "singular and the implicit-function theorem does not apply (see s.checks)")
    p, lam, mu, act, nu, cons, ys, zsel, grad, K, rhs = _pieces(s)
    unknowns = ys + nu
    eqs = list(grad) + cons
    try:
        sols = sp.solve(eqs, unknowns, dict=True)
    except NotImplementedError:
        sols = []
    sols = [d for d in sols if all(u in d for u in unknowns)]
    ng = len(p.g)
    if sols:
        point = dict(zip(list(p.leader) + list(p.parameter_symbols), np.concatenate([s.response.x, s.response.p])))
        num = np.concatenate([s.response.y, s.response.lam[act], s.response.mu])
        def dist(d):
            vals = [complex(sp.N(d[u].subs(point))) for u in unknowns]
            return float(np.linalg.norm(np.array(vals) - num))
        sol = min(sols, key=dist)
        yv = sp.Matrix([sp.simplify(sol[v]) for v in ys])
        nuv = sp.Matrix([sp.simplify(sol[v]) for v in nu]) if nu else sp.zeros(0, 1)
        dy = sp.simplify(yv.jacobian(zsel))
        dnu = sp.simplify(nuv.jacobian(zsel)) if nu else sp.zeros(0, len(zsel))
        subs = dict(zip(ys, yv))
        inactive = [sp.simplify(p.g[i].expr.subs(subs)) > 0 for i in range(ng) if i not in act]
        positive = [sp.simplify(nuv[k]) > 0 for k in range(len(act))]
        conditions = inactive + positive
        implicit = False
        lam_all = sp.zeros(ng + len(p.h), 1)
        for k, i in enumerate(act):
            lam_all[i] = nuv[k]
        for k in range(len(p.h)):
            lam_all[ng + k] = nuv[len(act) + k]
    else:
        X = K.LUsolve(rhs)
        dy = sp.simplify(X[: len(ys), :])
        dnu = sp.simplify(-X[len(ys):, :])
        yv, lam_all, implicit = None, None, True
        conditions = [p.g[i].expr > 0 for i in range(ng) if i not in act] + [lam[i] > 0 for i in act]
    dlam = sp.zeros(ng + len(p.h), len(zsel))
    for k, i in enumerate(act):
        dlam[i, :] = dnu[k, :]
    for k in range(len(p.h)):
        dlam[ng + k, :] = dnu[len(act) + k, :]
    return SymbolicSensitivity(dy, dlam, yv, lam_all, conditions, _region(conditions, zsel), implicit, zsel)

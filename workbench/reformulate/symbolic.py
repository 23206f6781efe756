"""The SymPy twin of ``bilevel2mpcc`` / ``mpcc_relax``: the follower's systems in the user's symbols.

One Lagrangian and one multiplier per constraint, for every symbolic derivation in the package
(display, the closed-form sensitivity, ``analysis``), in the sign convention of the CasADi side
(``bilevel2mpcc.lagrangian``):

    L(x, y, lam, mu) = f - sum_i lam_i g_i - sum_j mu_j h_j      (g >= 0, lam >= 0; h = 0, mu free)

The multiplier of constraint ``name`` is ``multiplier_symbol(kind, name)`` (SymPy caches symbols,
so every call returns the same object): expressions from ``kkt_system(p)``,
``sensitivity_system(p, ...)`` and ``s.symbolic()`` can be combined.

* ``kkt_system(p)``: stationarity grad_y L = 0, feasibility, complementarity 0 <= g ⊥ lam >= 0.
* ``relaxed_system(p, scheme)``: the MPCC with the complementarity relaxed (``mpcc_relax.SCHEMES``).
* ``sensitivity_system(p, active, wrt)``: differentiating grad_y L = 0 and c_A = 0 (c_A: the active
  inequalities, then every equality, multipliers nu) in w gives the symmetric block system of
  ``sensitivity/kkt_matrix.py``,

      [ L_yy  J^T ] [  dy/dw  ]     [ L_yw ]
      [ J     0   ] [ -dnu/dw ] = - [ c_w  ]        J = grad_y c_A,

  so at a point its matrix is the numeric ``Sensitivity.K``.
* ``symbolic_sensitivity(p, active, wrt, near)``: the same active set solved in closed form when
  SymPy can (dy/dw, dlam/dw and the region where the active set stays optimal), else the
  implicit-function formula in y and the multiplier symbols.

Every object prints itself (``_latex``, through ``workbench.printing``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Mapping

import numpy as np
import sympy as sp

from ..errors import MethodError, ModelError, WorkbenchError
from ..printing import LatexPrintable, aligned, joined, normalised, paren, subscript, tag, text
from .mpcc_relax import SCHEMES, Relaxation

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


def multiplier_symbol(kind: str, name: Hashable) -> tuple[sp.Symbol, str]:
    """The SymPy symbol for a constraint's multiplier and its LaTeX name.

    ``kind`` is "ineq" (lambda, for g >= 0) or "eq" (mu, for h = 0). The symbol's SymPy name
    is unique per constraint; the LaTeX name (``\\lambda_{capacity}``) goes to ``symbol_names``.
    """
    letter = "lambda" if kind == "ineq" else "mu"
    sym = sp.Symbol(f"{letter}__wb_{name}", real=True)
    return sym, "\\" + letter + "_{" + subscript(name) + "}"


def is_symbolic(problem: Any) -> bool:
    """Whether ``problem`` is a SymPy declaration (a vectorised one refuses its SymPy pieces)."""
    try:
        return all(hasattr(problem, a) for a in ("f", "g", "h", "follower", "leader"))
    except WorkbenchError:
        return False


def require_sympy(problem: Any) -> Any:
    """``problem`` if it is a SymPy declaration, else a :class:`MethodError` saying why not."""
    if not is_symbolic(problem):
        raise MethodError("symbolic derivations need a SymPy declaration (BilevelProblem); "
                          "this problem was built directly in CasADi")
    return problem


@dataclass
class Multiplier:
    """A follower constraint with its multiplier symbol (lambda for g >= 0, mu for h = 0)."""

    constraint: Any
    symbol: sp.Symbol
    latex_name: str


def lagrangian_expr(f: sp.Expr, pairs: Iterable[tuple[sp.Symbol, sp.Expr]]) -> sp.Expr:
    """f - sum_k nu_k c_k: the one SymPy Lagrangian (pairs of multiplier symbol and constraint)."""
    return f - sum((nu * c for nu, c in pairs), sp.S.Zero)


@dataclass
class KKTSystem(LatexPrintable):
    """The follower's KKT conditions in the user's symbols."""

    problem: BilevelProblem
    lagrangian: sp.Expr
    stationarity: list[sp.Expr]
    inequalities: list[Multiplier]
    equalities: list[Multiplier]
    symbol_names: dict = field(default_factory=dict)

    @property
    def multipliers(self) -> list[sp.Symbol]:
        return [m.symbol for m in self.inequalities + self.equalities]

    def _latex(self, printer: Any) -> str:
        p = self.problem
        args = joined(printer, tuple(p.leader) + tuple(p.follower) + tuple(self.multipliers))
        L = printer._print(p.f)
        for m in self.inequalities + self.equalities:
            L += " - " + printer._print(m.symbol) + " " + paren(printer, m.constraint.expr)
        lines = [r"\mathcal{L}\left(" + args + r"\right) &= " + L]
        if p.lower_sense == "max":
            lines.append(r"& \text{(the maximised follower objective enters with a minus sign)}")
        for y, e in zip(p.follower, self.stationarity):
            lines.append(r"\frac{\partial \mathcal{L}}{\partial " + printer._print(y) + "} &= "
                         + printer._print(e) + r" = 0")
        for m in self.inequalities:
            lines.append(r"0 &\leq " + printer._print(m.constraint.expr) + r" \perp " + printer._print(m.symbol)
                         + r" \geq 0" + tag(m.constraint))
        for m in self.equalities:
            lines.append(normalised(printer, m.constraint) + r" & \quad " + printer._print(m.symbol)
                         + r" \in \mathbb{R}" + tag(m.constraint))
        return aligned(lines)


def _multipliers(problem: BilevelProblem) -> tuple[list[Multiplier], list[Multiplier], dict]:
    ineq, eq, names = [], [], {}
    for kind, rows, out in (("ineq", problem.g, ineq), ("eq", problem.h, eq)):
        for c in rows:
            s, tex = multiplier_symbol(kind, c.name)
            out.append(Multiplier(c, s, tex))
            names[s] = tex
    # the leader's wb.multiplier symbols print like the KKT system's own: lambda_name / mu_name
    for s, (kind, i) in getattr(problem, "multiplier_symbols", {}).items():
        names[s] = (ineq if kind == "ineq" else eq)[i].latex_name
    return ineq, eq, names


def kkt_system(problem: BilevelProblem) -> KKTSystem:
    """Build the follower's Lagrangian and KKT system symbolically."""
    ineq, eq, names = _multipliers(require_sympy(problem))
    L = lagrangian_expr(problem.f, [(m.symbol, m.constraint.expr) for m in ineq + eq])
    return KKTSystem(problem, L, [sp.diff(L, y) for y in problem.follower], ineq, eq, names)


def lagrangian(problem: BilevelProblem) -> sp.Expr:
    """L = f - lam^T g - mu^T h as one SymPy expression (f in the minimisation sense)."""
    return kkt_system(problem).lagrangian


@dataclass
class RelaxedSystem(LatexPrintable):
    """The bilevel problem with the follower replaced by its KKT system, complementarity relaxed."""

    kkt: KKTSystem
    scheme: Relaxation
    eps: sp.Symbol = field(default_factory=lambda: sp.Symbol("varepsilon", positive=True))

    @property
    def problem(self) -> Any:
        return self.kkt.problem

    def _latex(self, printer: Any) -> str:
        k, p, eps, sc = self.kkt, self.problem, printer._print(self.eps), SCHEMES[self.scheme]
        F = printer._print(p.upper_objective_user)
        if sc.penalty and k.inequalities:
            pen = " + ".join(sc.latex_term(paren(printer, m.constraint.expr), printer._print(m.symbol), eps)
                             for m in k.inequalities)
            sign = "+" if p.upper_sense == "min" else "-"
            F = F + f" {sign} \\frac{{1}}{{{eps}}} \\left(" + pen + r"\right)"
        op = r"\min" if p.upper_sense == "min" else r"\max"
        lines = [op + "_{" + joined(printer, tuple(p.leader) + tuple(p.follower) + tuple(k.multipliers))
                 + r"} \quad & " + F]
        lines += [(r"\text{s.t.} \quad & " if i == 0 else "& ") + printer._print(c.source) + tag(c)
                  for i, c in enumerate(p.upper_constraints)]
        for y, e in zip(p.follower, k.stationarity):
            lines.append(r"& " + printer._print(e) + r" = 0 \quad \text{(stationarity in } " + printer._print(y)
                         + r"\text{)}")
        for m in k.equalities:
            lines.append(r"& " + normalised(printer, m.constraint) + tag(m.constraint))
        for m in k.inequalities:
            g, lam = paren(printer, m.constraint.expr), printer._print(m.symbol)
            lines.append(r"& " + printer._print(m.constraint.expr) + r" \geq 0, \; " + lam + r" \geq 0"
                         + tag(m.constraint))
            if not sc.penalty:
                lines.append("& " + sc.latex_term(g, lam, eps))
        if k.inequalities:
            lines += ["& " + note for note in sc.latex_notes]
        lines.append(r"& " + text(sc.title) + r", \; " + eps + r" \downarrow 0")
        return aligned(lines)


def relaxed_system(problem: BilevelProblem, scheme: "str | Relaxation" = "scholtes") -> RelaxedSystem:
    """The MPCC of ``problem`` under one relaxation scheme (see :class:`Relaxation`)."""
    return RelaxedSystem(kkt_system(problem), Relaxation.parse(scheme))


@dataclass
class SensitivitySystem(LatexPrintable):
    """K [dy/dw; -dnu/dw] = rhs on an active set (module docstring); ``active`` lists c_A's rows."""

    kkt: KKTSystem
    active: list[Multiplier]
    matrix: sp.Matrix
    rhs: sp.Matrix
    wrt: tuple[sp.Symbol, ...]

    @property
    def problem(self) -> Any:
        return self.kkt.problem

    @property
    def multipliers(self) -> list[sp.Symbol]:
        """nu: the multipliers of the active rows, in row order."""
        return [m.symbol for m in self.active]

    def _latex(self, printer: Any) -> str:
        nu = [printer._print(s) for s in self.multipliers]
        rows = []
        for sign, name in [("", printer._print(y)) for y in self.problem.follower] + [("-", n) for n in nu]:
            rows.append(" & ".join(sign + r"\frac{\partial " + name + r"}{\partial " + printer._print(w) + "}"
                                   for w in self.wrt))
        unknown = r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"
        generic = (r"\begin{bmatrix} \nabla^2_{yy} \mathcal{L} & \nabla_y c_{\mathcal{A}}^{\top} \\ "
                   r"\nabla_y c_{\mathcal{A}} & 0 \end{bmatrix} \begin{bmatrix} \partial y \\ "
                   r"-\partial \nu_{\mathcal{A}} \end{bmatrix} &= -\begin{bmatrix} \nabla^2_{yx} \mathcal{L} \\ "
                   r"\nabla_x c_{\mathcal{A}} \end{bmatrix}")
        concrete = printer._print(self.matrix) + " " + unknown + " &= " + printer._print(self.rhs)
        act = ", ".join(nu) if nu else r"\emptyset"
        return aligned([generic, concrete, r"& \text{multipliers of active constraints: } " + act])


def _active_rows(kkt: KKTSystem, active: Iterable[Hashable] | None) -> list[Multiplier]:
    by_name = {m.constraint.name: m for m in kkt.inequalities}
    if active is None:
        return list(kkt.inequalities)
    chosen = []
    for name in active:
        if name not in by_name:
            raise ModelError(f"active constraint {name!r} is not a follower inequality; known: {list(by_name)}")
        chosen.append(by_name[name])
    return chosen


def sensitivity_system(problem: BilevelProblem, active: Iterable[Hashable] | None = None,
                       wrt: Iterable[sp.Symbol] | None = None) -> SensitivitySystem:
    """The KKT sensitivity block system with the given active inequality names.

    ``active=None`` treats every inequality as active (pass the active set at your
    point, e.g. from ``wb.explore_data``). ``wrt`` defaults to the leader's variables;
    parameters can be given instead.
    """
    kkt = kkt_system(problem)
    rows = _active_rows(kkt, active) + list(kkt.equalities)
    wrt = tuple(problem.leader if wrt is None else wrt)
    ys, ws = sp.Matrix(problem.follower), sp.Matrix(wrt)
    # grad_y of L restricted to the active rows (inactive multipliers are zero on this set)
    L = lagrangian_expr(problem.f, [(m.symbol, m.constraint.expr) for m in rows])
    grad = sp.Matrix([sp.diff(L, y) for y in problem.follower])
    c = sp.Matrix([m.constraint.expr for m in rows]) if rows else sp.zeros(0, 1)
    J = c.jacobian(ys) if rows else sp.zeros(0, len(ys))
    Jw = c.jacobian(ws) if rows else sp.zeros(0, len(ws))
    m = len(rows)
    K = sp.Matrix.vstack(sp.Matrix.hstack(grad.jacobian(ys), J.T), sp.Matrix.hstack(J, sp.zeros(m, m)))
    return SensitivitySystem(kkt, rows, K, -sp.Matrix.vstack(grad.jacobian(ws), Jw), wrt)


@dataclass
class SymbolicSensitivity(LatexPrintable):
    """dy/dw and dlam/dw as SymPy matrices, valid where ``region`` holds.

    ``y`` and ``multipliers`` (every follower row: inequalities, then equalities) are the
    closed-form reply on the active set, or None when SymPy could not solve it (``implicit``:
    the derivatives are then in y and the multiplier symbols of :func:`kkt_system`).
    """

    problem: BilevelProblem
    dy_dx: sp.Matrix
    dlam_dx: sp.Matrix
    y: sp.Matrix | None
    multipliers: sp.Matrix | None
    conditions: list
    region: Any
    implicit: bool
    wrt: list

    def _latex(self, printer: Any) -> str:
        parts = [r"\frac{dy}{dz} = " + printer._print(self.dy_dx),
                 r"\frac{d\lambda}{dz} = " + printer._print(self.dlam_dx)]
        return r",\quad ".join(parts) + r"\quad \text{on } " + printer._print(self.region)


def _region(conditions: list) -> Any:
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


def symbolic_sensitivity(problem: BilevelProblem, active: Iterable[Hashable], wrt: Iterable[sp.Symbol],
                         near: Mapping[sp.Symbol, float] | None = None) -> SymbolicSensitivity:
    """Closed-form dy/dw, dlam/dw on one active set (see the module docstring).

    ``near`` holds numbers for the leader, the parameters, y and the multiplier symbols at the
    point of interest: when SymPy returns several branches, the one closest to it is taken.
    """
    system = sensitivity_system(problem, active=active, wrt=wrt)
    kkt, ys, ws = system.kkt, list(problem.follower), list(system.wrt)
    nu = system.multipliers
    rows = [m.constraint.expr for m in system.active]
    ineq = kkt.inequalities
    ng, nh = len(ineq), len(kkt.equalities)
    act = [next(i for i, m in enumerate(ineq) if m is a) for a in system.active[: len(system.active) - nh]]
    L = lagrangian_expr(problem.f, [(m.symbol, m.constraint.expr) for m in system.active])
    eqs = [sp.diff(L, y) for y in ys] + rows
    unknowns = ys + nu
    try:
        sols = sp.solve(eqs, unknowns, dict=True)
    except NotImplementedError:
        sols = []
    sols = [d for d in sols if all(u in d for u in unknowns)]
    if sols:
        if near:
            known = [u for u in unknowns if u in near]
            def dist(d: dict) -> float:
                vals = [complex(sp.N(d[u].subs(near))) for u in known]
                return float(np.linalg.norm(np.array(vals) - np.array([near[u] for u in known], dtype=float)))
            sol = min(sols, key=dist)
        else:
            sol = sols[0]
        yv = sp.Matrix([sp.simplify(sol[v]) for v in ys])
        nuv = sp.Matrix([sp.simplify(sol[v]) for v in nu]) if nu else sp.zeros(0, 1)
        dy = sp.simplify(yv.jacobian(ws))
        dnu = sp.simplify(nuv.jacobian(ws)) if nu else sp.zeros(0, len(ws))
        subs = dict(zip(ys, yv))
        conditions = [sp.simplify(ineq[i].constraint.expr.subs(subs)) > 0 for i in range(ng) if i not in act]
        conditions += [sp.simplify(nuv[k]) > 0 for k in range(len(act))]
        implicit = False
        lam_all = sp.zeros(ng + nh, 1)
        for k, i in enumerate(act):
            lam_all[i] = nuv[k]
        for k in range(nh):
            lam_all[ng + k] = nuv[len(act) + k]
    else:
        X = system.matrix.LUsolve(system.rhs)
        dy = sp.simplify(X[: len(ys), :])
        dnu = sp.simplify(-X[len(ys):, :])
        yv, lam_all, implicit = None, None, True
        conditions = [ineq[i].constraint.expr > 0 for i in range(ng) if i not in act]
        conditions += [ineq[i].symbol > 0 for i in act]
    dlam = sp.zeros(ng + nh, len(ws))
    for k, i in enumerate(act):
        dlam[i, :] = dnu[k, :]
    for k in range(nh):
        dlam[ng + k, :] = dnu[len(act) + k, :]
    return SymbolicSensitivity(problem, dy, dlam, yv, lam_all, conditions, _region(conditions), implicit, ws)


__all__ = ["KKTSystem", "Multiplier", "RelaxedSystem", "SensitivitySystem", "SymbolicSensitivity", "kkt_system",
           "is_symbolic", "lagrangian", "lagrangian_expr", "multiplier_symbol", "relaxed_system", "require_sympy",
           "sensitivity_system", "symbolic_sensitivity"]

"""``wb.latex(obj)``: paper-ready LaTeX for problems, KKT systems, relaxations, results.

A SymPy ``LatexPrinter`` subclass with one ``_print_<Class>`` per workbench object
(SymPy's dispatch: the printer picks the method by class name); the SymPy parts
are printed with ``self._print`` so the user's symbol names are kept and
multipliers get their constraint names via ``symbol_names``. Output uses only
``amsmath`` (``aligned``, ``bmatrix``, ``\\operatorname*``); the tests compile it
with ``pdflatex``.

Modes: ``"inline"``/``"plain"`` give the bare ``aligned`` block (to put inside
``$...$``), ``"equation"``/``"equation*"`` wrap it in that environment.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..errors import MethodError, NotDifferentiable
from ..reformulate import Relaxation
from ..status import FAILED
from .systems import KKTSystem, RelaxedSystem, SensitivitySystem, kkt_system
from .text import number, text, vector

MODES = ("inline", "plain", "equation", "equation*")
SCHEME_TITLES = {
    Relaxation.SCHOLTES: "Scholtes relaxation",
    Relaxation.FISCHER_BURMEISTER: "smoothed Fischer--Burmeister",
    Relaxation.KANZOW_SCHWARTZ: "Kanzow--Schwartz relaxation",
    Relaxation.PENALTY: "exact complementarity penalty",
}


def _aligned(lines: list[str]) -> str:
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


class WorkbenchLatexPrinter(LatexPrinter):
    """LaTeX printer that knows the workbench's objects (and delegates SymPy to its parent)."""

    printmethod = "_latex"

    # -- pieces -----------------------------------------------------------
    def _vars(self, syms) -> str:
        return ", ".join(self._print(s) for s in syms)

    def _paren(self, e) -> str:
        """``e`` in parentheses when it is a sum (so products with multipliers read right)."""
        return r"\left(" + self._print(e) + r"\right)" if isinstance(e, sp.Add) else self._print(e)

    def _relation(self, c) -> str:
        """A constraint as the user wrote it, e.g. ``y \\leq 1.5``."""
        return self._print(c.source)

    def _normalised(self, c) -> str:
        return self._print(c.expr) + (r" \geq 0" if c.kind == "ineq" else " = 0")

    def _tag(self, c) -> str:
        return "" if isinstance(c.name, int) else r" \quad " + text(f"({c.name})")

    def _objective(self, sense: str, syms, expr) -> str:
        op = r"\min" if sense == "min" else r"\max"
        return op + "_{" + self._vars(syms) + "} \\quad & " + self._print(expr)

    # -- problem ----------------------------------------------------------
    def _print_BilevelProblem(self, p) -> str:
        lines = [self._objective(p.upper_sense, p.leader, p.upper_objective_user)]
        first = True
        for c in p.upper_constraints:
            lines.append((r"\text{s.t.} \quad & " if first else "& ") + self._relation(c) + self._tag(c))
            first = False
        argop = r"\operatorname*{arg\,min}" if p.lower_sense == "min" else r"\operatorname*{arg\,max}"
        lines.append((r"\text{s.t.} \quad & " if first else "& ") + self._vars(p.follower)
                     + r" \in " + argop + "_{" + self._vars(p.follower) + r"} \; "
                     + self._print(p.lower_objective_user))
        for i, c in enumerate(p.lower_constraints):
            lead = r"& \qquad \text{s.t.} \; " if i == 0 else r"& \qquad \phantom{\text{s.t.}} \; "
            lines.append(lead + self._relation(c) + self._tag(c))
        if p.parameter_symbols:
            vals = ", ".join(self._print(s) + " = " + number(v) for s, v in p.parameter_values.items())
            lines.append(r"& \text{with } " + vals)
        return _aligned(lines)

    # -- follower KKT ---------------------------------------------------------
    def _print_KKTSystem(self, k: KKTSystem) -> str:
        p = k.problem
        args = self._vars(tuple(p.leader) + tuple(p.follower) + tuple(k.multipliers))
        L = self._print(p.f)
        for m in k.inequalities + k.equalities:
            L += " - " + self._print(m.symbol) + " " + self._paren(m.constraint.expr)
        lines = [r"\mathcal{L}\left(" + args + r"\right) &= " + L]
        if p.lower_sense == "max":
            lines.append(r"& \text{(the maximised follower objective enters with a minus sign)}")
        for y, e in zip(p.follower, k.stationarity):
            lines.append(r"\frac{\partial \mathcal{L}}{\partial " + self._print(y) + "} &= "
                         + self._print(e) + r" = 0")
        for m in k.inequalities:
            g = self._print(m.constraint.expr)
            lam = self._print(m.symbol)
            lines.append(r"0 &\leq " + g + r" \perp " + lam + r" \geq 0" + self._tag(m.constraint))
        for m in k.equalities:
            lines.append(self._normalised(m.constraint) + r" & \quad " + self._print(m.symbol)
                         + r" \in \mathbb{R}" + self._tag(m.constraint))
        return _aligned(lines)

    # -- relaxations ----------------------------------------------------------------
    def _print_Relaxation(self, scheme: Relaxation) -> str:
        s, lam, eps = r"s_i", r"\lambda_i", r"\varepsilon"
        body = {
            Relaxation.SCHOLTES: [f"& {s} \\geq 0, \\; {lam} \\geq 0, \\; {s}\\,{lam} \\leq {eps}"],
            Relaxation.FISCHER_BURMEISTER: [f"& {s} + {lam} - \\sqrt{{{s}^2 + {lam}^2 + 2{eps}^2}} = 0"],
            Relaxation.KANZOW_SCHWARTZ: [
                f"& {s} \\geq 0, \\; {lam} \\geq 0, \\; \\phi({s} - {eps}, {lam} - {eps}) \\leq 0",
                r"& \phi(a, b) = \begin{cases} a b & a + b \geq 0 \\ -\tfrac12 (a^2 + b^2) & a + b < 0 \end{cases}"],
            Relaxation.PENALTY: [f"& \\min \\; F + \\tfrac{{1}}{{{eps}}} \\textstyle\\sum_i {s}\\,{lam}, "
                                 f"\\quad {s} \\geq 0, \\; {lam} \\geq 0"],
        }[scheme]
        return _aligned([r"& \text{" + SCHEME_TITLES[scheme] + r"}, \; " + eps + r" \downarrow 0:"] + body)

    def _print_RelaxedSystem(self, r: RelaxedSystem) -> str:
        k, p, eps = r.kkt, r.problem, self._print(r.eps)
        F = self._print(p.upper_objective_user)
        if r.scheme is Relaxation.PENALTY and k.inequalities:
            pen = " + ".join(self._print(m.symbol) + " " + self._paren(m.constraint.expr)
                             for m in k.inequalities)
            sign = "+" if p.upper_sense == "min" else "-"
            F = F + f" {sign} \\frac{{1}}{{{eps}}} \\left(" + pen + r"\right)"
        op = r"\min" if p.upper_sense == "min" else r"\max"
        lines = [op + "_{" + self._vars(tuple(p.leader) + tuple(p.follower) + tuple(k.multipliers))
                 + r"} \quad & " + F]
        lines += [(r"\text{s.t.} \quad & " if i == 0 else "& ") + self._relation(c) + self._tag(c)
                  for i, c in enumerate(p.upper_constraints)]
        for y, e in zip(p.follower, k.stationarity):
            lines.append(r"& " + self._print(e) + r" = 0 \quad " + r"\text{(stationarity in } " + self._print(y) + r"\text{)}")
        for m in k.equalities:
            lines.append(r"& " + self._normalised(m.constraint) + self._tag(m.constraint))
        for m in k.inequalities:
            g, lam = self._paren(m.constraint.expr), self._print(m.symbol)
            lines.append(r"& " + self._print(m.constraint.expr) + r" \geq 0, \; " + lam + r" \geq 0"
                         + self._tag(m.constraint))
            if r.scheme is Relaxation.SCHOLTES:
                lines.append(f"& {g}\\, {lam} \\leq {eps}")
            elif r.scheme is Relaxation.FISCHER_BURMEISTER:
                lines.append(f"& {g} + {lam} - \\sqrt{{{g}^2 + {lam}^2 + 2 {eps}^2}} = 0")
            elif r.scheme is Relaxation.KANZOW_SCHWARTZ:
                lines.append(f"& \\phi\\left({g} - {eps}, \\; {lam} - {eps}\\right) \\leq 0")
        if r.scheme is Relaxation.KANZOW_SCHWARTZ and k.inequalities:
            lines.append(r"& \phi(a, b) = \begin{cases} a b & a + b \geq 0 \\ "
                         r"-\tfrac12 (a^2 + b^2) & a + b < 0 \end{cases}")
        lines.append(r"& " + text(SCHEME_TITLES[r.scheme]) + r", \; " + eps + r" \downarrow 0")
        return _aligned(lines)

    # -- sensitivity -------------------------------------------------------------
    def _print_SensitivitySystem(self, s: SensitivitySystem) -> str:
        p = s.problem
        nu = [self._print(m.symbol) for m in s.active]
        unknowns = []
        for name in [self._print(y) for y in p.follower] + nu:
            unknowns.append(" & ".join(r"\frac{\partial " + name + r"}{\partial " + self._print(w) + "}"
                                       for w in s.wrt))
        unknown = r"\begin{bmatrix} " + r" \\ ".join(unknowns) + r" \end{bmatrix}"
        generic = (r"\begin{bmatrix} \nabla^2_{yy} \mathcal{L} & -\nabla_y c_{\mathcal{A}}^{\top} \\ "
                   r"\nabla_y c_{\mathcal{A}} & 0 \end{bmatrix} \begin{bmatrix} \partial y \\ "
                   r"\partial \nu_{\mathcal{A}} \end{bmatrix} &= -\begin{bmatrix} \nabla^2_{yx} \mathcal{L} \\ "
                   r"\nabla_x c_{\mathcal{A}} \end{bmatrix}")
        concrete = self._print(s.matrix) + " " + unknown + " &= " + self._print(s.rhs)
        act = ", ".join(nu) if nu else r"\emptyset"
        return _aligned([generic, concrete, r"& \text{multipliers of active constraints: } " + act])

    def _print_Sensitivity(self, s) -> str:
        """workbench.sensitivity's result: its block system at the active set, then the numbers."""
        from .systems import sensitivity_system
        r = s.response
        active = [n for n, a in zip(r.g_names, r.active) if a]
        system = sensitivity_system(s.problem, active=active, wrt=s.wrt_names)
        try:
            dy = np.asarray(s.dy_dx, float)
            kink = ""
        except NotDifferentiable as why:  # a kink: no two-sided derivative, say so and give the sides
            dy = np.full((len(s.problem.follower), len(s.wrt_names)), np.nan)
            kink = f"; kink at {why.constraints}" + (f", one-sided dy: {why.one_sided}" if why.one_sided else "")
        mat = sp.Matrix(dy.shape[0], dy.shape[1], lambda i, j: sp.Float(dy[i, j], 6) if np.isfinite(dy[i, j])
                        else sp.Symbol(r"\text{undefined}"))
        lines = [self._print_SensitivitySystem(system),
                 r"\frac{\partial y^*}{\partial (" + self._vars(s.wrt_names) + r")} &= " + self._print(mat)
                 + r" \quad " + text(f"(status: {s.status}{kink})")]
        return _aligned(lines)

    # -- results and certificates -----------------------------------------------
    def _print_Certificate(self, c) -> str:
        verdict = r"\text{passed}" if c.passed else r"\text{failed}"
        lines = [r"\text{certificate} &: " + verdict,
                 r"f(x^*, y^*) - \varphi(x^*) &= " + number(c.value_gap)
                 + r" \quad (\varphi(x^*) = " + number(c.phi) + ")",
                 r"\text{follower infeasibility} &= " + number(c.lower_infeasibility),
                 r"\text{leader infeasibility} &= " + number(c.upper_infeasibility),
                 r"\max_i |\min(g_i, \lambda_i)| &= " + number(c.complementarity),
                 r"\text{follower re-solves} &: " + f"{c.starts_succeeded}/{c.starts_used}"
                 + (r" \; \text{(follower convex)}" if c.follower_convex else "")]
        lines += [r"& " + text("reason: " + r) for r in c.reasons]
        return _aligned(lines)

    def _print_BilevelResult(self, r) -> str:
        p = r.problem
        how = r.method + (f"/{r.relaxation}" if r.relaxation else "")
        head = r"\text{status} &: " + text(f"{r.status} ({how}, {r.time_s:.3g} s)")
        if r.x is None or r.status in FAILED:
            return _aligned([head, r"& " + text(f"{r._solver_text()}. {r.message}".strip())])
        lines = [head]
        lines += [self._print(s) + "^* &= " + number(v) for s, v in zip(p.leader, r.x)]
        lines += [self._print(s) + "^* &= " + number(v) for s, v in zip(p.follower, r.y)]
        lines.append(r"F(x^*, y^*) &= " + number(r.upper_value))
        lines.append(r"f(x^*, y^*) &= " + number(r.lower_value))
        k = kkt_system(p)
        mults = list(r.multipliers.values())
        for m, v in zip(k.inequalities + k.equalities, mults):
            lines.append(self._print(m.symbol) + " &= " + number(v))
        body = _aligned(lines)
        if r.certificate is not None:
            body = _aligned([body + r" \qquad " + self._print(r.certificate)])
        return body

    def _print_ndarray(self, a: np.ndarray) -> str:
        return vector(np.asarray(a, float).reshape(-1))


def latex(obj: Any, mode: str = "equation*", **settings: Any) -> str:
    """Paper-ready LaTeX of a workbench object (or any SymPy expression).

    Parameters
    ----------
    obj : BilevelProblem, KKTSystem, RelaxedSystem, Relaxation, SensitivitySystem,
        BilevelResult, Certificate or a SymPy expression.
    mode : "inline"/"plain" (bare ``aligned`` block), "equation" or "equation*".
    settings : passed to SymPy's ``LatexPrinter`` (e.g. ``symbol_names``).

    Examples
    --------
    >>> import sympy as sp, workbench as wb
    >>> x, y = sp.symbols("x y", real=True)
    >>> p = wb.BilevelProblem([x], [y], x**2 + y, (y - x)**2, lower_constraints=[wb.named("cap", y <= 1)])
    >>> print(wb.latex(wb.display.kkt_system(p), mode="plain").splitlines()[3])
    0 &\\leq 1 - y \\perp \\lambda_{cap} \\geq 0 \\quad \\text{(cap)}
    """
    if mode not in MODES:
        raise MethodError(f"latex mode must be one of {MODES}, got {mode!r}")
    if type(obj).__name__ == "VectorBilevelProblem":
        raise MethodError("a VectorBilevelProblem holds CasADi blocks, not SymPy expressions, so it has no "
                          "LaTeX form; declare a small instance with wb.BilevelProblem to print its equations")
    names = dict(settings.pop("symbol_names", {}) or {})
    problem = getattr(obj, "problem", None) or (obj if type(obj).__name__ == "BilevelProblem" else None)
    if problem is not None and hasattr(problem, "g"):
        names = {**kkt_system(problem).symbol_names, **names}
    names.setdefault(sp.Symbol("varepsilon", positive=True), r"\varepsilon")
    printer = WorkbenchLatexPrinter({"symbol_names": names, **settings})
    body = printer.doprint(obj)
    if mode in ("inline", "plain"):
        return body
    return "\\begin{" + mode + "}\n" + body + "\n\\end{" + mode + "}"


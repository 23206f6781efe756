"""wb.latex: paper-ready LaTeX that compiles with pdflatex and says the right mathematics.

Choice of check (issue 6): every rendering is compiled with ``pdflatex`` and a
plain ``amsmath``/``amssymb`` preamble (Debian's texlive-latex-base, installed by
.ci/browser-deps.sh). The test fails if pdflatex is missing, rather than falling
back to a weaker parse: SymPy's ``parse_latex`` cannot read ``aligned`` blocks.
"""
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sympy as sp

import workbench as wb
from workbench.display import kkt_system, relaxed_system, sensitivity_system
from workbench.errors import MethodError, ModelError
from workbench.result import BilevelResult
from workbench.status import SolverStats

x, x2, y, z, a = sp.symbols("x x2 y z a", real=True)


def capacity_problem():
    """F = (x-1)^2 + (y-2)^2, follower min (y-x)^2/2 s.t. y <= a (capacity), y >= 0; a = 1.5."""
    return wb.BilevelProblem(
        leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 2) ** 2,
        upper_constraints=[x >= 0, x <= 3], lower_objective=(y - x) ** 2 / 2,
        lower_constraints=[wb.named("capacity", y <= a), y >= 0], parameters={a: 1.5}, name="capacity")


def max_problem():
    """A maximising follower with an equality whose name needs escaping (max_flow)."""
    return wb.BilevelProblem(
        leader=[x, x2], follower=[y, z], upper_objective=wb.Maximize(x * y + x2 * z),
        upper_constraints={"budget": x + x2 <= 1},
        lower_objective=wb.Maximize(-(y - x) ** 2 - (z - x2) ** 2),
        lower_constraints=[wb.named("max_flow", sp.Eq(y + z, 1)), y >= 0, z >= 0], name="max & flow")


def vector_problem():
    """A CasADi-built declaration: min (x + y)^2 over x, follower min (y - x)^2 (y = x)."""
    import casadi as ca
    from workbench.model.vector import VectorBilevelProblem
    return VectorBilevelProblem(1, 1, upper_objective=lambda x_, y_, p_: ca.sumsqr(x_ + y_),
                                lower_objective=lambda x_, y_, p_: ca.sumsqr(y_ - x_))


def compile_latex(blocks: list[str]) -> subprocess.CompletedProcess:
    exe = shutil.which("pdflatex")
    assert exe, "pdflatex is required for this test: apt-get install -y texlive-latex-base (.ci/browser-deps.sh)"
    doc = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
           + "\n\n".join(blocks) + "\n\\end{document}\n")
    with tempfile.TemporaryDirectory() as d:
        Path(d, "doc.tex").write_text(doc)
        return subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=d,
                              capture_output=True, text=True, timeout=120)


def test_kkt_stationarity_matches_hand_derivation():
    # L = (y-x)^2/2 - lam_cap (a - y) - lam_1 y  =>  dL/dy = y - x + lam_cap - lam_1 (by hand)
    k = kkt_system(capacity_problem())
    lam_cap, lam_1 = k.multipliers
    assert sp.simplify(k.stationarity[0] - (y - x + lam_cap - lam_1)) == 0
    text = wb.latex(k, mode="plain")
    assert r"\lambda_{capacity}" in text and r"\lambda_{1}" in text
    assert r"\perp" in text and r"\frac{\partial \mathcal{L}}{\partial y}" in text


def test_sensitivity_system_solves_to_hand_derivative():
    # With capacity active: y = a, and stationarity y - x + lam = 0 gives lam = x - a,
    # so dy/dx = 0 and dlam/dx = 1 (by hand). The symmetric block system [[L_yy, J^T], [J, 0]]
    # (J = d(a - y)/dy = -1) in the unknowns (dy/dx, -dlam/dx) must give the same.
    s = sensitivity_system(capacity_problem(), active=["capacity"])
    assert s.matrix == sp.Matrix([[1, -1], [-1, 0]])
    sol = s.matrix.LUsolve(s.rhs)
    assert list(sol) == [0, -1]
    assert r"\frac{\partial \lambda_{capacity}}{\partial x}" in wb.latex(s)


def test_problem_latex_keeps_user_names_and_sense():
    text = wb.latex(max_problem(), mode="plain")
    assert r"\max_{x, x_{2}}" in text and r"\operatorname*{arg\,max}_{y, z}" in text
    assert r"\text{(max\_flow)}" in text and r"\text{(budget)}" in text
    k = wb.latex(kkt_system(max_problem()))
    assert r"\mu_{\text{max\_flow}}" in k


def test_every_rendering_compiles_with_pdflatex():
    p, q = capacity_problem(), max_problem()
    r = p.solve()
    failed = BilevelResult(status="infeasible", problem=p, method="kkt", solver_stats=SolverStats("ipopt", "Infeasible_Problem_Detected"),
                           message="no start produced a solution (50% of runs)")
    objs = [p, q, kkt_system(p), kkt_system(q), sensitivity_system(p, active=["capacity"]), sensitivity_system(q),
            r, r.certificate, failed, *list(wb.Relaxation),
            p.sensitivity({x: 2.0}), p.sensitivity({x: 1.5}, wrt="parameters"),
            p.sensitivity({x: 2.0}).system(), p.sensitivity({x: 2.0}).symbolic()]
    objs += [relaxed_system(p, s) for s in wb.Relaxation] + [relaxed_system(q, s) for s in wb.Relaxation]
    objs.append(vector_problem().sensitivity([0.5]))  # no SymPy: the numbers only
    blocks = [wb.latex(o, mode="equation*") for o in objs] + [wb.latex(p, mode="equation")]
    blocks.append("$" + wb.latex(p, mode="inline") + "$")
    out = compile_latex(blocks)
    assert out.returncode == 0, out.stdout[-3000:]


def test_sensitivity_result_prints_its_system_and_numbers():
    # at x = 2 the capacity (a = 1.5) is active: y* = a, dy/dx = 0 (hand); at x = a = 1.5 the
    # capacity is weakly active and dy/da has one-sided values 1 and 0, so it is undefined
    p = capacity_problem()
    text = wb.latex(p.sensitivity({x: 2.0}))
    assert r"\lambda_{capacity}" in text and r"\frac{\partial y^*}{\partial (x)}" in text
    assert "undefined" in wb.latex(p.sensitivity({x: 1.5}, wrt="parameters"))


def test_repr_latex_hooks_render_through_display():
    p = capacity_problem()
    r = p.solve()
    for obj in (p, r, r.certificate, kkt_system(p), relaxed_system(p, "penalty")):
        s = obj._repr_latex_()
        assert s.startswith("$\\displaystyle \\begin{aligned}") and s.endswith("$")
    # x* = y* = 1.5 by hand: F = (x-1)^2 + (x-2)^2 falls until y = x hits the capacity 1.5
    line = next(t for t in r._repr_latex_().splitlines() if t.startswith("x^*"))
    assert abs(float(line.split("=")[1].strip(" \\")) - 1.5) < 1e-4


def test_every_object_prints_itself_the_same_way_in_jupyter_and_wb_latex():
    p = capacity_problem()
    r = p.solve()
    s = p.sensitivity({x: 2.0})
    objs = [p, r, r.certificate, s, s.system(), s.symbolic(), kkt_system(p), relaxed_system(p, "penalty"),
            sensitivity_system(p), *list(wb.Relaxation), vector_problem().sensitivity([0.5])]
    for obj in objs:
        assert obj._repr_latex_() == "$\\displaystyle " + wb.latex(obj, mode="inline") + "$", type(obj)


def test_one_table_of_relaxation_schemes():
    from workbench.reformulate import SCHEMES
    from workbench.solve.homotopy import Homotopy
    from workbench.reformulate import Bilevel2MPCC, Chain, MPCCRelax
    from workbench.lower import lower
    assert set(SCHEMES) == set(wb.Relaxation)
    p = capacity_problem()
    for scheme in wb.Relaxation:
        row = SCHEMES[scheme]
        # the title and the pair's LaTeX term are what the enum and the relaxed system print
        assert row.title in wb.latex(scheme) and row.latex_term("s_i", r"\lambda_i", r"\varepsilon") in wb.latex(scheme)
        assert row.title in wb.latex(relaxed_system(p, scheme))
        relaxed, _ = Chain([Bilevel2MPCC(), MPCCRelax(scheme)]).apply(lower(p))
        assert Homotopy(relaxed).schedule == row.default_schedule
    # the penalty's schedule stops at 1e-6, the others at 1e-9 (the homotopy's historical defaults)
    assert SCHEMES[wb.Relaxation.PENALTY].default_schedule[-1] == pytest.approx(1e-6)
    assert SCHEMES[wb.Relaxation.SCHOLTES].default_schedule[-1] == pytest.approx(1e-9)


def test_bad_arguments_raise_typed_errors():
    p = capacity_problem()
    with pytest.raises(MethodError, match="latex mode"):
        wb.latex(p, mode="display")
    with pytest.raises(ModelError, match="nope"):
        sensitivity_system(p, active=["nope"])
    with pytest.raises(MethodError, match="unknown relaxation"):
        relaxed_system(p, "smooth")
    import casadi as ca
    from workbench.model.vector import VectorBilevelProblem
    q = VectorBilevelProblem(1, 1, upper_objective=lambda x_, y_, p_: ca.sumsqr(x_ + y_),
                             lower_objective=lambda x_, y_, p_: ca.sumsqr(y_ - x_))
    with pytest.raises(MethodError, match="no LaTeX form"):
        wb.latex(q)

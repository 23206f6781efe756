"""Source of the notebook templates; ``python -m workbench.templates.build`` writes them.

Each template is a small, runnable model of its family (a user edits the
declaration cell) followed by the same workflow: show the problem and the
follower's KKT system, solve, certify, differentiate, explore. The .ipynb files
next to this module (package data) and the user-visible copies in the
repository's top-level ``templates/`` are both written from here; a test checks
that they are identical and that every template runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NAME = "__MODEL_NAME__"  # replaced by ``python -m workbench new`` with the notebook's file stem

DECLARATIONS: dict[str, tuple[str, str, str]] = {
    "stackelberg": (
        "Stackelberg competition",
        "A leader firm sets its quantity $q_1$ first; the follower firm answers with $q_2$ maximising its "
        "profit at the price $a - q_1 - q_2$. With $a = 10$, unit cost $c = 2$: $q_2^* = (a - c - q_1)/2$, "
        "so the leader maximises $q_1 (a - c - q_1)/2$: $q_1^* = 4$, $q_2^* = 2$, leader profit $8$.",
        """q1, q2 = sp.symbols('q1 q2', real=True)
a, c = sp.symbols('a c', real=True)
price = a - q1 - q2
p = wb.BilevelProblem(
    leader=[q1], follower=[q2],
    upper_objective=wb.Maximize((price - c) * q1),
    upper_constraints=[q1 >= 0, q1 <= 10],
    lower_objective=wb.Maximize((price - c) * q2),
    lower_constraints=[wb.named('nonneg', q2 >= 0)],
    parameters={a: 10, c: 2}, start={q1: 1}, name='NAME')
expected = {'upper_value': 8.0, q1: 4.0, q2: 2.0}""",
    ),
    "toll": (
        "Toll setting",
        "An operator sets a toll $T$ on road 1; one unit of traffic splits into $y_1, y_2$ so that both "
        "roads cost the same (Wardrop equilibrium, the minimum of the Beckmann potential). Road costs are "
        "$1 + T + y_1$ and $2 + 2 y_2$: $y_1^* = (3 - T)/3$, revenue $T (3 - T)/3$ is largest at "
        "$T = 3/2$ with revenue $3/4$.",
        """T, y1, y2 = sp.symbols('T y1 y2', real=True)
p = wb.BilevelProblem(
    leader=[T], follower=[y1, y2],
    upper_objective=wb.Maximize(T * y1),
    upper_constraints=[T >= 0, T <= 5],
    lower_objective=(1 + T) * y1 + y1**2 / 2 + 2 * y2 + y2**2,   # Beckmann potential
    lower_constraints=[wb.named('demand', sp.Eq(y1 + y2, 1)), wb.named('road1', y1 >= 0),
                       wb.named('road2', y2 >= 0)],
    start={T: 1}, name='NAME')
expected = {'upper_value': 0.75, T: 1.5, y1: 0.5}""",
    ),
    "hyperparameter": (
        "Hyperparameter tuning",
        "The leader picks a ridge penalty $\\lambda$ to minimise the validation loss; the follower fits the "
        "weights $w$ on the training data. The data are generated with seed 0; the check compares with a "
        "fine grid search over $\\lambda$ using NumPy's closed-form ridge solution.",
        """rng = np.random.default_rng(0)
n_features = 3
w_true = np.array([1.0, -0.5, 0.25])
A_train = rng.normal(size=(10, n_features)); b_train = A_train @ w_true + 1.5 * rng.normal(size=10)
A_val = rng.normal(size=(10, n_features)); b_val = A_val @ w_true + 1.5 * rng.normal(size=10)
lam = sp.Symbol('lam', real=True)
w = sp.symbols(f'w0:{n_features}', real=True)
W = sp.Matrix(w)
def loss(A, b):
    r = sp.Matrix(A) * W - sp.Matrix(b)
    return (r.T * r)[0] / len(b)
p = wb.BilevelProblem(
    leader=[lam], follower=list(w),
    upper_objective=loss(A_val, b_val),
    upper_constraints=[lam >= 1e-3, lam <= 10],
    lower_objective=loss(A_train, b_train) + lam * (W.T * W)[0],
    start={lam: 1}, name='NAME')
grid = np.linspace(1e-3, 10, 4001)
def val_loss(l):
    wl = np.linalg.solve(A_train.T @ A_train / 10 + l * np.eye(n_features), A_train.T @ b_train / 10)
    return np.mean((A_val @ wl - b_val) ** 2)
best = min(grid, key=val_loss)
expected = {'upper_value': val_loss(best), lam: best}""",
    ),
    "design": (
        "Engineering design",
        "The leader chooses two spring stiffnesses $k_1, k_2$ (material cost $k_1 + k_2$) so that the tip "
        "of the two springs in series under load $P = 1$ moves at most $\\delta = 1/2$; the follower is "
        "the structure settling at minimum potential energy. The tip moves $P (1/k_1 + 1/k_2)$, so the "
        "cheapest design is $k_1 = k_2 = 2P/\\delta = 4$ with cost $8$.",
        """k1, k2, u1, u2 = sp.symbols('k1 k2 u1 u2', real=True)
P, delta = sp.symbols('P delta', real=True)
energy = k1 * u1**2 / 2 + k2 * (u2 - u1)**2 / 2 - P * u2
p = wb.BilevelProblem(
    leader=[k1, k2], follower=[u1, u2],
    upper_objective=k1 + k2,
    upper_constraints=[k1 >= 0.5, k1 <= 10, k2 >= 0.5, k2 <= 10, wb.named('tip', u2 <= delta)],
    lower_objective=energy,
    parameters={P: 1, delta: 0.5}, start={k1: 5, k2: 5}, name='NAME')
expected = {'upper_value': 8.0, k1: 4.0, k2: 4.0}""",
    ),
    "market": (
        "A producer paid the market price",
        "The market operator (follower) clears demand $d = 10$ at least bid cost from the leader's offer "
        "$x$ per unit (capacity $K = 8$) and a competitor bidding $c = 5$ (capacity $C = 4$). The leader is "
        "paid the clearing price, the multiplier of the balance constraint: `wb.multiplier('balance')` "
        "($\\mu_{balance}$, the shadow price of demand). For $x < 5$ the leader sells $8$ at the price $5$ "
        "(profit $(5 - 2) 8 = 24$ with unit cost $2$); for $x > 5$ the competitor runs at capacity, the "
        "leader sells $6$ at its own offer: profit $6 (x - 2)$, largest at the offer cap $x = 20$: $108$.",
        """x = sp.Symbol('x', real=True)
qL, qC = sp.symbols('q_L q_C', real=True)
d, c = sp.symbols('d c', real=True)
price = wb.multiplier('balance')          # the follower's multiplier of the constraint named 'balance'
p = wb.BilevelProblem(
    leader=[x], follower=[qL, qC],
    upper_objective=wb.Maximize((price - 2) * qL),
    upper_constraints=[x >= 0, x <= 20],
    lower_objective=x * qL + c * qC,
    lower_constraints=[wb.named('balance', sp.Eq(qL + qC, d)), wb.named('cap_L', qL <= 8), qL >= 0,
                       wb.named('cap_C', qC <= 4), qC >= 0],
    parameters={d: 10, c: 5}, name='NAME')
expected = {'upper_value': 108.0, x: 20.0, qL: 6.0}""",
    ),
    "generic": (
        "A generic bilevel problem",
        "Replace the declaration with your own. Here: the follower tracks the leader, $y^*(x) = "
        "\\min(x, 3/2)$ (capacity), and the leader minimises $(x - 1)^2 + (y - 2)^2$: the optimum is "
        "$x = y = 3/2$ with $F = 1/2$.",
        """x, y = sp.symbols('x y', real=True)
cap = sp.Symbol('cap', real=True)
p = wb.BilevelProblem(
    leader=[x], follower=[y],
    upper_objective=(x - 1)**2 + (y - 2)**2,
    upper_constraints=[x >= 0, x <= 3],
    lower_objective=(y - x)**2 / 2,
    lower_constraints=[wb.named('capacity', y <= cap), y >= 0],
    parameters={cap: 1.5}, name='NAME')
expected = {'upper_value': 0.5, x: 1.5, y: 1.5}""",
    ),
}


WORKFLOW = [
    ("markdown", "## The problem, as the workbench reads it\n\nThe declaration renders as LaTeX; so does the "
                 "follower's KKT system (multipliers are named after their constraints)."),
    ("code", "p"),
    ("code", "wb.display.kkt_system(p)"),
    ("markdown", "## Solve and certify\n\n`p.solve()` goes through the follower's KKT conditions; the "
                 "certificate re-solves the follower at the leader's point."),
    ("code", "r = p.solve()\nprint(r.summary())\nr"),
    ("code", "assert r.status == 'optimal', r.summary()\nassert r.certificate.passed\n"
             "assert abs(r.upper_value - expected['upper_value']) < 1e-4 * (1 + abs(expected['upper_value']))\n"
             "point = {**r.leader, **r.follower}\n"
             "for s, v in expected.items():\n"
             "    if s != 'upper_value':\n"
             "        assert abs(point[s] - v) < 1e-3 * (1 + abs(v)), (s, point[s], v)"),
    ("markdown", "## Differentiate\n\nHow the follower's reply moves with the leader's decision, and the "
                 "gradient of the leader's objective through the reply (the hypergradient)."),
    ("code", "s = r.sensitivity()\nprint(s.status)\nprint('dy/dx =', s.dy_dx)\nprint('hypergradient =', "
             "s.hypergradient)"),
    ("markdown", "## Explore\n\nMove a slider: the reply, multipliers, active set and certificate update."),
    ("code", "wb.explore(p)"),
]


def template_notebook(kind: str) -> nbformat.NotebookNode:
    """The template notebook of one family (with the name placeholder)."""
    title, story, declaration = DECLARATIONS[kind]
    cells = [new_markdown_cell(f"# {title}: {NAME}\n\n{story}\n\nEdit the declaration below; the rest of the "
                               "notebook is the standard workflow."),
             new_code_cell("import numpy as np\nimport sympy as sp\nimport workbench as wb"),
             new_code_cell(declaration.replace("'NAME'", f"'{NAME}'"))]
    cells += [new_markdown_cell(src) if kind_ == "markdown" else new_code_cell(src) for kind_, src in WORKFLOW]
    for i, cell in enumerate(cells):
        cell.id = f"{kind}-{i}"  # stable ids: rebuilding gives identical files
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC),
                                             "language_info": {"name": "python"}})
    return nb


def write_all(*directories: Path) -> list[Path]:
    """Write every template into each directory (package and top-level copies)."""
    out = []
    for kind in DECLARATIONS:
        nb = template_notebook(kind)
        for d in directories:
            d.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, d / f"{kind}.ipynb")
            out.append(d / f"{kind}.ipynb")
    return out


if __name__ == "__main__":
    targets = [HERE] + [Path(a) for a in sys.argv[1:]]
    for path in write_all(*targets):
        print(path)

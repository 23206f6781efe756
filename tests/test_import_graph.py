"""The stages import one way: model -> lower -> reformulate -> solve -> certify -> sensitivity ->
analysis -> display, with routes (and the tools around them) on top. Read with Python's ``ast``.

- A module-level import never goes to a later stage (no upward imports).
- Module-level imports between modules have no cycles.
- Imports inside functions may go up only from the user-facing facades, which hand work to the
  stages (``BilevelProblem.solve`` calls a route, a result plots itself) and from the one
  printing mixin (``workbench/printing.py``), which asks the display stage for LaTeX at print time.
"""
from __future__ import annotations

import ast
import graphlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "workbench"
ORDER = ["errors", "values", "status", "printing", "result", "model", "bolib", "lower", "reformulate", "solve", "certify",
         "sensitivity", "analysis", "display", "search", "parallel", "routes", "bench", "templates", "demo", "__main__"]
FACADES = {"workbench.model.base", "workbench.model.problem", "workbench.model.vector", "workbench.result", "workbench.printing"}


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports():
    """(module, target, at_module_level) for every import of a workbench module."""
    out = []
    for path in ROOT.rglob("*.py"):
        mod = _module(path)
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        top = set()
        type_only = set()
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                type_only.update(ast.walk(node))  # annotations only: never executed
                continue
            top.add(node)
            if isinstance(node, (ast.If, ast.Try)):
                top.update(node.body)
        for node in ast.walk(tree):
            if node in type_only:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                    if not node.module:  # from . import a, b: each name may be a submodule
                        targets = [targets[0] + "." + a.name for a in node.names]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith("workbench"):
                    out.append((mod, t, node in top))
    return out


def _stage(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(mod: str) -> int:
    return ORDER.index(_stage(mod)) if _stage(mod) in ORDER else -1


def test_every_stage_is_ranked():
    stages = {_stage(m) for m, _, _ in _imports()} - {""}
    assert stages <= set(ORDER), f"place these packages in ORDER: {sorted(stages - set(ORDER))}"


@pytest.mark.parametrize("top_level", [True, False])
def test_no_upward_imports(top_level):
    bad = sorted({(m, t) for m, t, top in _imports() if top == top_level and _stage(t) and _stage(m) and _stage(m) != _stage(t)
                  and _rank(t) > _rank(m) and (top_level or m not in FACADES)})
    assert not bad, "upward imports (a stage importing a later one): " + ", ".join(f"{m} -> {t}" for m, t in bad)


def test_no_import_cycles_at_module_level():
    known = {_module(p) for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for m, t, top in _imports():
        # a package's __init__ re-exporting its submodules is not a cycle with them
        if top and t in known and m != t and t != m.rsplit(".", 1)[0]:
            graph.setdefault(m, set()).add(t)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")

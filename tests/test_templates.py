"""Templates: one source (workbench/templates/build.py), identical copies, and every one runs.

Each template asserts its own answer in a cell; the expected numbers are derived by
hand in the template's markdown (Cournot q1 = 4, q2 = 2; Wardrop toll T = 3/2; series
springs k1 = k2 = 4) or by an independent NumPy grid search (ridge penalty).
"""
import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from workbench.__main__ import main
from workbench.templates import KINDS, PLACEHOLDER, TemplateError, instantiate, load
from workbench.templates.build import DECLARATIONS, template_notebook

ROOT = Path(__file__).resolve().parents[1]


def test_one_source_two_identical_copies():
    assert tuple(DECLARATIONS) == KINDS
    for kind in KINDS:
        built = nbformat.writes(template_notebook(kind))
        packaged = (ROOT / "workbench" / "templates" / f"{kind}.ipynb").read_text()
        visible = (ROOT / "templates" / f"{kind}.ipynb").read_text()
        assert packaged.strip() == built.strip(), f"run: python -m workbench.templates.build templates ({kind})"
        assert visible == packaged
        assert load(kind).metadata["kernelspec"]["name"] == "python3"


def test_cli_new_writes_a_named_notebook(tmp_path, capsys):
    target = tmp_path / "my_model.ipynb"
    assert main(["new", "stackelberg", str(target)]) == 0
    text = target.read_text()
    assert "my_model" in text and PLACEHOLDER not in text
    assert main(["new", "stackelberg", str(target)]) == 2          # exists: refuse
    assert "exists" in capsys.readouterr().err
    assert main(["new", "nonsense", str(tmp_path / "x.ipynb")]) == 2
    assert "unknown template 'nonsense'" in capsys.readouterr().err
    with pytest.raises(TemplateError, match="ipynb"):
        instantiate("toll", tmp_path / "model.py")
    assert instantiate("toll_setting", tmp_path / "t.ipynb").exists()  # alias


def test_every_template_runs(tmp_path, monkeypatch):
    """Instantiate all templates and run them back to back in one kernel (one start-up, not five)."""
    # the kernel imports workbench from this checkout even when it is not pip-installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    combined = nbformat.v4.new_notebook(metadata=load("generic").metadata)
    for kind in KINDS:
        nb = nbformat.read(instantiate(kind, tmp_path / f"{kind}_model.ipynb"), as_version=4)
        combined.cells += nb.cells + [nbformat.v4.new_code_cell(f"print('template {kind} ran')")]
    for i, cell in enumerate(combined.cells):
        cell.id = f"cell-{i}"
    try:
        nbclient.NotebookClient(combined, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    except nbclient.exceptions.CellExecutionError as exc:
        ran = [c.outputs[0]["text"] for c in combined.cells if c.source.startswith("print('template")
               and c.get("outputs")]
        raise AssertionError(f"a template failed after {ran}: {exc}") from None
    outputs = [o for c in combined.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    latex = [o for o in outputs if "text/latex" in o.get("data", {})]
    assert len(latex) >= 3 * len(KINDS)  # problem, KKT system and result of each template
    assert all(o["data"]["text/latex"].startswith("$\\displaystyle") for o in latex)
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == len(KINDS)  # one explorer each

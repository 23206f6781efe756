"""Notebook templates, one per family: ``python -m workbench new stackelberg my_model.ipynb``.

The ``*.ipynb`` files here are package data written by :mod:`workbench.templates.build`.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import nbformat

from ..errors import WorkbenchError

PLACEHOLDER = "__MODEL_NAME__"
KINDS = ("stackelberg", "toll", "hyperparameter", "design", "market", "generic")
ALIASES = {"toll_setting": "toll", "hyperparameter_tuning": "hyperparameter", "hyperparameters": "hyperparameter",
           "engineering_design": "design"}


class TemplateError(WorkbenchError, ValueError):
    """An unknown template name, or a target notebook that already exists."""


def resolve(kind: str) -> str:
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise TemplateError(f"unknown template {kind!r}; choose one of {list(KINDS)} "
                            f"(aliases: {sorted(ALIASES)})")
    return kind


def load(kind: str) -> nbformat.NotebookNode:
    """The packaged template notebook (name placeholder still in it)."""
    text = resources.files(__name__).joinpath(f"{resolve(kind)}.ipynb").read_text(encoding="utf-8")
    return nbformat.reads(text, as_version=4)


def instantiate(kind: str, path: str | Path, name: str | None = None, overwrite: bool = False) -> Path:
    """Write a new notebook from template ``kind`` to ``path``; the model is named after the file."""
    path = Path(path)
    if path.suffix != ".ipynb":
        raise TemplateError(f"{path} should end in .ipynb")
    if path.exists() and not overwrite:
        raise TemplateError(f"{path} exists; choose another name or pass --force to overwrite it")
    nb = load(kind)
    model = name or path.stem
    for cell in nb.cells:
        cell.source = cell.source.replace(PLACEHOLDER, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path

"""Command line: ``python -m workbench new <template> <notebook.ipynb>`` and ``python -m workbench templates``."""
from __future__ import annotations

import argparse
import sys

from .templates import ALIASES, KINDS, TemplateError, instantiate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="write a notebook from a template")
    new.add_argument("template", help=f"one of {', '.join(KINDS)}")
    new.add_argument("path", help="the notebook to write, e.g. my_model.ipynb")
    new.add_argument("--name", help="model name (default: the notebook's file name)")
    new.add_argument("--force", action="store_true", help="overwrite an existing notebook")
    sub.add_parser("templates", help="list the templates")
    args = parser.parse_args(argv)
    if args.command == "templates":
        for k in KINDS:
            print(k)
        print("aliases: " + ", ".join(f"{a} -> {k}" for a, k in sorted(ALIASES.items())))
        return 0
    try:
        path = instantiate(args.template, args.path, name=args.name, overwrite=args.force)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}; open it in JupyterLab and edit the declaration cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Progress of long work (compare, sweeps, multistart) in the notebook and on the terminal.

In a Jupyter kernel a small ipywidgets bar with a label is shown; elsewhere one
line on stderr is rewritten in place. Both are silenced with ``show=False``.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class Progress:
    """Count finished steps of ``total``; ``update(label)`` after each one."""

    def __init__(self, total: int, desc: str = "", show: bool = True):
        self.total, self.desc, self.done, self.show = int(total), desc, 0, show
        self.t0 = time.monotonic()
        self.bar = self.label = None
        if show and _in_kernel():
            import ipywidgets as w
            from IPython.display import display
            self.bar = w.IntProgress(value=0, min=0, max=max(self.total, 1), description=desc[:20])
            self.label = w.Label(value=f"0/{self.total}")
            display(w.HBox([self.bar, self.label]))

    def update(self, label: str = "") -> None:
        self.done += 1
        msg = f"{self.done}/{self.total} {label} ({time.monotonic() - self.t0:.1f} s)".strip()
        if not self.show:
            return
        if self.bar is not None:
            self.bar.value = self.done
            self.label.value = msg
        else:
            end = "\n" if self.done >= self.total else ""
            sys.stderr.write(f"\r{self.desc}: {msg}" + end)
            sys.stderr.flush()


def progress(items: Iterable[Any], desc: str = "", total: int | None = None, show: bool = True) -> Iterator[Any]:
    """Iterate over ``items`` while showing progress (like a minimal tqdm)."""
    items = list(items) if total is None else items
    bar = Progress(len(items) if total is None else total, desc, show)
    for item in items:
        yield item
        bar.update(str(item))

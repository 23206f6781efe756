"""Progress of long work (compare, sweeps, multistart) in the notebook and on the terminal.

A thin layer over ``tqdm.auto``: an ipywidgets bar in Jupyter, a bar on stderr elsewhere.
``Progress(total, desc).update(label)`` counts one finished step and shows its label;
``show=False`` silences it.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from tqdm.auto import tqdm


class Progress:
    """Count finished steps of ``total``; ``update(label)`` after each one."""

    def __init__(self, total: int, desc: str = "", show: bool = True):
        self.total, self.desc, self.done, self.show = int(total), desc, 0, show
        self.bar = tqdm(total=self.total, desc=desc, disable=not show, leave=True)

    def update(self, label: str = "") -> None:
        self.done += 1
        if label:
            self.bar.set_postfix_str(str(label), refresh=False)
        self.bar.update(1)
        if self.done >= self.total:
            self.bar.close()


def progress(items: Iterable[Any], desc: str = "", total: int | None = None, show: bool = True) -> Iterator[Any]:
    """Iterate over ``items`` while showing progress (``tqdm.auto`` with the item as label)."""
    items = list(items) if total is None else items
    bar = Progress(len(items) if total is None else total, desc, show)
    for item in items:
        yield item
        bar.update(str(item))

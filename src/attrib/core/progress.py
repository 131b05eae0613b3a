"""Progress inside a method: the engine reports each chunk of its outermost run.

A method's long part is one run of the engine over its rows (integration points, masked
copies, coalitions, noisy copies). ``with reporting(callback):`` makes every such run report
``callback(done_rows, total_rows)`` after each chunk; runs nested inside it (the wrapped
method of a wrapper, the rows of those rows) stay quiet, so the fraction is the outer one.

``progress=True`` on any method shows a bar (tqdm's where it is installed, else a line on a
terminal's stderr); ``progress=callback`` calls your function; the command line moves its
bar within each method the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from attrib.core import rows

__all__ = ["ProgressCallback", "make_reporter", "reporting", "run_reporter"]

ProgressCallback = Callable[[int, int], None]
"""``callback(done_rows, total_rows)``, called after each chunk of a method's outer run."""

# the callback and the row depth it was installed at (runs at that depth report)
_REPORTER: ContextVar[tuple[ProgressCallback, int] | None] = ContextVar(
    "attrib_progress", default=None
)


@contextmanager
def reporting(callback: ProgressCallback) -> Iterator[None]:
    """Report the engine's outermost runs inside the block to ``callback``."""
    token = _REPORTER.set((callback, rows.depth()))
    try:
        yield
    finally:
        _REPORTER.reset(token)


def run_reporter() -> ProgressCallback | None:
    """The callback an engine run starting now reports to (``None``: a nested run, or no
    one is listening)."""
    installed = _REPORTER.get()
    if installed is None or installed[1] != rows.depth():
        return None
    return installed[0]


def make_reporter(progress: Any, label: str) -> ProgressCallback:
    """A callback for a method's ``progress=`` setting: ``True`` draws a bar, a callable is
    used as it is."""
    if callable(progress):
        callback: ProgressCallback = progress
        return callback
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: a plain line on a terminal
        return _Line(label)
    bar = tqdm(total=None, desc=label, unit="row", leave=False)

    def advance(done: int, total: int) -> None:
        if bar.total != total:  # a new run (a method may make a few)
            bar.reset(total=total)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return advance


class _Line:
    """``label 37% (1200/3200 rows)`` rewritten in place on a terminal's stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.stream = sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        line = f"\r{self.label} {100 * done // max(total, 1):3d}% ({done}/{total} rows)"
        self.stream.write(line + ("\n" if done >= total else ""))
        self.stream.flush()

"""A progress bar on stderr, for work that takes more than a few seconds.

It appears only on a terminal and only once the work has run for ``delay`` seconds, so quick
commands and logs (pipes, CI) stay clean; it rewrites one line and clears it at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``Progress(total, "explaining")``; ``.advance(label)`` after each unit; ``.close()``."""

    def __init__(
        self,
        total: int,
        what: str,
        *,
        stream: TextIO | None = None,
        delay: float = 2.0,
        enabled: bool | None = None,
        width: int = 28,
    ) -> None:
        self.total = max(1, int(total))
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.width = width
        self.done = 0
        self.part = 0.0  # of the unit under way
        self.label = ""
        self.start = time.monotonic()
        self.drawn = False

    def advance(self, label: str = "", steps: int = 1) -> None:
        """Count ``steps`` more units done; ``label`` says what comes next."""
        self.done = min(self.total, self.done + steps)
        self.part = 0.0
        self.label = label
        self._draw()

    def within(self, label: str, done: int, total: int) -> None:
        """The unit under way is ``done / total`` done (a method reports its chunks)."""
        self.part = min(1.0, done / max(total, 1))
        self.label = label
        self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.start
        if not self.enabled or elapsed < self.delay:
            return
        filled = round(self.width * (self.done + self.part) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        within = f" {100 * self.part:.0f}%" if self.part else ""
        line = (
            f"\r{self.what} [{bar}] {self.done}/{self.total} {elapsed:4.0f}s {self.label}{within}"
        )
        self.stream.write(line[:120].ljust(120))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * 120 + "\r")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

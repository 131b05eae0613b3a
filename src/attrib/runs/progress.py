"""A run's progress: samples done, samples per second, time left.

The rate counts only the samples explained in this process (a resumed run's done shards are
in the count, not in the rate), over the time since the first shard began; the time left is
what remains at that rate. On a terminal the line is redrawn in place; elsewhere (a log
file, CI) a line is written at most every ``every`` seconds, and at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

__all__ = ["RunProgress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class RunProgress:
    """``update(samples, errors)`` after each shard; ``close()`` at the end."""

    def __init__(
        self,
        total: int,
        done: int = 0,
        *,
        stream: IO[str] | None = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = done
        self.errors = 0
        self.fresh = 0
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.clock = clock
        self.start = clock()
        self._last = -float("inf")
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.start
        return self.fresh / elapsed if elapsed > 0 else float("nan")

    def line(self) -> str:
        rate = self.rate
        left = (self.total - self.done) / rate if rate and rate == rate else float("nan")
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        failed = f", {self.errors} failed" if self.errors else ""
        return (
            f"[{bar}] {self.done}/{self.total} samples{failed}, "
            f"{rate:.1f} samples/s, {format_duration(left)} left"
        )

    def update(self, samples: int, errors: int = 0) -> None:
        self.done += samples
        self.fresh += samples
        self.errors += errors
        now = self.clock()
        if self._tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif now - self._last >= self.every:
            self._last = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\r" + self.line() + "\n")
        elif self.fresh:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

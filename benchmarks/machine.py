"""What the run records about the machine, and a check that nothing else is using its CPU."""

from __future__ import annotations

import os
import platform
import time

__all__ = ["NeighbourMeter", "busy_fraction", "cpu_name", "load_average"]


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average, recorded with the results (``None`` where unavailable)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def busy_fraction(window_s: float = 0.5) -> float | None:
    """Share of all cores' time spent busy during ``window_s`` (while this process idles).

    Unlike the load average, which still counts the last minute, this tells whether something
    is running *now*. ``None`` without ``/proc/stat``.
    """
    try:
        total_a, idle_a = _cpu_times()
        time.sleep(window_s)
        total_b, idle_b = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total_b - total_a
    return None if total <= 0 else 1.0 - (idle_b - idle_a) / total


class NeighbourMeter:
    """Share of the machine's CPU time that *other* processes used between start and now.

    All cores' busy time (``/proc/stat``) minus this process's own CPU time (``os.times``),
    over all cores' elapsed time. Near 0 means the timings had the machine to themselves; a
    neighbour busy on one of two cores reads about 0.5, and those timings are not to be trusted.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int, float] | None:
        try:
            total, idle = _cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        own = os.times()
        return total, idle, own.user + own.system

    def share(self) -> float | None:
        """The other processes' share of CPU time since construction (``None`` if unknown)."""
        end = self._read()
        if self.start is None or end is None or end[0] <= self.start[0]:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        total = end[0] - self.start[0]
        busy = total - (end[1] - self.start[1])
        own = (end[2] - self.start[2]) * ticks
        return min(1.0, max(0.0, (busy - own) / total))

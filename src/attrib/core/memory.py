"""Device memory: how many rows fit, what an out-of-memory error looks like, what worked.

The engine (``attrib.core.batching``) asks three things of the device it runs on:

- ``is_out_of_memory(error)``: whether an exception is an allocator running out of memory
  (``torch.OutOfMemoryError`` on a GPU; the CPU allocator's "can't allocate memory");
- ``rows_that_fit(device, measure)``: on CUDA, the rows per forward chosen from the free
  memory and the peak memory of ONE measured row,
  ``rows = floor(FREE_FRACTION * free / peak(1 row))``, where ``free`` is what the driver
  has free plus what PyTorch's caching allocator holds unused; one row's peak includes the
  activations kept for the backward, so the figure errs on the safe side;
- ``remembered`` rows: after an out-of-memory error halved a call's rows, the size that
  worked, for the next call of the same computation on the same device (said once).

``PROBE`` is the object that reads the device; tests replace it with a fake allocator.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from attrib.core.errors import AttribWarning

__all__ = [
    "FREE_FRACTION",
    "PROBE",
    "CudaProbe",
    "OutOfMemoryWarning",
    "forget",
    "is_out_of_memory",
    "note_halved",
    "release",
    "remembered",
    "rows_that_fit",
]

T = TypeVar("T")

FREE_FRACTION = 0.6
"""The share of the free memory one forward may take: the rest is for the allocator's
fragmentation, the reductions the engine keeps, and what one row's peak did not show."""

_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


class OutOfMemoryWarning(AttribWarning):
    """Out of memory: the rows per forward were halved (said once per computation)."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocator running out of memory (GPU or CPU)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error).lower() for m in _MESSAGES)


class CudaProbe:
    """Reads a CUDA device's memory through ``torch.cuda``."""

    def applies(self, device: torch.device) -> bool:
        return device.type == "cuda" and torch.cuda.is_available()

    def free_bytes(self, device: torch.device) -> int:
        free, _ = torch.cuda.mem_get_info(device)
        unused_cache = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, unused_cache))

    def peak_bytes(self, device: torch.device, work: Callable[[], T]) -> tuple[T, int]:
        """``work()`` and the most memory it held at once beyond what was held before."""
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = work()
        torch.cuda.synchronize(device)
        return result, max(1, torch.cuda.max_memory_allocated(device) - before)

    def empty_cache(self, device: torch.device) -> None:
        if device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()


PROBE: Any = CudaProbe()

_REMEMBERED: dict[tuple[Any, ...], int] = {}
_WARNED: set[tuple[Any, ...]] = set()


def rows_that_fit(
    device: torch.device, measure: Callable[[], T], most: int
) -> tuple[T, int] | None:
    """``(measure(), rows)`` where ``PROBE`` reads ``device`` (CUDA): ``measure`` runs one
    row, and ``rows`` (between 1 and ``most``) is what the free memory holds of rows like
    it. ``None`` (and nothing run) on devices the probe does not read."""
    if not PROBE.applies(device):
        return None
    result, peak = PROBE.peak_bytes(device, measure)
    rows = int(FREE_FRACTION * PROBE.free_bytes(device) // peak)
    return result, max(1, min(most, rows))


def remembered(key: tuple[Any, ...]) -> int | None:
    """The rows per forward that worked after an out-of-memory error, for ``key``."""
    return _REMEMBERED.get(key)


def note_halved(key: tuple[Any, ...], rows: int, what: str) -> None:
    """Remember ``rows`` for ``key`` and warn, once per key."""
    _REMEMBERED[key] = rows
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"Out of memory in {what}: now at most {rows} rows per forward (remembered for "
            "the next calls; batch_size=... sets it from the start).",
            OutOfMemoryWarning,
            stacklevel=4,
        )


def forget() -> None:
    """Forget every remembered size (tests; a device whose load changed)."""
    _REMEMBERED.clear()
    _WARNED.clear()


def release(device: torch.device) -> None:
    """Give back what a failed forward held: its tensors, then the allocator's cache."""
    gc.collect()
    PROBE.empty_cache(device)

"""Peak memory of one call: allocator statistics on CUDA, a sampled RSS on CPU.

``tensor_peak_mib`` is the CPU's counterpart of CUDA's allocator peak: the largest sum of live
tensor allocations during the call, replayed from the profiler's memory events. Unlike the
RSS it does not depend on what glibc keeps or returns, so two calls that allocate the same
tensors read the same.

On CPU there is no allocator counter to ask, so a background thread samples the process's
resident set size from ``/proc/self/statm`` about every millisecond while the call runs; the
result is the peak minus the resident size just before the call. Before the call, Python's
garbage is collected and glibc's ``malloc_trim(0)`` returns freed heap pages to the system,
so that memory freed by earlier calls does not sit in the baseline and get silently reused
(which would make the measured call look cheaper than it is).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.timing import sync

__all__ = ["MIB", "peak_memory_mib", "tensor_peak_mib"]

MIB = 2**20
SAMPLE_INTERVAL_S = 0.001


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): measure without trimming
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _release_freed_memory() -> None:
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class _RssSampler(threading.Thread):
    """Reads the resident set size until stopped and keeps the largest value seen."""

    def __init__(self, fd: int, page_size: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.page_size = page_size
        self.peak = 0
        self.stop = threading.Event()

    def read(self) -> int:
        # statm is "size resident shared ...", in pages; pread at 0 re-reads it fresh.
        return int(os.pread(self.fd, 128, 0).split()[1]) * self.page_size

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.read())
            self.stop.wait(SAMPLE_INTERVAL_S)


def _cpu_peak_bytes(fn: Callable[[], Any]) -> int:
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        sampler = _RssSampler(fd, os.sysconf("SC_PAGE_SIZE"))
        _release_freed_memory()
        baseline = sampler.read()
        sampler.start()
        try:
            result = fn()
            # The result is part of the call's footprint: sample once more while it is alive.
            sampler.peak = max(sampler.peak, sampler.read())
        finally:
            sampler.stop.set()
            sampler.join()
        del result
        return max(0, sampler.peak - baseline)
    finally:
        os.close(fd)


def _cuda_peak_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    gc.collect()
    sync(device)
    baseline = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    del result
    return max(0, peak - baseline)


def peak_memory_mib(fn: Callable[[], Any], device: torch.device) -> float:
    """Extra memory (MiB) at the peak of one call of ``fn``, above what was in use before it."""
    if device.type == "cuda":
        return _cuda_peak_bytes(fn, device) / MIB
    if not os.path.exists("/proc/self/statm"):
        return float("nan")  # no /proc (macOS): report unknown rather than a wrong number
    return _cpu_peak_bytes(fn) / MIB


def tensor_peak_mib(fn: Callable[[], Any], device: torch.device) -> float:
    """Peak of the tensors allocated during one call of ``fn`` (MiB), above those alive before.

    On CUDA the allocator's peak; on CPU the running sum of the profiler's ``[memory]`` events
    (each allocation and free of a tensor, in time order), which is exact and deterministic.
    """
    if device.type == "cuda":
        return _cuda_peak_bytes(fn, device) / MIB
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    del result
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak / MIB

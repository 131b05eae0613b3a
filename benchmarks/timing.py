"""Wall-clock timing of callables on a shared, noisy machine.

Contenders are timed in interleaved rounds (each round runs every contender once), so that a
slow spell of the machine hits all of them alike instead of whichever happened to run during
it, and results are reported as medians, which ignore the odd run hit by a neighbour.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["interleaved", "median_ms", "sync", "time_once"]

Progress = Callable[[str], None]


def sync(device: torch.device) -> None:
    """Wait for queued accelerator work, so a timer read afterwards covers all of it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds taken by one call of ``fn``, including the device work it queued."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    elapsed = time.perf_counter() - start
    # Free the result now rather than during the next contender's run.
    del result
    return elapsed


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int | Mapping[str, int],
    device: torch.device,
    warmup: int = 1,
    progress: Progress | None = None,
) -> dict[str, list[float]]:
    """Time every callable ``repeats`` times in interleaved rounds; seconds per call.

    ``repeats`` may differ per callable (a mapping): a callable with fewer runs than there are
    rounds takes part in rounds spread evenly over the whole run (not in the first ones only,
    which would leave the others alone, un-interleaved, in the last rounds).

    Each round starts one contender later than the previous one (A B, B A, A B, ...), so no
    contender always runs right after the same other one (caches, allocator state and
    frequency scaling otherwise favour one position). Warm-up calls (first use of kernels,
    allocator growth, lazy imports) are not recorded.
    """
    names = list(fns)
    counts = {n: repeats[n] if isinstance(repeats, Mapping) else repeats for n in names}
    for _ in range(warmup):
        for name in names:
            time_once(fns[name], device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    rounds = max(counts.values(), default=0)
    # Collections are triggered by allocation counts, so they would land in whichever run
    # crossed the threshold; collect between rounds instead and keep gc out of the timings.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(rounds):
            gc.collect()
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                if _takes_part(i, counts[name], rounds):
                    samples[name].append(time_once(fns[name], device))
            if progress is not None:
                progress(f"round {i + 1}/{rounds}")
    finally:
        if was_enabled:
            gc.enable()
    return samples


def _takes_part(i: int, count: int, rounds: int) -> bool:
    # True in exactly ``count`` of the rounds 0..rounds-1, evenly spaced, the last included.
    return (i + 1) * count // rounds > i * count // rounds


def median_ms(samples: list[float], per: int = 1) -> float:
    """The median of ``samples`` (seconds) in milliseconds, divided by ``per`` (e.g. rows)."""
    return statistics.median(samples) * 1000.0 / per

"""The one engine that evaluates an expanded set of rows in chunks, under a budget.

Methods describe work as ``n_samples x rows_per_sample`` rows (integration steps, noise draws,
masked copies, perturbed texts). Row ``r`` belongs to sample ``r // rows_per_sample`` and is
item ``r % rows_per_sample`` of it. The engine hands contiguous chunks of at most
``batch_size`` rows to a per-chunk function (which builds the rows and runs the model) and
folds each chunk's results into per-sample reductions at once, so memory is bounded by
``batch_size`` and never by the number of steps or samples.

The number of chunks is ``ceil(rows / batch_size)``; chunks are balanced (their sizes differ
by at most one) so that no chunk runs at a wastefully small batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar, Union

import torch

from attrib.core import memory
from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs, leaves
from attrib.core.progress import run_reporter
from attrib.core.rows import rows_from

__all__ = [
    "Chunk",
    "Reduction",
    "check_batch_size",
    "chunks",
    "default_batch_size",
    "run_chunks",
]

Reduction = Literal["sum", "mean", "mean_square", "var", "keep"]
Tree = Union[torch.Tensor, dict[str, torch.Tensor]]
T = TypeVar("T", torch.Tensor, dict[str, torch.Tensor], Tree)
REDUCTIONS = ("sum", "mean", "mean_square", "var", "keep")

# Rows per forward when the user does not say: about 8 ImageNet images' worth of input
# elements on CPU and 64 on an accelerator. On two CPU cores the per-row cost of a
# forward+backward to the input was lowest near 8 rows: resnet18 50.7 ms at 8 and 50.1 at
# 16, resnet50 131 at 8 and 172 at 16 (its activations outgrow the caches), vgg11 271 at
# 4 and 272 at 8; forwards alone (Score-CAM's rows) alike.
CPU_ELEMENT_BUDGET = 8 * 3 * 224 * 224
ACCELERATOR_ELEMENT_BUDGET = 8 * CPU_ELEMENT_BUDGET
MAX_DEFAULT_ROWS = 4096


@dataclass(frozen=True)
class Chunk:
    """A contiguous block of rows: which sample and which item each row is."""

    start: int
    stop: int
    sample: torch.Tensor  # (rows,) long: the sample each row belongs to
    item: torch.Tensor  # (rows,) long: the row's index within its sample

    def __len__(self) -> int:
        return self.stop - self.start


def check_batch_size(batch_size: int | None, name: str = "batch_size") -> int | None:
    """``None`` (choose automatically) or a positive int."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SettingError(name, "a positive int (rows per forward) or None", batch_size, "")
    return batch_size


def default_batch_size(example: Inputs, total_rows: int) -> int:
    """Rows per forward chosen from the size of one row and the device, when not given."""
    tensors = leaves(example)
    per_row = max(1, sum(t[0].numel() for t in tensors))
    on_accelerator = any(t.device.type not in ("cpu", "meta") for t in tensors)
    budget = ACCELERATOR_ELEMENT_BUDGET if on_accelerator else CPU_ELEMENT_BUDGET
    return max(1, min(total_rows, MAX_DEFAULT_ROWS, budget // per_row))


def chunks(
    n_samples: int,
    rows_per_sample: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    start: int = 0,
) -> Iterator[Chunk]:
    """Balanced contiguous chunks covering rows ``start`` to ``n_samples * rows_per_sample``."""
    total = n_samples * rows_per_sample
    if total <= start:
        return
    n_chunks = math.ceil((total - start) / batch_size)
    base, extra = divmod(total - start, n_chunks)
    for k in range(n_chunks):
        stop = start + base + (1 if k < extra else 0)
        yield _chunk(start, stop, rows_per_sample, device)
        start = stop


def _chunk(start: int, stop: int, rows_per_sample: int, device: torch.device | str) -> Chunk:
    rows = torch.arange(start, stop, device=device)
    return Chunk(start, stop, rows // rows_per_sample, rows % rows_per_sample)


def run_chunks(
    evaluate: Callable[[Chunk], T],
    n_samples: int,
    rows_per_sample: int,
    batch_size: int,
    reduce: Reduction,
    weights: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    origin: torch.Tensor | None = None,
    *,
    automatic: bool = False,
) -> T:
    """Evaluate every row in chunks and reduce per sample.

    ``evaluate(chunk)`` returns a tensor (or dict of tensors) with one leading entry per row.
    ``reduce`` is ``"sum"`` (weighted by ``weights``, shape ``(rows_per_sample,)`` or
    ``(n_samples, rows_per_sample)``), ``"mean"``, ``"mean_square"``, ``"var"`` (population
    variance, merged chunk by chunk with Chan's formula so it is exact and chunk-size
    invariant) or ``"keep"`` (all rows, shape ``(n_samples, rows_per_sample, ...)``).

    The rows of a chunk come from its samples (``chunk.sample``) of the current batch; where
    the ``n_samples`` are not the batch's samples (one entry per path, per (sample, channel)
    pair, ...), ``origin`` gives the batch row of each (``attrib.core.rows``).

    Memory (``attrib.core.memory``): a chunk that runs out of memory is tried again as
    chunks of half its rows, down to one row; the size that worked is remembered for the
    next calls of the same ``evaluate`` on the device (one ``OutOfMemoryWarning``).
    ``automatic=True`` (the caller chose ``batch_size`` itself, not the user): on CUDA the
    first chunk is one row, whose peak memory and the free memory decide the rest's rows.
    """
    if reduce not in REDUCTIONS:
        raise SettingError("reduce", f"one of {REDUCTIONS}", reduce, "")
    check_batch_size(batch_size)
    if weights is not None and reduce != "sum":
        raise SettingError("weights", "weights only with reduce='sum'", reduce, "")
    reducer = _Reducer(reduce, n_samples, rows_per_sample, weights)
    report = run_reporter()  # the outermost run of a method reports its chunks
    total = n_samples * rows_per_sample
    where = torch.device(device)
    key = (str(where), getattr(evaluate, "__qualname__", type(evaluate).__name__))
    size = min(batch_size, memory.remembered(key) or batch_size)

    def add(chunk: Chunk, value: T) -> None:
        reducer.add(chunk, value)
        if report is not None:
            report(chunk.stop, total)

    def run(chunk: Chunk) -> T:
        rows = chunk.sample if origin is None else origin[chunk.sample.to(origin.device)]
        with rows_from(rows):
            return evaluate(chunk)

    done = 0
    if automatic and total > 1 and memory.remembered(key) is None:
        first = _chunk(0, 1, rows_per_sample, device)
        measured = memory.rows_that_fit(where, lambda: run(first), min(total, MAX_DEFAULT_ROWS))
        if measured is not None:
            add(first, measured[0])
            size, done = measured[1], 1
    while done < total:
        for chunk in chunks(n_samples, rows_per_sample, size, device, start=done):
            try:
                value = run(chunk)
            except Exception as error:
                if len(chunk) == 1 or not memory.is_out_of_memory(error):
                    raise
                del error  # its traceback holds the failed forward's tensors
                memory.release(where)
                size = len(chunk) // 2
                memory.note_halved(key, size, key[1].split(".<locals>")[0])
                break
            add(chunk, value)
            done = chunk.stop
    result: T = reducer.result()  # type: ignore[assignment]  # the structure evaluate gives
    return result


class _Reducer:
    """Folds chunk results into per-sample statistics, one leaf of the tree at a time."""

    def __init__(self, reduce: str, n_samples: int, per_sample: int, weights: torch.Tensor | None):
        self.reduce = reduce
        self.n = n_samples
        self.per_sample = per_sample
        self.weights = weights
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.kept: dict[str, list[torch.Tensor]] = {}
        self.is_dict = False

    def add(self, chunk: Chunk, values: Tree) -> None:
        self.is_dict = isinstance(values, dict)
        items = values.items() if isinstance(values, dict) else [("", values)]
        for key, value in items:
            if value.shape[0] != len(chunk):
                raise RuntimeError(
                    f"per-chunk function returned {value.shape[0]} rows for a chunk of {len(chunk)}"
                )
            if self.reduce == "keep":
                self.kept.setdefault(key, []).append(value)
            elif self.reduce == "var":
                self._add_moments(key, chunk, value)
            else:
                self._add_sum(key, chunk, value)

    def _row_weights(self, chunk: Chunk, value: torch.Tensor) -> torch.Tensor | None:
        if self.weights is None:
            return None
        w = self.weights.to(device=value.device, dtype=value.dtype)
        w = w[chunk.item.to(w.device)] if w.dim() == 1 else w[chunk.sample, chunk.item]
        return w.view(-1, *([1] * (value.dim() - 1)))

    def _add_sum(self, key: str, chunk: Chunk, value: torch.Tensor) -> None:
        if self.reduce == "mean_square":
            value = value * value
        w = self._row_weights(chunk, value)
        if w is not None:
            value = value * w
        acc = self.state.setdefault(key, {})
        if "sum" not in acc:
            acc["sum"] = value.new_zeros((self.n, *value.shape[1:]))
        acc["sum"].index_add_(0, chunk.sample.to(value.device), value)

    def _add_moments(self, key: str, chunk: Chunk, value: torch.Tensor) -> None:
        sample = chunk.sample.to(value.device)
        shape = (self.n, *value.shape[1:])
        count_b = torch.zeros(self.n, dtype=value.dtype, device=value.device)
        count_b.index_add_(0, sample, torch.ones_like(sample, dtype=value.dtype))
        sum_b = value.new_zeros(shape).index_add_(0, sample, value)
        expand = (-1, *([1] * (value.dim() - 1)))
        safe_b = count_b.clamp(min=1).view(expand)
        mean_b = sum_b / safe_b
        centred = value - mean_b[sample]
        m2_b = value.new_zeros(shape).index_add_(0, sample, centred * centred)
        acc = self.state.setdefault(key, {})
        if "count" not in acc:
            acc.update(count=count_b, mean=mean_b, m2=m2_b)
            return
        count_a, mean_a, m2_a = acc["count"], acc["mean"], acc["m2"]
        count = count_a + count_b
        safe = count.clamp(min=1).view(expand)
        delta = mean_b - mean_a
        acc["mean"] = mean_a + delta * (count_b.view(expand) / safe)
        acc["m2"] = m2_a + m2_b + delta * delta * (count_a * count_b).view(expand) / safe
        acc["count"] = count

    def result(self) -> Tree:
        out: dict[str, torch.Tensor] = {}
        if self.reduce == "keep":
            for key, parts in self.kept.items():
                rows = torch.cat(parts)
                out[key] = rows.view(self.n, self.per_sample, *rows.shape[1:])
        else:
            for key, acc in self.state.items():
                if self.reduce == "var":
                    out[key] = acc["m2"] / self.per_sample
                elif self.reduce == "sum":
                    out[key] = acc["sum"]
                else:
                    out[key] = acc["sum"] / self.per_sample
        return out if self.is_dict else out[""]

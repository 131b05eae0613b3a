"""Shards of a source: shard ``k`` holds samples ``k * size`` to ``(k + 1) * size - 1``.

The sample order is the source's, so a shard holds the same samples in every run of the same
source: what makes a resumed run and the two engines write the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import get_worker_info

from attrib.runs.samples import Sample, Source

__all__ = [
    "PackedSamples",
    "PackedShards",
    "ShardReader",
    "pack",
    "shard_count",
    "shard_range",
    "stack_rows",
]

PACKED_FIELDS = ("input", "mask")
"""The tensor fields of a ``Sample`` that ``pack`` stacks."""


def shard_count(n: int, size: int) -> int:
    return -(-n // size)


def shard_range(shard: int, n: int, size: int) -> range:
    return range(shard * size, min(n, (shard + 1) * size))


@dataclass
class ShardReader:
    """``reader[k]`` decodes the ``k``-th shard to do: ``(shard, samples)``. A map-style
    dataset for ``torch.utils.data.DataLoader`` (one shard per item); ``read(shard)`` decodes
    a shard by its number (Ray's decoding tasks and CPU actors)."""

    source: Source
    shards: list[int]
    size: int

    def __post_init__(self) -> None:
        # a run never draws: the pixels (a float32 copy of every normalised image, 600 kB at
        # 224 x 224) would be made in the decoding processes only to be dropped
        lean = getattr(self.source, "without_pixels", None)
        if callable(lean):
            self.source = lean()

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, k: int) -> tuple[int, list[Sample]]:
        shard = self.shards[k]
        return shard, self.read(shard)

    def read(self, shard: int) -> list[Sample]:
        """The samples of shard number ``shard`` (not a position in ``shards``)."""
        n = len(self.source)
        samples = [self.source[i] for i in shard_range(shard, n, self.size)]
        # a source of another kind may still give pixels: they would travel to the engine,
        # by value, and cost 12% of a run
        return [replace(s, pixels=None) if s.pixels is not None else s for s in samples]


@dataclass
class PackedSamples:
    """A shard's samples with their tensors stacked: one tensor per field and shape.

    A ``DataLoader`` worker hands each tensor to the main process through shared memory, and
    each costs a file descriptor passed over a socket of its own: a shard of 64 images took
    0.02-0.2 s (median 0.06 s) of the main thread, one stacked tensor 0.01-0.03 s.
    ``unpack`` gives the samples back, their tensors views of the stacked ones (no copy).
    """

    samples: list[Sample]
    tensors: list[torch.Tensor]
    where: list[tuple[str, list[int]]]  # per stacked tensor: the field, the samples' positions

    def unpack(self) -> list[Sample]:
        samples = list(self.samples)
        for (field, positions), stacked in zip(self.where, self.tensors, strict=True):
            for row, i in enumerate(positions):
                changes: dict[str, Any] = {field: stacked[row]}
                samples[i] = replace(samples[i], **changes)
        return samples


def pack(samples: list[Sample]) -> PackedSamples:
    """``samples`` with every tensor of ``PACKED_FIELDS`` stacked with its likes."""
    groups: dict[tuple[str, tuple[int, ...], torch.dtype], list[int]] = {}
    light = []
    for i, sample in enumerate(samples):
        changes: dict[str, Any] = {}
        for field in PACKED_FIELDS:
            value = getattr(sample, field)
            if isinstance(value, torch.Tensor):
                groups.setdefault((field, tuple(value.shape), value.dtype), []).append(i)
                changes[field] = None
        light.append(replace(sample, **changes) if changes else sample)
    tensors = [
        _stacked([getattr(samples[i], key[0]) for i in members]) for key, members in groups.items()
    ]
    where = [(key[0], members) for key, members in groups.items()]
    return PackedSamples(light, tensors, where)


@dataclass
class PackedShards:
    """``ShardReader``'s shards as ``(shard, PackedSamples)``: the local engine's dataset."""

    reader: ShardReader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, k: int) -> tuple[int, PackedSamples]:
        shard, samples = self.reader[k]
        return shard, pack(samples)


def _stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(tensors)``; in a ``DataLoader`` worker, stacked straight into shared
    memory (as torch's ``default_collate`` does): the tensor then travels to the main process
    without a second copy (``share_memory_`` copies a tensor that is not yet shared)."""
    if get_worker_info() is None or tensors[0].device.type != "cpu":
        return torch.stack(tensors)
    first = tensors[0]
    numel = first.numel() * len(tensors)
    storage = first._typed_storage()._new_shared(numel, device=first.device)
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def stack_rows(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(rows)``, without the copy where ``rows`` already are the consecutive
    rows of one tensor (the inputs of an unpacked shard: ``PackedSamples.unpack``): a view
    of that tensor."""
    first = rows[0]
    step = first.numel()
    storage = first.untyped_storage()
    if first.is_contiguous() and all(
        row.shape == first.shape
        and row.dtype == first.dtype
        and row.is_contiguous()
        and row.untyped_storage().data_ptr() == storage.data_ptr()
        and row.storage_offset() == first.storage_offset() + k * step
        for k, row in enumerate(rows)
    ):
        return torch.as_strided(
            first, (len(rows), *first.shape), (step, *first.stride()), first.storage_offset()
        )
    return torch.stack(list(rows))

"""Shards of a source: shard ``k`` holds samples ``k * size`` to ``(k + 1) * size - 1``.

The sample order is the source's, so a shard holds the same samples in every run of the same
source: what makes a resumed run and the two engines write the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from attrib.runs.samples import Sample, Source

__all__ = ["PackedSamples", "PackedShards", "ShardReader", "pack", "shard_count", "shard_range"]

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

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, k: int) -> tuple[int, list[Sample]]:
        shard = self.shards[k]
        return shard, self.read(shard)

    def read(self, shard: int) -> list[Sample]:
        """The samples of shard number ``shard`` (not a position in ``shards``)."""
        n = len(self.source)
        # a run never draws: the pixels (a float32 copy of every normalised image, 600 kB at
        # 224 x 224) would only travel to the engine, by value, and cost 12% of a run
        samples = [self.source[i] for i in shard_range(shard, n, self.size)]
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
        torch.stack([getattr(samples[i], key[0]) for i in members])
        for key, members in groups.items()
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

"""Shards of a source: shard ``k`` holds samples ``k * size`` to ``(k + 1) * size - 1``.

The sample order is the source's, so a shard holds the same samples in every run of the same
source: what makes a resumed run and the two engines write the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from attrib.runs.samples import Sample, Source

__all__ = ["ShardReader", "shard_count", "shard_range"]


def shard_count(n: int, size: int) -> int:
    return -(-n // size)


def shard_range(shard: int, n: int, size: int) -> range:
    return range(shard * size, min(n, (shard + 1) * size))


@dataclass
class ShardReader:
    """``reader[k]`` decodes the ``k``-th shard to do: ``(shard, samples)``. A map-style
    dataset for ``torch.utils.data.DataLoader`` (one shard per item), and the function Ray's
    decoding tasks call."""

    source: Source
    shards: list[int]
    size: int

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, k: int) -> tuple[int, list[Sample]]:
        shard = self.shards[k]
        n = len(self.source)
        return shard, [self.source[i] for i in shard_range(shard, n, self.size)]

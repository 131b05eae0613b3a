"""What a dataset run reads: samples from a source, decoded one at a time.

A ``Source`` is a sequence of samples in a fixed order (the order decides the shards, so a
resumed run sees the same samples in the same shards). Reading sample ``i`` decodes it (an
image file, a text field); a sample that cannot be read comes back with its ``error`` set
instead of raising, so one bad file never stops a run of a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch

__all__ = ["Sample", "Source", "SourceKind"]

SourceKind = Literal["images", "text"]


@dataclass
class Sample:
    """One sample, decoded.

    Attributes:
        index: its position in the source (sample ``index`` lies in shard
            ``index // shard_size``).
        id: a stable name (a file's path relative to the folder, a manifest's row id).
        source: where it came from, as a user would find it (a path, ``dataset[12]``).
        input: the model input (a tensor ``(C, H, W)`` for images, a ``str`` for texts), or
            ``None`` when the sample could not be read.
        label: the class index where the source has labels.
        mask: a ``(H, W)`` bool tensor of the object, where the source has masks (for the
            localization metrics).
        pixels: the picture as drawn (``(H, W, 3)`` in [0, 1]) where it differs from the
            input (normalised images), else ``None``.
        error: why the sample could not be read (``None`` when it could).
    """

    index: int
    id: str
    source: str
    input: Any = None
    label: int | None = None
    mask: torch.Tensor | None = None
    pixels: Any = None
    error: str | None = None


@runtime_checkable
class Source(Protocol):
    """A dataset for a run: ``len(source)`` samples, ``source[i]`` decodes sample ``i``."""

    kind: SourceKind
    class_names: list[str] | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...

    def describe(self) -> dict[str, Any]:
        """What the run's manifest records about the source (JSON values)."""
        ...

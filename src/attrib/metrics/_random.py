"""Seeded randomness for metrics that does not depend on how rows are chunked.

Every random draw of a row (sample ``i``, item ``j``) comes from a generator seeded with a hash
of ``(seed, i, j)``, so a metric gives the same numbers for every ``batch_size`` and the first
draws stay the same when the number of draws grows.
"""

from __future__ import annotations

from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.core.seeding import mix_seed

__all__ = ["check_seed", "generator", "row_seed"]


def check_seed(seed: Any) -> int:
    """Metrics are reproducible by default: ``seed`` is an int (``0`` unless given)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SettingError("seed", "an int (metrics draw reproducibly from it)", seed, "")
    return seed


def row_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``seed`` and ``keys`` by chained SplitMix64 (Steele et al. 2014)."""
    # torch.Generator.manual_seed takes values below 2**63 on every platform
    return mix_seed(seed, *keys) >> 1


def generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``row_seed(seed, *keys)``."""
    return torch.Generator(device=device).manual_seed(row_seed(seed, *keys))

"""Checks shared by the metrics, and the one place that lines attributions up with inputs.

Attributions are accepted in two forms, told apart by their shape:

- **per feature**: the input's shape ``(N, *x.shape[1:])``, one value per input element;
- **per location**: ``(N, *x.shape[2:])`` or ``(N, 1, *x.shape[2:])`` for inputs with a channel
  dimension (images ``(N, C, H, W)``), one value per location, applied to all its channels
  (a saliency map, a CAM map). ``Attribution.saliency()`` gives one.

Anything else is an ``InputError`` that says which shapes would do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F

from attrib.core.errors import InputError, SettingError
from attrib.core.inputs import check_inputs
from attrib.core.result import Attribution

__all__ = [
    "AttributionLike",
    "Features",
    "attribution_tensor",
    "check_masks",
    "check_positive_int",
    "check_x",
    "features",
    "maps_of",
]

AttributionLike = Union[Attribution, torch.Tensor]


def check_x(x: Any, name: str = "x") -> torch.Tensor:
    """One non-empty, finite, floating-point batch (metrics evaluate single-input models)."""
    if isinstance(x, Mapping):
        raise InputError(
            name,
            "one tensor (metrics evaluate models with a single input)",
            x,
            "Bind the other inputs with functools.partial on a wrapper module.",
        )
    checked = check_inputs(x, name)
    assert isinstance(checked, torch.Tensor)  # not a mapping: checked above
    return checked


def attribution_tensor(attributions: Any, name: str = "attributions") -> torch.Tensor:
    """The values of an ``Attribution`` (or a tensor), detached, checked to be finite."""
    values = attributions.values if isinstance(attributions, Attribution) else attributions
    if isinstance(values, Mapping):
        raise InputError(name, "one tensor of attributions", values, "Pick one input's values.")
    if not isinstance(values, torch.Tensor):
        raise InputError(name, "an Attribution or a tensor", values, "")
    if values.dim() == 0 or values.shape[0] == 0:
        raise InputError(name, "a batch with at least one sample", values, "")
    if not bool(torch.isfinite(values).all()):
        raise InputError(name, "finite values", "NaN or Inf values", "")
    return values.detach()


@dataclass(frozen=True)
class Features:
    """The features a metric ranks and perturbs: relevance per feature, and where they sit.

    ``relevance`` is ``(N, F)``; a feature is one input element (``per_location=False``), or
    one location of a ``patch x patch`` grid whose channels move together. ``expand`` turns a
    ``(rows, F)`` boolean selection into a ``(rows, *x.shape[1:])`` mask of input elements.
    """

    relevance: torch.Tensor
    shape: tuple[int, ...]
    per_location: bool
    patch: int = 1

    @property
    def count(self) -> int:
        return self.relevance.shape[1]

    def location_mask(self, selected: torch.Tensor) -> torch.Tensor:
        """``(rows, F)`` selection to a ``(rows, *spatial)`` mask of locations."""
        rows = selected.shape[0]
        spatial = self.shape[1:]
        if self.patch == 1:
            return selected.view(rows, *spatial)
        grid = [-(-s // self.patch) for s in spatial]
        mask = selected.view(rows, *grid)
        for d in range(len(spatial)):
            mask = mask.repeat_interleave(self.patch, dim=d + 1)
        index = tuple(slice(0, s) for s in spatial)
        every_row = (slice(None), *index)
        return mask[every_row]

    def expand(self, selected: torch.Tensor) -> torch.Tensor:
        """``(rows, F)`` selection to a ``(rows, *x.shape[1:])`` element mask."""
        rows = selected.shape[0]
        if not self.per_location:
            return selected.view(rows, *self.shape)
        return self.location_mask(selected).unsqueeze(1).expand(rows, *self.shape)


def features(attributions: AttributionLike, x: torch.Tensor, patch: int = 1) -> Features:
    """Line ``attributions`` up with ``x`` (see the module docstring); group ``patch``-sized
    squares of locations into one feature whose relevance is their sum (Samek et al. 2017)."""
    values = attribution_tensor(attributions)
    patch = check_positive_int(patch, "patch")
    n = x.shape[0]
    location_shapes = []
    if x.dim() >= 3:
        location_shapes = [(n, *x.shape[2:]), (n, 1, *x.shape[2:])]
    if tuple(values.shape) == tuple(x.shape) and not (
        x.dim() >= 3 and x.shape[1] == 1 and patch > 1
    ):
        if patch > 1:
            raise SettingError(
                "patch",
                "1 for attributions of the input's shape (patches group locations)",
                patch,
                "Pass one value per location (e.g. attribution.saliency()) to use patches.",
            )
        return Features(values.reshape(n, -1), tuple(x.shape[1:]), per_location=False)
    if tuple(values.shape) in location_shapes or (
        tuple(values.shape) == tuple(x.shape) and x.shape[1] == 1
    ):
        maps = values.reshape(n, *x.shape[2:])
        if patch > 1:
            maps = _patch_sums(maps, patch)
        return Features(maps.reshape(n, -1), tuple(x.shape[1:]), per_location=True, patch=patch)
    expected = f"the input's shape {tuple(x.shape)}"
    if location_shapes:
        expected += f", or one value per location {location_shapes[0]} or {location_shapes[1]}"
    raise InputError(
        "attributions",
        expected,
        values,
        "Attributions must come from the same batch as x (for maps use attribution.saliency()).",
    )


def _patch_sums(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """Sum of each ``patch x patch`` square of a grid over ``maps``' spatial dims (zero-padded)."""
    spatial = maps.shape[1:]
    if len(spatial) not in (1, 2):
        raise SettingError("patch", "1 for inputs with more than two spatial dims", patch, "")
    pads = []
    for s in reversed(spatial):
        pads += [0, (-s) % patch]
    padded = F.pad(maps.unsqueeze(1).double(), pads)
    pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool1d
    return (pool(padded, patch) * patch ** len(spatial)).squeeze(1).to(maps.dtype)


def maps_of(attributions: AttributionLike, reduce: str = "max_abs") -> torch.Tensor:
    """One map per sample: ``Attribution.saliency(reduce)``, or a tensor as it is."""
    if isinstance(attributions, Attribution):
        attribution_tensor(attributions)
        return attributions.saliency(reduce).detach()
    return attribution_tensor(attributions, "maps")


def check_masks(masks: Any, maps: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks as a bool tensor of the maps' shape (a singleton channel is dropped)."""
    if not isinstance(masks, torch.Tensor):
        raise InputError("masks", "a tensor of 0/1 or bool masks", masks, "")
    if masks.dim() == maps.dim() + 1 and masks.shape[1] == 1:
        masks = masks.squeeze(1)
    if tuple(masks.shape) != tuple(maps.shape):
        raise InputError(
            "masks",
            f"one mask per map, of the maps' shape {tuple(maps.shape)}",
            masks,
            "Give masks at the resolution of the maps (upsample CAM maps, or pass "
            "attribution.saliency() for input-shaped attributions).",
        )
    if masks.dtype != torch.bool:
        if not bool(((masks == 0) | (masks == 1)).all()):
            raise InputError("masks", "0/1 or bool values", masks, "")
        masks = masks.bool()
    return masks


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError(name, "a positive int", value, "")
    return value

"""Localization: does an explanation put its relevance on the object that decides the class?

Each function compares maps ``R`` (``(N, H, W)``, ``(N, 1, H, W)``, or an ``Attribution``,
reduced by ``.saliency()``) with ground-truth masks ``G`` of the same shape and returns one
number per sample (NaN, with a warning, where a mask is empty):

- ``pointing_game``: 1 if the map's maximum lies on the object, else 0 (Zhang et al. 2018,
  "Top-Down Neural Attention by Excitation Backprop"); optionally within ``tolerance`` pixels
  of it (the paper uses 15 at 224 pixels).
- ``relevance_mass_accuracy``: ``sum_{p in G} R_p / sum_p R_p`` over positive relevance
  (Arras et al. 2022, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of
  neural network explanations").
- ``relevance_rank_accuracy``: with ``K = |G|``, the fraction of the ``K`` most relevant
  locations that lie in ``G`` (Arras et al. 2022).

Ties are honest: where several locations share the maximum (pointing game) or straddle the
``K``-th rank (rank accuracy), the score is its expectation over a uniformly random order of
the tied locations. A constant map thus scores the mask's area fraction, as chance does; a
library that breaks ties by position (or counts any tied maximum as a hit) can give a
constant map a perfect score.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from attrib.core.errors import SettingError, warn
from attrib.metrics._inputs import AttributionLike, check_masks, maps_of

__all__ = ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy"]


def _aligned(maps: AttributionLike, masks: Any, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps and bool masks of the same shape (a singleton channel of the maps is dropped)."""
    values = maps_of(maps, reduce)
    if isinstance(masks, torch.Tensor) and values.dim() == masks.dim() + 1 and values.dim() >= 3:
        if values.shape[1] == 1:
            values = values.squeeze(1)
    return values, check_masks(masks, values)


def _flat(values: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(N, L)`` maps and masks, and which masks are empty (with a warning if any)."""
    n = values.shape[0]
    flat_masks = masks.reshape(n, -1).to(values.device)
    empty = flat_masks.sum(dim=1) == 0
    if bool(empty.any()):
        warn(
            f"{int(empty.sum())} of {n} ground-truth masks are empty; their localization "
            "scores are NaN. Leave those samples out, or give them masks."
        )
    return values.reshape(n, -1).double(), flat_masks, empty


def pointing_game(
    maps: AttributionLike, masks: Any, *, tolerance: float = 0.0, reduce: str = "max_abs"
) -> torch.Tensor:
    """1 where the map's maximum falls on the mask (or within ``tolerance`` pixels of it).

    Tied maxima score the fraction of them that hit. ``reduce`` turns an ``Attribution``
    into maps (``Attribution.saliency``); tensors are taken as they are.
    """
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
        raise SettingError("tolerance", "a distance in pixels >= 0", tolerance, "")
    values, masks = _aligned(maps, masks, reduce)
    if tolerance > 0:
        masks = _dilate(masks, tolerance)
    flat, hit_mask, empty = _flat(values, masks)
    top = flat == flat.amax(dim=1, keepdim=True)
    score = (top & hit_mask).sum(dim=1).double() / top.sum(dim=1).double()
    return torch.where(empty, torch.nan, score)


def _dilate(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """Masks grown by every location within Euclidean distance ``radius`` (2-D maps)."""
    if masks.dim() != 3:
        raise SettingError("tolerance", "0 for maps that are not 2-D", radius, "")
    r = int(radius)
    offsets = torch.arange(-r, r + 1, dtype=torch.float64)
    disk = (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2) <= radius**2
    kernel = disk.to(torch.float32).view(1, 1, 2 * r + 1, 2 * r + 1)
    grown = F.conv2d(masks.unsqueeze(1).float(), kernel.to(masks.device), padding=r)
    return grown.squeeze(1) > 0


def relevance_mass_accuracy(
    maps: AttributionLike, masks: Any, *, reduce: str = "max_abs"
) -> torch.Tensor:
    """``sum_{p in G} R+_p / sum_p R+_p``, the share of positive relevance on the object.

    Negative relevance is left out as in Arras et al. 2022 (Quantus sums signed values; the
    two agree on non-negative maps). A map without positive relevance scores 0.
    """
    flat, masks, empty = _flat(*_aligned(maps, masks, reduce))
    positive = flat.clamp(min=0)
    total = positive.sum(dim=1)
    within = (positive * masks).sum(dim=1)
    score = torch.where(total > 0, within / total.clamp(min=1e-300), torch.zeros_like(total))
    return torch.where(empty, torch.nan, score)


def relevance_rank_accuracy(
    maps: AttributionLike, masks: Any, *, reduce: str = "max_abs"
) -> torch.Tensor:
    """The fraction of the ``K = |G|`` highest-ranked locations that lie in ``G``.

    Locations tied with the ``K``-th highest value count in proportion: of the ``T`` tied
    locations ``K - G`` are taken (``G`` the number strictly above), so their hits count
    ``(K - G) / T`` each.
    """
    flat, masks, empty = _flat(*_aligned(maps, masks, reduce))
    k = masks.sum(dim=1)
    descending = flat.sort(dim=1, descending=True).values
    kth = descending.gather(1, (k - 1).clamp(min=0).view(-1, 1))  # (n, 1)
    above = flat > kth
    tied = flat == kth
    n_above = above.sum(dim=1)
    n_tied = tied.sum(dim=1)
    hits = (above & masks).sum(dim=1).double()
    tied_hits = (tied & masks).sum(dim=1).double()
    hits = hits + tied_hits * (k - n_above).double() / n_tied.double()
    score = hits / k.clamp(min=1).double()
    return torch.where(empty, torch.nan, score)

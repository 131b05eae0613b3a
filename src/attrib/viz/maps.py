"""Saliency maps from attributions: reduce channels, upsample, clip outliers.

A map is a 2-D float array, one value per pixel. ``saliency_maps`` makes one per sample from
an ``Attribution`` (or a tensor or array of attributions):

- inputs with channels ``(N, C, H, W)`` are reduced over channels by ``Attribution.saliency``:
  ``max_abs`` (``M_ij = max_c |A_ijc|``, Simonyan et al. 2014, the default), ``abs_sum``,
  ``l2`` or ``sum`` (the only one that keeps the sign);
- maps without channels ``(N, H, W)`` (CAM methods) are used as they are;
- a layer's map smaller than the image is upsampled bilinearly to ``size``.

Colour needs a scale. One extreme pixel (gradients have many) would wash the rest of the map
into the lowest colour, so ``clip_percentile`` scales by a high percentile of ``|M|`` instead
of its maximum and clips what lies beyond.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch

import attrib.text  # noqa: F401 - registers the text methods, which SIGNED_METHODS lists
from attrib.core.errors import SettingError
from attrib.core.result import SALIENCY_REDUCTIONS, Attribution, SaliencyReduction
from attrib.methods import catalogue
from attrib.methods.cam import maps as cam_maps

__all__ = [
    "SIGNED_METHODS",
    "clip_percentile",
    "default_reduction",
    "drawn_signed",
    "is_signed",
    "saliency_map",
    "saliency_maps",
    "upsample",
]

# every reduction but "sum" draws a magnitude
_MAGNITUDES = tuple(r for r in SALIENCY_REDUCTIONS if r != "sum")

SIGNED_METHODS = frozenset(info.name for info in catalogue.entries() if info.signed)
"""Methods whose attributions add up to a change of the score (completeness, or a removal
game): their sign says for or against the class, so their maps are drawn signed
(``MethodInfo.signed`` in the catalogue)."""


def _signed(method: str) -> bool:
    info = catalogue.get(method)
    return info is not None and info.signed


def default_reduction(method: str) -> str:
    """``"sum"`` (signed) for the methods of ``SIGNED_METHODS``, else ``"max_abs"``.

    Gradients say how sensitive the score is, not in which direction a pixel pushes it, so
    their magnitude is drawn; attributions that add up to the score keep their sign.
    """
    return "sum" if _signed(method) else "max_abs"


def drawn_signed(attribution: Any, reduce: str | None) -> bool | None:
    """Whether a map is drawn signed: ``True`` for the ``"sum"`` of a method of
    ``SIGNED_METHODS`` (even where every value happens to be positive, so that one method's
    maps always read the same), ``False`` for magnitude reductions, else ``None`` (signed if
    any value is negative)."""
    if reduce in _MAGNITUDES:
        return False
    if isinstance(attribution, Attribution) and _signed(attribution.method):
        return reduce == "sum" or (reduce is None and attribution.channel_dim is None)
    return None


def saliency_maps(
    attribution: Attribution | torch.Tensor | np.ndarray,
    *,
    reduce: str | None = None,
    key: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """One map per sample, ``(N, H, W)`` float64.

    Args:
        attribution: an ``Attribution``; or values ``(N, C, H, W)`` (channel dimension 1),
            maps ``(N, H, W)`` or one map ``(H, W)``, as a tensor or an array.
        reduce: how to collapse channels (``"max_abs"``, ``"sum"``, ``"abs_sum"``, ``"l2"``);
            ``None``: ``"max_abs"`` where there are channels. Maps without channels are
            kept as they are (signed) whatever ``reduce`` says, except ``"max_abs"``,
            ``"abs_sum"`` and ``"l2"`` given explicitly, which take ``|M|``.
        key: which input's map, for dict inputs.
        size: ``(H, W)`` to upsample to (bilinear), e.g. a layer map to the image's size.
    """
    if reduce is not None and reduce not in SALIENCY_REDUCTIONS:
        raise SettingError("reduce", f"None or one of {SALIENCY_REDUCTIONS}", reduce, "")
    if isinstance(attribution, Attribution):
        # maps without channels (CAM) keep their sign unless a magnitude is asked for
        default = "max_abs" if attribution.channel_dim is not None else "sum"
        maps = attribution.saliency(cast(SaliencyReduction, reduce or default), key=key)
    else:
        maps = _as_tensor(attribution)
        if maps.dim() == 4:
            maps = Attribution(values=maps).saliency(cast(SaliencyReduction, reduce or "max_abs"))
        elif maps.dim() == 2:
            maps = maps.unsqueeze(0)
        elif maps.dim() != 3:
            raise SettingError(
                "attribution",
                "values (N, C, H, W), maps (N, H, W) or one map (H, W)",
                attribution,
                "",
            )
        if reduce in _MAGNITUDES and maps.dim() == 3:
            maps = maps.abs()
    maps = maps.detach().to("cpu", torch.float64)
    if maps.dim() == 4 and maps.shape[1] == 1:  # (N, 1, H, W) maps from a one-channel input
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise SettingError(
            "attribution",
            "attributions of images (one 2-D map per sample)",
            maps,
            "Pass text attributions to attrib.viz.token_figure instead.",
        )
    if size is not None and tuple(maps.shape[-2:]) != tuple(size):
        maps = upsample(maps, size)
    return maps.numpy()


def saliency_map(
    attribution: Attribution | torch.Tensor | np.ndarray,
    index: int = 0,
    *,
    reduce: str | None = None,
    key: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The map of sample ``index``, ``(H, W)``; see ``saliency_maps``."""
    maps = saliency_maps(attribution, reduce=reduce, key=key, size=size)
    if not -len(maps) <= index < len(maps):
        raise SettingError("index", f"a sample index in [0, {len(maps)})", index, "")
    return maps[index]


def upsample(maps: Any, size: tuple[int, int]) -> Any:
    """Bilinear upsampling of ``(H, W)`` or ``(N, H, W)`` maps to ``size``, in float64 (same
    type back: a tensor or a numpy array).

    The CAM methods' upsampling (``attrib.methods.cam.maps.upsample``, pixel centres aligned:
    each map cell covers its share of the image, as the layer's receptive field grid does,
    so the map does not shift by half a cell), applied to any map one draws.
    """
    tensor = _as_tensor(maps)
    single = tensor.dim() == 2
    # a copy: the result never shares memory with the caller's map, even at the same size
    batch = tensor.reshape(-1, *tensor.shape[-2:]).to(torch.float64, copy=True)
    out = cam_maps.upsample(batch, (int(size[0]), int(size[1])))
    out = out[0] if single else out.reshape(*tensor.shape[:-2], *out.shape[-2:])
    return out.numpy() if isinstance(maps, np.ndarray) else out


def is_signed(saliency: np.ndarray | torch.Tensor) -> bool:
    """Whether a map has negative values (then it is drawn with a diverging colour map)."""
    values = _as_tensor(saliency)
    return bool((values < 0).any())


def clip_percentile(
    saliency: np.ndarray | torch.Tensor,
    percentile: float = 99.0,
    *,
    signed: bool | None = None,
) -> tuple[np.ndarray, float]:
    """Scale a map into ``[0, 1]`` (magnitudes) or ``[-1, 1]`` (signed maps, 0 stays 0).

    The scale is the ``percentile`` of ``|M|`` (100: the maximum); values beyond it are
    clipped. Returns the scaled map and the scale (0 for a map of zeros, which stays 0).
    """
    if not 0 < percentile <= 100:
        raise SettingError("percentile", "a number in (0, 100]", percentile, "")
    values = _as_tensor(saliency).to(torch.float64).numpy()
    signed = is_signed(values) if signed is None else signed
    magnitude = np.abs(values)
    finite = magnitude[np.isfinite(magnitude)]
    scale = float(np.percentile(finite, percentile)) if finite.size else 0.0
    if scale <= 0:
        # a sparse map (most pixels 0) has a zero percentile: fall back to its maximum
        scale = float(finite.max()) if finite.size else 0.0
    if scale <= 0:
        return np.zeros_like(values), 0.0
    lower = -1.0 if signed else 0.0
    scaled = values if signed else magnitude
    return np.clip(np.nan_to_num(scaled / scale), lower, 1.0), scale


def _as_tensor(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    if isinstance(values, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(values))
    raise SettingError("saliency", "a tensor or a numpy array", values, "")

"""A saliency map laid over its image.

The map is scaled by ``clip_percentile`` and coloured (sequential or diverging). Each pixel's
colour is blended over the image with an opacity of ``alpha * |scaled value| ** gamma``:
where the map says nothing, the image shows through untouched, so the eye lands on what the
map highlights (a uniform alpha would tint the whole picture). ``gamma = 0.5`` lifts weak
but non-zero relevance into view: pixel-level maps (gradients) are sparse, and with a linear
opacity most of their pixels would vanish; the colour itself stays linear in the value. The
image is drawn grey by default, so that its own colours are not mistaken for the map's.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from attrib.core.errors import SettingError
from attrib.viz.colors import colorize
from attrib.viz.images import to_image
from attrib.viz.maps import clip_percentile, is_signed, upsample

__all__ = ["overlay"]


def overlay(
    image: Any,
    saliency: np.ndarray,
    *,
    alpha: float = 0.8,
    cmap: str | None = None,
    signed: bool | None = None,
    percentile: float = 99.0,
    background: Literal["gray", "color"] = "gray",
    weighted: bool = True,
    gamma: float = 0.5,
) -> np.ndarray:
    """The map over the image, ``(H, W, 3)`` RGB floats in ``[0, 1]``.

    Args:
        image: anything ``to_image`` takes (tensor, array, Pillow image).
        saliency: one map ``(h, w)``; upsampled bilinearly to the image if smaller.
        alpha: the opacity of the strongest colour.
        cmap: a matplotlib colour map name (default: sequential or diverging, by sign).
        signed: draw as signed (diverging, centred at 0); ``None``: signed if any value < 0.
        percentile: the percentile of ``|M|`` that gets the strongest colour.
        background: ``"gray"`` (default) or ``"color"`` image under the map.
        weighted: opacity grows with ``|value|`` (default); ``False``: ``alpha`` everywhere.
        gamma: the opacity is ``alpha * |value| ** gamma`` (1: linear).
    """
    if not 0.0 <= alpha <= 1.0:
        raise SettingError("alpha", "an opacity in [0, 1]", alpha, "")
    if gamma <= 0:
        raise SettingError("gamma", "a positive exponent", gamma, "")
    if background not in ("gray", "color"):
        raise SettingError("background", "'gray' or 'color'", background, "")
    picture = to_image(image)
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim != 2:
        raise SettingError("saliency", "one map (H, W)", saliency, "Use saliency_map() first.")
    if saliency.shape != picture.shape[:2]:
        saliency = upsample(saliency, picture.shape[:2])
    signed = is_signed(saliency) if signed is None else signed
    scaled, _ = clip_percentile(saliency, percentile, signed=signed)
    colours = colorize(scaled, cmap, signed=signed)
    if background == "gray":
        grey = picture @ np.array([0.299, 0.587, 0.114])
        picture = np.repeat(grey[..., None], 3, axis=-1)
    opacity = alpha * (np.abs(scaled) ** gamma if weighted else np.ones_like(scaled))
    opacity = opacity[..., None]
    return np.clip((1 - opacity) * picture + opacity * colours, 0.0, 1.0)

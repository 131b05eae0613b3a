"""The report's small pictures: an input, and one map over its input, as PNG bytes.

Map cells are drawn with numpy and Pillow, not matplotlib (a report has one per image and
method, and a matplotlib figure costs ~50x more), and stored with a 256-colour palette:
an overlay of a smooth colour map loses nothing visible and the page gets ~3x smaller.
"""

from __future__ import annotations

import io

import numpy as np

from attrib.core.result import Attribution
from attrib.viz._deps import pil_image
from attrib.viz.maps import default_reduction, drawn_signed, saliency_map
from attrib.viz.overlay import overlay

__all__ = ["map_png", "picture_png"]


def picture_png(pixels: np.ndarray, *, palette: bool = True) -> bytes:
    """PNG bytes of an RGB float image ``(H, W, 3)`` in ``[0, 1]``."""
    pil = pil_image()
    array = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    image = pil.fromarray(array)
    if palette:
        image = image.quantize(colors=256, method=pil.Quantize.MEDIANCUT, dither=pil.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def map_png(
    pixels: np.ndarray,
    attribution: Attribution,
    index: int,
    *,
    reduce: str | None = None,
    percentile: float = 99.0,
) -> bytes:
    """PNG bytes of sample ``index``'s map over ``pixels`` (``attrib.viz.overlay``).

    ``reduce`` defaults to ``default_reduction`` of the method: signed maps for methods whose
    attributions add up to the score, magnitudes for the others.
    """
    if reduce is None and attribution.channel_dim is not None:
        reduce = default_reduction(attribution.method)
    saliency = saliency_map(attribution, index, reduce=reduce, size=pixels.shape[:2])
    signed = drawn_signed(attribution, reduce)
    return picture_png(overlay(pixels, saliency, percentile=percentile, signed=signed))

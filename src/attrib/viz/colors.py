"""Colour maps: sequential for magnitudes, diverging and centred at zero for signed maps.

A magnitude map (``|gradient|``, Grad-CAM) goes from "nothing" to "a lot", so it takes a
perceptually uniform sequential map (``inferno``) whose lightness grows with the value. A
signed map (integrated gradients, LRP, Shapley values) says "for" or "against" the class, so
it takes a diverging map (``RdBu_r``: red for, blue against) with white exactly at 0; the
scale is symmetric, ``[-s, s]``, so equal magnitudes get equally strong colours.
"""

from __future__ import annotations

import numpy as np

from attrib.viz._deps import matplotlib

__all__ = ["DIVERGING", "SEQUENTIAL", "colorize", "colormap_for"]

SEQUENTIAL = "inferno"
DIVERGING = "RdBu_r"


def colormap_for(signed: bool) -> str:
    """``DIVERGING`` for signed maps, ``SEQUENTIAL`` for magnitudes."""
    return DIVERGING if signed else SEQUENTIAL


def colorize(scaled: np.ndarray, cmap: str | None = None, *, signed: bool = False) -> np.ndarray:
    """RGB colours ``(H, W, 3)`` in ``[0, 1]`` of a map already scaled by ``clip_percentile``.

    ``scaled`` is in ``[0, 1]`` (magnitudes) or ``[-1, 1]`` (``signed=True``, drawn so that 0
    is the middle of the colour map).
    """
    name = cmap or colormap_for(signed)
    colormap = matplotlib().colormaps[name]
    position = (np.asarray(scaled, dtype=np.float64) + 1.0) / 2.0 if signed else scaled
    return colormap(np.clip(position, 0.0, 1.0))[..., :3]

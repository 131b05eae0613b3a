"""The explorer's pictures, drawn on the server as PNGs: inputs, thumbnails and maps.

A map is sent as an RGBA PNG the size of its input: the colour of each pixel from the colour
map (``attrib.viz.colors``: sequential for magnitudes, diverging and centred at 0 for signed
maps), scaled by the 99th percentile of ``|M|`` (``attrib.viz.maps.clip_percentile``), and an
alpha of ``|scaled| ** 0.5`` (as ``attrib.viz.overlay``'s weighted opacity), so the page lays
it over the input and its opacity slider only sets the layer's CSS opacity: moving the slider
costs no request. PNGs are kept in a ``PngCache`` bounded in bytes.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

__all__ = ["COLORMAPS", "PngCache", "input_png", "map_png"]

COLORMAPS = ("auto", "inferno", "viridis", "magma", "gray", "RdBu_r", "coolwarm", "bwr")
"""The colour maps a request may name (``auto``: ``attrib.viz.colors.colormap_for``)."""
MODES = ("auto", "signed", "absolute")
THUMBNAIL = 96  # the overview's thumbnails, pixels on the longer side
GAMMA = 0.5  # opacity = |scaled| ** GAMMA, as attrib.viz.overlay


class PngCache:
    """PNG bytes by key, the least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 128 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def peek(self, key: tuple) -> bytes | None:
        """The PNG of ``key`` if it is cached (never draws)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def get(self, key: tuple, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = make()  # outside the lock: requests for other pictures go on meanwhile
        with self._lock:
            if key not in self._items:
                self._items[key] = made
                self._bytes += len(made)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
        return made


def _png(array: np.ndarray) -> bytes:
    from attrib.viz._deps import pil_image

    buffer = io.BytesIO()
    pil_image().fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _fit(height: int, width: int, size: int | None) -> tuple[int, int]:
    if size is None:
        return height, width
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def input_png(pixels: np.ndarray, size: int | None = None) -> bytes:
    """An input ``(H, W, 3)`` in [0, 1] as a PNG, its longer side ``size`` pixels (nearest
    neighbour when enlarging, so a 32 x 32 input shows its own pixels)."""
    from attrib.viz._deps import pil_image

    pil = pil_image()
    array = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
    height, width = _fit(array.shape[0], array.shape[1], size)
    image = pil.fromarray(array)
    if (height, width) != array.shape[:2]:
        enlarge = height > array.shape[0]
        image = image.resize((width, height), pil.NEAREST if enlarge else pil.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def map_png(
    saliency: np.ndarray,
    *,
    signed: bool,
    cmap: str = "auto",
    shape: tuple[int, int] | None = None,
    size: int | None = None,
) -> bytes:
    """A 2-D map as an RGBA PNG (see the module), at ``shape`` (the input's ``(H, W)``,
    bilinear) and then ``size`` on the longer side."""
    from attrib.viz.colors import colorize
    from attrib.viz.maps import clip_percentile, upsample

    values = np.nan_to_num(np.asarray(saliency, dtype=np.float64))
    if shape is not None and tuple(values.shape) != tuple(shape):
        values = upsample(values, shape)
    height, width = _fit(values.shape[0], values.shape[1], size)
    if (height, width) != values.shape:
        values = upsample(values, (height, width))
    scaled, _ = clip_percentile(values, 99.0, signed=signed)
    colours = colorize(scaled, None if cmap == "auto" else cmap, signed=signed)
    alpha = np.abs(scaled) ** GAMMA
    rgba = np.concatenate([colours, alpha[..., None]], axis=-1)
    return _png((np.clip(rgba, 0.0, 1.0) * 255).round().astype(np.uint8))

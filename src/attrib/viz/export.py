"""PNG export: a figure or an image array to a file, bytes, or a ``data:`` URI, in one call."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from attrib.core.errors import SettingError
from attrib.viz._deps import pil_image

__all__ = ["data_uri", "png_bytes", "save_png"]


def png_bytes(picture: Any, *, dpi: float = 100, close: bool = False) -> bytes:
    """PNG bytes of a matplotlib ``Figure`` or of an image array ``(H, W)``/``(H, W, 3|4)``
    (floats in ``[0, 1]`` or uint8). ``close=True`` also closes a figure that pyplot made
    (pyplot keeps its figures alive until they are closed)."""
    buffer = io.BytesIO()
    if hasattr(picture, "savefig"):
        picture.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        if close:
            _close(picture)
    else:
        _array_image(picture).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def save_png(
    picture: Any, path: str | os.PathLike, *, dpi: float = 100, close: bool = False
) -> Path:
    """Write ``picture`` (a figure or an image array) as a PNG file; returns the path.

    Missing parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png_bytes(picture, dpi=dpi, close=close))
    return target


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...``: a PNG that an HTML page carries inside itself."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _array_image(picture: Any) -> Any:
    array = np.asarray(picture)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise SettingError("picture", "a Figure or an image array (H, W[, 3|4])", picture, "")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return pil_image().fromarray(array)


def _close(fig: Any) -> None:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:  # a figure pyplot does not manage is left alone by plt.close
        plt.close(fig)

"""The demo's photographs: scikit-image's bundled images (no download), as RGB uint8 arrays.

Each comes with the ImageNet class a person would name for it, for the demo's check that
the model sees what is there: coffee (an espresso cup), chelsea (a tabby cat), astronaut
(Eileen Collins in her suit), rocket (a Saturn V on its pad), camera (a cameraman behind a
camera on a tripod).
"""

from __future__ import annotations

import numpy as np

from attrib.core.errors import SettingError

__all__ = ["PHOTOS", "load_photos"]

PHOTOS: dict[str, str] = {
    "coffee": "espresso",
    "chelsea": "tabby cat",
    "astronaut": "an astronaut in her suit; ImageNet has no class for it",
    "rocket": "missile or projectile",
    "camera": "tripod (and a camera)",
}
"""Photo name -> what it shows, in ImageNet's words where ImageNet has a class for it."""


def load_photos(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """``{name: (H, W, 3) uint8}`` for ``names`` (default: all of ``PHOTOS``)."""
    try:
        from skimage import data
    except ImportError:
        raise SettingError(
            "photos", "scikit-image installed (pip install attrib[demo])", "not installed", ""
        ) from None
    out = {}
    for name in names or list(PHOTOS):
        loader = getattr(data, name, None)
        if name not in PHOTOS or loader is None:
            raise SettingError("--images", f"photos from {sorted(PHOTOS)}", name, "")
        array = np.asarray(loader())
        if array.ndim == 2:  # the cameraman is grey
            array = np.repeat(array[..., None], 3, axis=-1)
        out[name] = np.ascontiguousarray(array[..., :3].astype(np.uint8))
    return out

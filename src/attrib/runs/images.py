"""Images for the command line: files read with Pillow, prepared by a preset.

A preset fixes the geometry (resize the shorter side, crop the centre) and the values the
model takes (pixels in ``[0, 1]``, or normalised with a mean and standard deviation). Every
image keeps two forms: ``pixels``, the picture after the geometry (what is drawn), and
``tensor``, what the model reads. Attributions are per element of ``tensor``, which has the
picture's height and width, so maps lie on ``pixels`` as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.core.errors import InputError, SettingError

__all__ = [
    "PRESETS",
    "LoadedImage",
    "Preset",
    "load_image",
    "prepare",
    "prepare_mask",
    "prepare_picture",
    "preset",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preset:
    """How an image becomes a model input."""

    name: str
    resize: int | None
    crop: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    description: str


PRESETS = {
    p.name: p
    for p in (
        Preset(
            "imagenet",
            256,
            224,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "shorter side to 256, centre crop 224, (x - mean) / std with ImageNet's statistics",
        ),
        Preset(
            "crop224",
            256,
            224,
            None,
            None,
            "shorter side to 256, centre crop 224, pixels in [0, 1] (models that normalise "
            "themselves, like the demo model)",
        ),
        Preset("none", None, None, None, None, "the image as it is, pixels in [0, 1]"),
    )
}


def preset(name: str) -> Preset:
    """The preset called ``name``."""
    if name not in PRESETS:
        raise SettingError("--preprocess", f"one of {sorted(PRESETS)}", name, "")
    return PRESETS[name]


@dataclass(frozen=True)
class LoadedImage:
    """One prepared image: ``pixels`` ``(H, W, 3)`` in ``[0, 1]`` and ``tensor`` ``(3, H, W)``."""

    name: str
    pixels: np.ndarray
    tensor: torch.Tensor
    source: str = ""


def prepare(
    array: np.ndarray, chosen: Preset, name: str = "image", source: str = ""
) -> LoadedImage:
    """Prepare an RGB array ``(H, W, 3)`` (uint8) by ``chosen``."""
    from attrib.viz._deps import pil_image

    tensor, pixels = prepare_picture(
        pil_image().fromarray(np.ascontiguousarray(array)), chosen, pixels=True
    )
    assert pixels is not None
    return LoadedImage(name=name, pixels=pixels, tensor=tensor, source=source)


def prepare_picture(
    image: Any, chosen: Preset, *, pixels: bool = True
) -> tuple[torch.Tensor, np.ndarray | None]:
    """A PIL image prepared by ``chosen``: the model input ``(3, H, W)`` and, with
    ``pixels``, the picture after the geometry ``(H, W, 3)`` in ``[0, 1]`` (else ``None``).

    Each step copies the picture only where it changes it (a dataset run decodes every image
    of the data, in processes that share the cores with the model): no conversion of an RGB
    image, no resize to the size it has, the crop a view of the array.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    if chosen.resize is not None:
        w, h = image.size
        size = _resized(w, h, chosen.resize)
        if size != (w, h):
            # Pillow's bilinear resize widens its filter when shrinking: no aliasing
            image = image.resize(size, resample=_pil().BILINEAR)
    picture = _cropped(np.asarray(image), chosen.crop)
    drawn = np.divide(picture, np.float32(255.0), dtype=np.float32) if pixels else None
    # one conversion into (3, H, W) and in-place arithmetic: the values of
    # ((picture / 255) - mean) / std, computed in that order, without four copies of the
    # picture (decoding a 256^2 JPEG costs less than the copies did)
    chw = np.ascontiguousarray(picture.transpose(2, 0, 1), dtype=np.float32)
    tensor = torch.from_numpy(chw).div_(255.0)
    if chosen.mean is not None and chosen.std is not None:
        tensor.sub_(torch.tensor(chosen.mean).view(-1, 1, 1))
        tensor.div_(torch.tensor(chosen.std).view(-1, 1, 1))
    return tensor, drawn


def load_image(path: str | os.PathLike, chosen: Preset) -> LoadedImage:
    """Read an image file with Pillow (any format it knows) and prepare it."""
    from attrib.viz._deps import pil_image

    pil = pil_image()
    file = Path(path)
    if not file.is_file():
        raise InputError(
            "IMAGE", "an image file", str(path), "No such file." if not file.exists() else ""
        )
    try:
        with pil.open(file) as opened:
            tensor, pixels = prepare_picture(opened, chosen, pixels=True)
    except (OSError, SyntaxError, ValueError, pil.DecompressionBombError) as error:
        # Pillow says UnidentifiedImageError (an OSError) for files that are not images
        reason = str(error).split(" (")[0] or type(error).__name__
        raise InputError(
            "IMAGE", "an image file that Pillow can read", f"{file} ({reason})", ""
        ) from None
    assert pixels is not None
    return LoadedImage(name=file.stem, pixels=pixels, tensor=tensor, source=str(file))


def prepare_mask(mask: np.ndarray, chosen: Preset) -> torch.Tensor:
    """A mask ``(H, W)`` (nonzero: the object) through ``chosen``'s geometry, by nearest
    neighbour, so that it lies on the prepared image: a bool tensor ``(H', W')``."""
    from attrib.viz._deps import pil_image

    pil = pil_image()
    image = pil.fromarray(np.ascontiguousarray(mask != 0).astype(np.uint8) * 255)
    resized = np.asarray(_geometry(image, chosen, pil.NEAREST))
    return torch.from_numpy(resized > 0)


def _geometry(image: Any, chosen: Preset, resample: Any) -> Any:
    """A PIL image resized (shorter side to ``chosen.resize``) and centre-cropped."""
    if chosen.resize is not None:
        w, h = image.size
        image = image.resize(_resized(w, h, chosen.resize), resample=resample)
    if chosen.crop is not None:
        w, h = image.size
        image = image.crop(_crop_box(w, h, chosen.crop))
    return image


def _resized(width: int, height: int, shorter: int) -> tuple[int, int]:
    """``(width, height)`` scaled so that the shorter side is ``shorter``."""
    scale = shorter / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _cropped(picture: np.ndarray, crop: int | None) -> np.ndarray:
    """The centre square of side ``crop`` (at most the picture's shorter side), a view;
    the same pixels as ``_geometry``'s crop."""
    if crop is None:
        return picture
    h, w = picture.shape[:2]
    left, top, right, bottom = _crop_box(w, h, crop)
    return picture[top:bottom, left:right]


def _crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the centre square of side ``crop`` (at most the
    shorter side)."""
    side = min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _pil() -> Any:
    from attrib.viz._deps import pil_image

    return pil_image()

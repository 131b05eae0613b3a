"""Pictures and masks of image sources: files read with Pillow, values from datasets.

A picture becomes ``(input, pixels, size)``: the model input made by the preset, the picture
as drawn where it differs from the input (normalised presets; else ``None``) and its
``(height, width)`` before the preset (``None`` for a tensor taken as the input as it is).
Whatever cannot be read raises ``UnreadableError`` with the reason.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from attrib.runs.images import Preset, prepare_mask, prepare_picture
from attrib.runs.sources._base import UnreadableError
from attrib.viz._deps import pil_image

__all__ = ["Picture", "fit_mask", "mask_value", "picture_value", "read_mask", "read_picture"]

Picture = tuple[torch.Tensor, "np.ndarray | None", "tuple[int, int] | None"]


def read_picture(path: str, chosen: Preset, pixels: bool = True) -> Picture:
    """An image file (any format Pillow reads; grayscale, palette or RGBA become RGB);
    without ``pixels``, no picture as drawn (a run stores none)."""
    return _prepared(_open(path, "an image"), chosen, pixels)


def read_mask(path: str) -> np.ndarray:
    """A mask file as a bool array ``(H, W)``: True where the pixel is nonzero."""
    return _mask_of_picture(_open(path, "a mask"))


def picture_value(value: Any, chosen: Preset, pixels: bool = True) -> Picture:
    """A picture from a dataset: a PIL image or a ``uint8`` array ``(H, W[, C])`` (made by
    the preset), a path to an image file, or a float tensor (the model input as it is);
    without ``pixels``, no picture as drawn."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise UnreadableError(
                f"a {value.dtype} tensor is not a model input: give float tensors (the input "
                "as it is) or PIL images (made by the preset)"
            )
        return value, None, None
    if isinstance(value, (str, os.PathLike)):
        return read_picture(os.fspath(value), chosen, pixels)
    if _is_pil(value):
        return _prepared(value, chosen, pixels)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8:
        if value.ndim == 3 and value.shape[2] == 1:
            value = value[:, :, 0]
        if value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (3, 4)):
            # gray, RGB or RGBA: prepared as RGB
            return _prepared(pil_image().fromarray(np.ascontiguousarray(value)), chosen, pixels)
    raise UnreadableError(
        f"an image is a PIL image, a uint8 array (H, W[, C]), a file path or a float tensor, "
        f"not {_kind(value)}"
    )


def mask_value(value: Any) -> np.ndarray:
    """A mask from a dataset: a PIL image, an array or tensor ``(H, W)`` (or ``(1, H, W)``),
    or a path to a mask file; True where nonzero."""
    if isinstance(value, (str, os.PathLike)):
        return read_mask(os.fspath(value))
    if _is_pil(value):
        return _mask_of_picture(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        array = value[0] if value.ndim == 3 and value.shape[0] == 1 else value
        if array.ndim == 2:
            return array != 0
    raise UnreadableError(f"a mask is an image, an array (H, W) or a file path, not {_kind(value)}")


def fit_mask(
    mask: np.ndarray, size: tuple[int, int] | None, chosen: Preset, shape: tuple[int, ...]
) -> torch.Tensor:
    """The mask of a picture of ``size`` (``(height, width)`` before the preset; ``None`` for
    an input taken as it is) laid on the input of ``shape`` ``(C, H, W)``.

    A mask has its picture's size, or the same proportions: it goes through the preset's
    geometry with nearest-neighbour resizing, and must then have the input's height and width.
    """
    mh, mw = mask.shape
    target = tuple(shape[-2:])
    if size is None:
        if (mh, mw) != target:
            raise UnreadableError(
                f"the mask is {mw}x{mh} pixels, the input {target[1]}x{target[0]}"
            )
        return torch.from_numpy(np.ascontiguousarray(mask))
    ih, iw = size
    if mh * iw != mw * ih:
        raise UnreadableError(
            f"the mask is {mw}x{mh} pixels, the image {iw}x{ih}: a mask has its image's size"
        )
    fitted = prepare_mask(mask, chosen)
    if tuple(fitted.shape) != target:
        h, w = fitted.shape
        raise UnreadableError(
            f"the mask is {w}x{h} pixels after the preset {chosen.name!r}, the image "
            f"{target[1]}x{target[0]}: a mask has its image's size"
        )
    return fitted


def _prepared(image: Any, chosen: Preset, pixels: bool) -> Picture:
    """A PIL image by ``chosen``; the picture as drawn only where it differs from the input
    (a normalising preset) and is asked for."""
    normalised = chosen.mean is not None and chosen.std is not None
    tensor, drawn = prepare_picture(image, chosen, pixels=pixels and normalised)
    width, height = image.size
    return tensor, drawn, (int(height), int(width))


def _open(path: str, what: str) -> Any:
    """The decoded PIL image of a file (decoded now, so that a truncated file fails here)."""
    if not os.path.isfile(path):
        raise UnreadableError(
            f"no such file: {path}" if not os.path.exists(path) else f"not a file: {path}"
        )
    pil = pil_image()
    try:
        with pil.open(path) as opened:
            opened.load()
            if getattr(opened, "fp", None) is None:
                # a single-frame image: Pillow closed the file after decoding, and leaving
                # the `with` closes nothing more in any Pillow this package allows (>= 9)
                return opened
            return opened.copy()  # several frames: the copy holds the decoded one
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, EOFError...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UnreadableError(f"not {what} file that Pillow can read ({reason})") from None


def _mask_of_picture(image: Any) -> np.ndarray:
    bands = image.getbands()
    if "A" in bands:  # transparency is not the object: keep the colour bands
        image = image.convert("RGB" if len(bands) == 4 else "L")
    array = np.asarray(image)
    return np.asarray(array.any(axis=2) if array.ndim == 3 else array != 0)


def _is_pil(value: Any) -> bool:
    return hasattr(value, "getbands") and hasattr(value, "convert")


def _kind(value: Any) -> str:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"

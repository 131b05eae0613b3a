"""Images to draw on: tensors, arrays and Pillow images as ``(H, W, 3)`` floats in ``[0, 1]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attrib.core.errors import SettingError

__all__ = ["to_image"]


def to_image(
    image: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """An RGB float array ``(H, W, 3)`` in ``[0, 1]``.

    Accepts a tensor ``(C, H, W)`` or ``(1, C, H, W)`` (channels first, as models take them),
    an array ``(H, W)``, ``(H, W, C)`` (uint8 0-255 or floats in [0, 1]), or a Pillow image.
    ``mean`` and ``std`` undo a normalisation ``(x - mean) / std`` of a tensor. One channel is
    drawn grey; a fourth (alpha) channel is dropped.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # a Pillow image
        array = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        return array
    if isinstance(image, torch.Tensor):
        tensor = image.detach().to("cpu", torch.float64)
        if tensor.dim() == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.dim() == 2:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 3:
            raise SettingError("image", "a tensor (C, H, W) or (1, C, H, W)", image, "")
        if std is not None:
            tensor = tensor * torch.tensor(std, dtype=torch.float64).view(-1, 1, 1)
        if mean is not None:
            tensor = tensor + torch.tensor(mean, dtype=torch.float64).view(-1, 1, 1)
        array = tensor.permute(1, 2, 0).numpy()
    elif isinstance(image, np.ndarray):
        array = image.astype(np.float64)
        if image.dtype == np.uint8:
            array = array / 255.0
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3, 4):
            array = array.transpose(1, 2, 0)  # channels first
    else:
        raise SettingError("image", "a tensor, a numpy array or a Pillow image", image, "")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise SettingError("image", "an image with 1, 3 or 4 channels", image, "")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.clip(array[..., :3], 0.0, 1.0)

"""Turning a layer's output into maps, and maps into pictures at the input's resolution.

- ``spatial``: the layer's activations (or gradients) as ``(N, C, h, w)``, through ``reshape=``
  for layers whose output is not already a grid of feature maps (transformer tokens).
- ``TokenGrid`` / ``vit_reshape``: the ready reshape for ViT-style token sequences
  ``(N, class_tokens + h * w, D) -> (N, D, h, w)``.
- ``upsample``: bilinear interpolation to the input size, with pixel centres aligned
  (``align_corners=False``): output pixel ``i`` reads the source at ``(i + 1/2) h / H - 1/2``,
  clamped to the border. This is bilinear interpolation ``sum_ab w_a w_b A_ab`` with tent weights on
  half-pixel centres, and what OpenCV's ``cv2.resize`` and PIL do when enlarging.
- ``min_max``: per-sample ``(m - min m) / (max m - min m)``; a constant map becomes zeros.
- ``fuse``: several layers' maps as one (``layer=[...]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from attrib.core.errors import LayerError, SettingError
from attrib.core.inputs import Inputs, leaves

__all__ = [
    "Normalize",
    "Reshape",
    "TokenGrid",
    "finish",
    "fuse",
    "image_size",
    "input_size",
    "min_max",
    "spatial",
    "upsample",
    "vit_reshape",
]

Reshape = Callable[[torch.Tensor], torch.Tensor]
Normalize = Literal["minmax"] | None
NORMALIZATIONS = (None, "minmax")


class TokenGrid:
    """``(N, class_tokens + h * w, D)`` tokens -> ``(N, D, h, w)`` maps (ViT, DeiT, BEiT).

    The first ``class_tokens`` tokens (class / distillation tokens) are dropped; the others are
    laid out row by row on an ``(h, w)`` grid: ``grid`` when given, else the square grid that
    the token count implies. ``class_tokens=0`` reads plain token sequences (Swin's flattened
    windows). A class rather than a closure, so that methods holding it can be pickled.
    """

    def __init__(self, grid: tuple[int, int] | None = None, class_tokens: int = 1) -> None:
        if grid is not None and (
            len(grid) != 2 or any(not isinstance(g, int) or g < 1 for g in grid)
        ):
            raise SettingError("grid", "None or (h, w), two positive ints", grid, "")
        if isinstance(class_tokens, bool) or not isinstance(class_tokens, int) or class_tokens < 0:
            raise SettingError("class_tokens", "an int >= 0", class_tokens, "")
        self.grid = grid
        self.class_tokens = class_tokens

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 3:
            raise LayerError(
                "reshape",
                "token outputs of shape (N, tokens, features) for TokenGrid",
                tokens,
                "Pass reshape= a callable that returns (N, C, H, W) for this layer.",
            )
        n, length, features = tokens.shape
        patches = length - self.class_tokens
        h, w = self.grid if self.grid is not None else _square(patches)
        if h * w != patches:
            raise LayerError(
                "reshape",
                f"{self.class_tokens} class token(s) and {h} x {w} = {h * w} patch tokens",
                tokens,
                "Pass vit_reshape(grid=(h, w), class_tokens=...) matching the model.",
            )
        grid = tokens[:, self.class_tokens :].reshape(n, h, w, features)
        return grid.permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return f"vit_reshape(grid={self.grid}, class_tokens={self.class_tokens})"


def _square(patches: int) -> tuple[int, int]:
    side = math.isqrt(max(patches, 0))
    if side * side != patches or side == 0:
        raise LayerError(
            "reshape",
            "a square number of patch tokens (for the automatic grid)",
            f"{patches} patch tokens",
            "Pass vit_reshape(grid=(h, w)) with the model's patch grid.",
        )
    return side, side


def vit_reshape(grid: tuple[int, int] | None = None, class_tokens: int = 1) -> TokenGrid:
    """The reshape for ViT-style layers: drop the class token(s), lay tokens on a grid."""
    return TokenGrid(grid, class_tokens)


def spatial(
    tensor: torch.Tensor, reshape: Reshape | None, layer_name: str, n_samples: int
) -> torch.Tensor:
    """``tensor`` (a layer's output or its gradient) as maps ``(N, C, h, w)``.

    ``reshape`` must only move values (index, reshape, permute): it is applied to the
    activations and to their gradients alike.
    """
    maps = reshape(tensor) if reshape is not None else tensor
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4 or maps.shape[0] != n_samples:
        hint = (
            "Check that reshape= returns (N, C, H, W)."
            if reshape is not None
            else "CAM methods need a layer that outputs feature maps (N, C, H, W), such as a "
            "convolution, or transformer tokens (N, tokens, C). For tokens whose layout was "
            "not found pass reshape='vit', reshape='swin', vit_reshape(grid=(h, w), "
            "class_tokens=k) or any callable that returns (N, C, H, W)."
        )
        raise LayerError(
            "layer",
            f"a layer whose output is a spatial map (N={n_samples}, C, H, W)",
            f"{_shape(maps)} from {layer_name!r}",
            hint,
        )
    return maps


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def image_size(inputs: Inputs) -> tuple[int, int] | None:
    """The (H, W) of the first image-shaped input ``(N, C, H, W)``, ``None`` without one."""
    for tensor in leaves(inputs):
        if tensor.dim() == 4:
            return int(tensor.shape[-2]), int(tensor.shape[-1])
    return None


def input_size(inputs: Inputs) -> tuple[int, int]:
    """The (H, W) that maps are upsampled to: the first image-shaped input's."""
    for tensor in leaves(inputs):
        if tensor.dim() == 4:
            return int(tensor.shape[-2]), int(tensor.shape[-1])
    raise SettingError(
        "upsample",
        "images (N, C, H, W) to upsample the maps to",
        leaves(inputs)[0],
        "Pass upsample=False to keep the maps at the layer's resolution.",
    )


def upsample(
    maps: torch.Tensor, size: tuple[int, int], align_corners: bool = False
) -> torch.Tensor:
    """``(N, h, w) -> (N, H, W)``: bilinear, pixel centres aligned (see the module docstring).

    ``align_corners=True`` maps corner pixel centres onto each other instead (source position
    ``i (h - 1) / (H - 1)``), as ``torch.nn.UpsamplingBilinear2d`` does.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(
        maps.unsqueeze(1), size=size, mode="bilinear", align_corners=align_corners
    )[:, 0]


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Per-sample ``(m - min) / (max - min)`` over the last two dimensions; constant -> 0."""
    flat = maps.flatten(-2)
    low = flat.amin(-1, keepdim=True)
    span = flat.amax(-1, keepdim=True) - low
    # a constant map carries no ranking of locations: zeros rather than 0/0
    scaled = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, 1), 0)
    return scaled.view_as(maps)


def finish(
    maps: torch.Tensor,
    *,
    relu: bool,
    size: tuple[int, int] | None,
    normalize: Normalize,
) -> torch.Tensor:
    """The steps every CAM shares, in the papers' order: ReLU at the layer's resolution, then
    upsampling (``size=None``: none), then the per-sample normalisation."""
    if relu:
        maps = torch.relu(maps)
    if size is not None:
        maps = upsample(maps, size)
    if normalize == "minmax":
        maps = min_max(maps)
    return maps


def fuse(
    maps: Sequence[torch.Tensor],
    *,
    relu: bool,
    size: tuple[int, int] | None,
    normalize: Normalize,
) -> torch.Tensor:
    """Several layers' maps ``(N, h_l, w_l)`` as one, as pytorch-grad-cam fuses the maps of
    several target layers (``BaseCAM.aggregate_multi_layers``)::

        L = (1 / |layers|) sum_l Up(s(ReLU(M_l))),

    ``s`` the per-sample min-max scaling at the layer's resolution (layers differ in scale by
    orders of magnitude; scaled, each counts alike), ``Up`` the upsampling to ``size``; then
    ``normalize``. The ReLU is the method's (``relu=False`` scales the signed maps);
    pytorch-grad-cam always applies it, and adds 1e-7 to each layer's range. With
    ``size=None`` the layers must have one resolution.
    """
    scaled = []
    for layer_map in maps:
        layer_map = min_max(torch.relu(layer_map) if relu else layer_map)
        scaled.append(upsample(layer_map, size) if size is not None else layer_map)
    sizes = sorted({tuple(m.shape[-2:]) for m in scaled})
    if len(sizes) > 1:
        raise SettingError(
            "upsample",
            "True to fuse the maps of layers of different resolutions",
            f"layers with maps of sizes {sizes}",
            "Pass upsample=True (the maps are fused at the input's resolution).",
        )
    fused = torch.stack(scaled).mean(dim=0)
    return min_max(fused) if normalize == "minmax" else fused


def check_normalize(normalize: object) -> Normalize:
    if normalize not in NORMALIZATIONS:
        raise SettingError("normalize", "None or 'minmax'", normalize, "")
    return normalize  # type: ignore[return-value]

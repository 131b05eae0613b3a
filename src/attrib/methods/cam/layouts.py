"""Where a transformer layer's values sit on the image: the reshape CAM methods need, found.

CAM methods weigh feature maps ``(N, C, h, w)``. Convolutions give them; transformers give
tokens, and pytorch-grad-cam users write a ``reshape_transform`` for every model by hand.
``reshape="auto"`` (the default of every CAM method) finds it, in this order:

1. The model says it (most reliable: no guess from shapes). Known families, found anywhere
   among ``model.modules()`` (so a wrapper around the network is fine):

   - torchvision ``VisionTransformer``: ``(N, 1 + h w, C)`` tokens, one class token, the grid
     ``(H / p, W / p)`` of its ``patch_size`` ``p``;
   - Hugging Face ViT-style configs (``model_type`` ``vit``, ``deit``, ``beit``, ``dinov2``,
     ...): ``(N, k + h w, C)`` with ``k`` prefix tokens (1 class token; DeiT 2: class and
     distillation; DINOv2 with registers ``1 + num_register_tokens``), the grid of
     ``config.patch_size``;
   - torchvision ``SwinTransformer``: channels-last maps ``(N, h, w, C)`` (every 4-D output
     but convolutions, pooling and the final ``Permute([0, 3, 1, 2])``);
   - Hugging Face Swin configs (``swin``, ``swinv2``, ``donut-swin``): ``(N, h w, C)`` tokens
     and no prefix, the grid of stage ``s`` being ``ceil(H / (p 2^s)) x ceil(W / (p 2^s))``.

2. Else, for a layer of tokens ``(N, L, C)`` of a model of images ``(N, c, H, W)``, the shapes:
   ``L = k + (H / p) (W / p)`` for ``k`` in 0, 1, 2 prefix tokens and a patch side ``p``
   dividing ``H`` and ``W``. One solution: used; none or several: a ``LayerError`` listing
   them and the ways to say it (``reshape="vit"``, ``"swin"``, ``vit_reshape(grid=...,
   class_tokens=...)`` or any callable).

3. A 4-D output of any other model is taken as it is, channels first (convolutions).

``reshape="vit"`` and ``reshape="swin"`` name the family and let the model or the shapes give
the numbers (prefix tokens, grid); a callable is used as it is. The reshapes here are classes,
not closures, so that methods holding them pickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from attrib.core.errors import LayerError
from attrib.methods.cam.maps import TokenGrid

__all__ = [
    "LAYOUTS",
    "ChannelsLast",
    "Family",
    "choose_reshape",
    "default_transformer_layer",
    "family_of",
]

LAYOUTS = ("auto", "vit", "swin")
Reshape = Callable[[torch.Tensor], torch.Tensor]

# Hugging Face model types laid out as [prefix tokens, patch tokens row by row]: the number
# of prefix tokens (class token; DeiT adds a distillation token)
_HF_VIT_PREFIX = {
    "vit": 1,
    "deit": 2,
    "beit": 1,
    "data2vec-vision": 1,
    "dinov2": 1,
    "dinov2_with_registers": 1,  # + config.num_register_tokens
    "vit_msn": 1,
}
_HF_SWIN = ("swin", "swinv2", "donut-swin")

HOW = (
    "Say it: reshape='vit' (prefix tokens, then patch tokens row by row: ViT, DeiT), "
    "reshape='swin' (channels-last grids: Swin), reshape=vit_reshape(grid=(h, w), "
    "class_tokens=k), or any callable tensor -> (N, C, h, w), e.g. "
    "GradCAM(model, 'encoder.layers.encoder_layer_11.ln_1', reshape='vit')."
)


class ChannelsLast:
    """Channels-last values as maps: ``(N, h, w, C) -> (N, C, h, w)``, and token sequences
    without prefix ``(N, h w, C) -> (N, C, h, w)`` on ``grid`` (square when ``None``)."""

    def __init__(self, grid: tuple[int, int] | None = None) -> None:
        self.grid = grid

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        if values.dim() == 4:
            return values.permute(0, 3, 1, 2)
        if values.dim() == 3:
            return TokenGrid(self.grid, class_tokens=0)(values)
        raise LayerError(
            "reshape",
            "channels-last maps (N, h, w, C) or tokens (N, h w, C) for reshape='swin'",
            values,
            HOW,
        )

    def __repr__(self) -> str:
        return f"ChannelsLast(grid={self.grid})"


@dataclass(frozen=True)
class Family:
    """What a known transformer says about its layout.

    Attributes:
        kind: ``"vit"`` (prefix tokens, then a grid of patch tokens) or ``"swin"`` (grids,
            channels last; token sequences of one grid per stage).
        source: where it was read, for messages (``"torchvision VisionTransformer"``).
        prefix: tokens before the patch tokens (``"vit"``).
        patch: the patch side in pixels (rows, columns).
        stages: ``"swin"``: how many times the grid halves (patch merging) at most.
        channels_last: 4-D outputs are ``(N, h, w, C)`` (torchvision's Swin).
    """

    kind: Literal["vit", "swin"]
    source: str
    prefix: int
    patch: tuple[int, int]
    stages: int = 0
    channels_last: bool = False


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _torchvision_class(module: nn.Module) -> str | None:
    """The name of the torchvision model class ``module`` is (or subclasses), if any."""
    for kind in type(module).__mro__:
        if kind.__module__.startswith("torchvision.models"):
            return kind.__name__
    return None


def _family_of_module(module: nn.Module) -> Family | None:
    torchvision_class = _torchvision_class(module)
    if torchvision_class == "VisionTransformer":
        return Family("vit", "torchvision VisionTransformer", 1, _pair(module.patch_size))
    if torchvision_class == "SwinTransformer":
        features: Any = module.features
        patch = _pair(features[0][0].stride)
        merges = sum(type(m).__name__.startswith("PatchMerging") for m in features)
        return Family("swin", "torchvision SwinTransformer", 0, patch, merges, True)
    if torchvision_class is not None:
        return None
    config = getattr(module, "config", None)
    model_type = getattr(config, "model_type", None)
    patch_size = getattr(config, "patch_size", None)
    if not isinstance(model_type, str) or patch_size is None:
        return None
    patch = _pair(patch_size)
    if model_type in _HF_VIT_PREFIX:
        prefix = _HF_VIT_PREFIX[model_type] + int(getattr(config, "num_register_tokens", 0) or 0)
        return Family("vit", f"Hugging Face {model_type!r} config", prefix, patch)
    if model_type in _HF_SWIN:
        stages = len(getattr(config, "depths", ())) or 1
        return Family("swin", f"Hugging Face {model_type!r} config", 0, patch, stages - 1)
    return None


def family_of(model: nn.Module) -> Family | None:
    """The first known transformer family among ``model.modules()`` (``None``: none)."""
    for module in model.modules():
        found = _family_of_module(module)
        if found is not None:
            return found
    return None


def default_transformer_layer(model: nn.Module) -> str | None:
    """The layer CAM methods explain by default in a known transformer (``None``: not one):
    the first normalisation of the last block for ViTs (its patch tokens still reach the
    class token through that block's attention; the block's output reaches the head through
    the class token alone, so its patch tokens have no gradient), the last normalisation of
    the last block for Swin (whose head averages every position). These are the layers
    pytorch-grad-cam's tutorials choose."""
    family = family_of(model)
    if family is None:
        return None
    wanted = {
        "vit": ("ln_1", "layernorm_before", "norm1"),
        "swin": ("norm2", "layernorm_after"),
    }[family.kind]
    found = [
        name
        for name, _ in model.named_modules()
        if name.rsplit(".", 1)[-1] in wanted and _in_a_block(name)
    ]
    return found[-1] if found else None


def _in_a_block(name: str) -> bool:
    # block norms sit one level below a numbered (or named) block, never at the top level
    return name.count(".") >= 2


def _channels_first(layer: nn.Module) -> bool:
    """Whether a 4-D output of ``layer`` is channels first even in a channels-last model."""
    if isinstance(
        layer,
        (
            nn.modules.conv._ConvNd,
            nn.modules.pooling._AdaptiveAvgPoolNd,
            nn.modules.pooling._AdaptiveMaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._MaxPoolNd,
        ),
    ):
        return True
    dims = getattr(layer, "dims", None)  # torchvision.ops.misc.Permute
    return type(layer).__name__ == "Permute" and list(dims or ()) == [0, 3, 1, 2]


@dataclass(frozen=True)
class _Candidate:
    prefix: int
    grid: tuple[int, int]

    def __str__(self) -> str:
        tokens = f"{self.prefix} prefix token(s) + " if self.prefix else ""
        return f"{tokens}{self.grid[0]} x {self.grid[1]} patch tokens"


def _grids(
    length: int,
    prefixes: tuple[int, ...],
    image: tuple[int, int] | None,
    patches: tuple[tuple[int, int], ...] | None,
) -> list[_Candidate]:
    """Every (prefix, grid) that lays ``length`` tokens on the image: grids ``(H/p, W/p)`` of
    the ``patches`` given (``ceil`` for Swin's padded stages), of any ``p`` dividing ``H``
    and ``W`` when none are, or square grids when the image size is unknown."""
    found = []
    for prefix in prefixes:
        patch_tokens = length - prefix
        if patch_tokens < 1:
            continue
        if image is None:
            side = math.isqrt(patch_tokens)
            if side * side == patch_tokens:
                found.append(_Candidate(prefix, (side, side)))
            continue
        height, width = image
        if patches is not None:
            grids = {(-(-height // ph), -(-width // pw)) for ph, pw in patches}
        else:
            grids = {
                (height // p, width // p)
                for p in range(1, min(height, width) + 1)
                if height % p == 0 and width % p == 0
            }
        found += [_Candidate(prefix, g) for g in sorted(grids) if g[0] * g[1] == patch_tokens]
    return found


def choose_reshape(
    setting: Any,
    model: nn.Module,
    layer: nn.Module,
    name: str,
    values: torch.Tensor,
    image: tuple[int, int] | None,
) -> Reshape | None:
    """The reshape that turns ``values`` (``layer``'s output, named ``name``) into maps
    ``(N, C, h, w)`` for the ``reshape`` setting (see the module docstring); ``None`` where
    the values are to be taken as they are. ``image``: the input's ``(H, W)``, if any."""
    if setting is None or callable(setting):
        return setting
    family = family_of(model)
    kind = setting if setting != "auto" else (family.kind if family is not None else None)
    known = family if family is not None and family.kind == kind else None
    if values.dim() == 4:
        if kind == "swin" and not _channels_first(layer):
            if known is None or known.channels_last or setting == "swin":
                return ChannelsLast()
        return None  # channels first: a convolution's maps
    if values.dim() != 3:
        return None  # not maps nor tokens: spatial() says what is expected
    length = int(values.shape[1])
    patches: tuple[tuple[int, int], ...] | None = None
    if kind == "swin":
        prefixes: tuple[int, ...] = (0,)
        if known is not None:
            ph, pw = known.patch
            patches = tuple((ph * 2**s, pw * 2**s) for s in range(known.stages + 1))
    elif kind == "vit":
        prefixes = (known.prefix,) if known is not None else (1, 2)
        patches = (known.patch,) if known is not None else None
    else:
        prefixes = (0, 1, 2)
    found = _grids(length, prefixes, image, patches)
    if len(found) == 1:
        (one,) = found
        if kind == "swin":
            return ChannelsLast(one.grid)
        return TokenGrid(one.grid, one.prefix)
    source = f"a {known.source} layout" if known is not None else "the shapes alone"
    where = f"a {image[0]} x {image[1]} image" if image is not None else "an unknown image size"
    options = (
        f"it could be {' or '.join(map(str, found))}" if found else f"no grid of {source} fits"
    )
    raise LayerError(
        "reshape",
        f"a layer whose tokens can be laid out on the image ({source}, reshape={setting!r})",
        f"{length} tokens of {int(values.shape[2])} features from {name!r} on {where}: {options}",
        HOW,
    )

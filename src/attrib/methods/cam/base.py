"""What every CAM method shares: the layer(s), the reshape, the smoothings, and the road from
the layer's maps to an ``Attribution`` at the input's resolution.

A CAM method only says how it turns the layer's activations (and gradients, or scores of
masked and ablated copies) into one map per sample: ``compute``. The activations always come
from the core engine, ``attrib.core.grad.batched_layer_gradients``: one forward (whose graph
starts at the layer) and one backward from the target score to the layer, no further. That
forward also resolves ``target="predicted"``, and the backward proves that the layer is on the
path to the target score (a ``LayerError`` says so when it is not).

Around ``compute``, as pytorch-grad-cam offers them (``BaseCAM``):

- several layers (``layer=["layer3", "layer4"]``): each layer's map as the method makes it,
  fused by ``attrib.methods.cam.maps.fuse`` (its ``aggregate_multi_layers``);
- ``aug_smooth=True``: the mean map over ``AUGMENTATIONS`` (horizontal flip x brightness
  factors 0.9, 1, 1.1, its ttach transforms), each map flipped back before averaging;
- ``eigen_smooth=True``: the channel terms ``w_k A^k`` projected on their first principal
  component instead of summed (``attrib.methods.cam.rules.first_component``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.grad import LayerCapture, batched_layer_gradients
from attrib.core.inputs import Inputs, Model, batch_size_of, module_of
from attrib.core.layers import last_conv_layer, layer_name, resolve_layer
from attrib.core.result import Attribution
from attrib.core.settings import FLAG, Check, Choice, Setting
from attrib.core.target import ResolvedTarget, Target
from attrib.methods.base import Method
from attrib.methods.cam import rules
from attrib.methods.cam.layouts import LAYOUTS, choose_reshape, default_transformer_layer
from attrib.methods.cam.maps import (
    NORMALIZATIONS,
    Reshape,
    finish,
    fuse,
    image_size,
    input_size,
    min_max,
    spatial,
)

__all__ = ["AUGMENTATIONS", "CAMMethod", "Computed", "LayerSpec"]

LayerSpec = str | nn.Module | Sequence[str | nn.Module] | None

AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple(
    (flip, factor) for flip in (False, True) for factor in (1.0, 0.9, 1.1)
)
"""``aug_smooth``'s test-time augmentations: (flip left-right, factor the input is multiplied
by), the identity first. pytorch-grad-cam's default ``tta_transforms``: ttach's
``HorizontalFlip()`` x ``Multiply(factors=[0.9, 1, 1.1])``."""


class _Layers(Check):
    """A layer (dotted name or module), ``None`` (the last convolution), or a non-empty list or
    tuple of layers, kept as a tuple."""

    @property
    def what(self) -> str:
        return "None, a dotted layer name or an nn.Module, or a list of them (their maps fused)"

    def accepts(self, value: Any) -> bool:
        if value is None or isinstance(value, (str, nn.Module)):
            return True
        return (
            isinstance(value, (list, tuple))
            and len(value) > 0
            and all(isinstance(v, (str, nn.Module)) for v in value)
        )

    def convert(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class _Reshape(Check):
    """``"auto"``, ``"vit"``, ``"swin"`` (``attrib.methods.cam.layouts``), ``None`` (the
    layer's output as it is) or a callable."""

    @property
    def what(self) -> str:
        return (
            "'auto' (found from the model or the shapes), 'vit', 'swin', None (the output as "
            "it is) or a callable tensor -> (N, C, H, W)"
        )

    def accepts(self, value: Any) -> bool:
        return value is None or callable(value) or (isinstance(value, str) and value in LAYOUTS)


def _shown_layer(layer: Any) -> Any:
    if isinstance(layer, tuple):
        return [_shown_layer(one) for one in layer]
    return type(layer).__name__ if isinstance(layer, nn.Module) else layer


@dataclass(frozen=True)
class Computed:
    """A CAM method's maps before ReLU, upsampling and normalisation, with their context."""

    maps: torch.Tensor  # (N, h, w)
    target: ResolvedTarget
    output: Any
    params: dict[str, Any] = field(default_factory=dict)  # extra entries for Attribution.params


class CAMMethod(Method):
    """Base class of the CAM family: ``method(x, target=...) -> Attribution`` with ``values``
    of shape ``(N, H, W)`` (``channel_dim=None``).

    Args:
        model: the ``nn.Module`` to explain.
        layer: a dotted name from ``model.named_modules()`` or the module itself; default:
            the last convolution (``attrib.core.layers.last_conv_layer``), or in a known
            vision transformer the first normalisation of its last block (Swin: the last
            one; ``attrib.methods.cam.layouts.default_transformer_layer``). A list of layers
            fuses their maps (``attrib.methods.cam.maps.fuse``: each map ReLU'd, min-max
            scaled at its layer's resolution, upsampled, then averaged), as pytorch-grad-cam
            does with several ``target_layers``; ``params["layer"]`` lists their names. Each
            layer costs what one layer costs (gradient CAMs: a forward and a backward).
        reshape: how the layer's output becomes maps ``(N, C, h, w)``: ``"auto"`` (default)
            finds the layout of transformer tokens from the model (torchvision and Hugging
            Face ViT, DeiT, Swin) or, failing that, from the shapes, and takes 4-D outputs
            as they are (see ``attrib.methods.cam.layouts``); ``"vit"`` or ``"swin"`` name
            the layout; ``None`` takes the output as it is; a callable (``vit_reshape(...)``
            or any function that only moves values) is used as it is.
        upsample: bilinear upsampling to the input's ``(H, W)`` (``False`` keeps ``(h, w)``).
        normalize: ``None`` (the formula's values) or ``"minmax"`` (each map to [0, 1]).
        relu: apply the ReLU of the papers (``False`` keeps the sign).
        aug_smooth: the mean of the maps of the input flipped left-right or not and multiplied
            by 0.9, 1 and 1.1 (``AUGMENTATIONS``), each flipped back: 6 passes. With
            ``normalize="minmax"`` each map is scaled before the mean and the mean again.
        eigen_smooth: the map is the projection of the channel terms (``w_k A^k``) on their
            first principal component instead of their sum (``rules.first_component``).
        output: which part of the model's output holds the scores (see ``attrib.core.target``).
        batch_size: the most rows in one forward.
    """

    module: nn.Module  # the network whose layers CAM methods look up (inside bind(...) too)

    layer = Setting(None, _Layers(), positional=True, shown=_shown_layer)
    reshape = Setting("auto", _Reshape())
    upsample = Setting(True, FLAG)
    normalize = Setting(None, Choice(NORMALIZATIONS))
    relu = Setting(True, FLAG)
    aug_smooth = Setting(False, FLAG)
    eigen_smooth = Setting(False, FLAG)

    def __init__(self, model: Model, *args: Any, **settings: Any) -> None:
        module = module_of(model)
        if module is None:
            raise SettingError("model", "an nn.Module (CAM methods look up its layers)", model, "")
        self.module = module
        super().__init__(model, *args, **settings)

    def resolve_layers(self) -> list[tuple[nn.Module, str]]:
        """Each layer module and its dotted name (the last convolution when none was given)."""
        specs = self.layer if isinstance(self.layer, tuple) else (self.layer,)
        found = []
        for spec in specs:
            if spec is None:
                spec = default_transformer_layer(self.module) or last_conv_layer(self.module)
            module = resolve_layer(self.module, spec)
            found.append((module, layer_name(self.module, module)))
        names = [name for _, name in found]
        if len(set(map(id, (m for m, _ in found)))) < len(found):
            raise SettingError(
                "layer", "different layers (each map counts once in the mean)", names, ""
            )
        return found

    @property
    def reduction(self) -> rules.Reduce:
        """How channel terms become a map: their sum, or their first principal component."""
        return rules.first_component if self.eigen_smooth else rules.channel_sum

    def capture(self, inputs: Inputs, target: Target, layer: nn.Module) -> LayerCapture:
        """Activations, gradients, scores, output and resolved target: one forward and one
        backward to the layer per chunk of ``batch_size`` samples (core engine)."""
        return batched_layer_gradients(
            self.model, inputs, layer, target, self.output, self.batch_size
        )

    def layout(self, tensor: torch.Tensor, name: str, inputs: Inputs) -> Reshape | None:
        """The reshape of layer ``name``'s output ``tensor`` (``reshape`` resolved: see
        ``attrib.methods.cam.layouts.choose_reshape``)."""
        layer = self.module.get_submodule(name) if name else self.module
        return choose_reshape(self.reshape, self.module, layer, name, tensor, image_size(inputs))

    def maps(self, tensor: torch.Tensor, name: str, inputs: Inputs) -> torch.Tensor:
        """A captured layer tensor as ``(N, C, h, w)`` maps (through ``reshape``)."""
        return spatial(tensor, self.layout(tensor, name, inputs), name, batch_size_of(inputs))

    def compute(
        self, inputs: Inputs, target: Target, layer: nn.Module, name: str
    ) -> Computed:  # pragma: no cover - every method defines it
        raise NotImplementedError

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        if self.aug_smooth:
            return self.augmented(inputs, target)
        return self.explain_once(inputs, target)

    def explain_once(self, inputs: Inputs, target: Target) -> Attribution:
        """The map of ``inputs`` as they are: one layer's, or several layers' fused."""
        layers = self.resolve_layers()
        listed = isinstance(self.layer, tuple)
        size = input_size(inputs) if self.upsample else None  # fail before any forward
        if len(layers) == 1:
            layer, name = layers[0]
            got = self.compute(inputs, target, layer, name)
            values = finish(got.maps, relu=self.relu, size=size, normalize=self.normalize)
            shown: Any = [name] if listed else name
            return self.result(
                values, got.target.public, got.output, channel_dim=None, layer=shown, **got.params
            )
        maps: list[torch.Tensor] = []
        params: dict[str, list[Any]] = {}
        first: Computed | None = None
        for layer, name in layers:
            # the first layer's forward decides "predicted"; the others explain that class
            got = self.compute(
                inputs, target if first is None else first.target.public, layer, name
            )
            first = first or got
            maps.append(got.maps)
            for key, value in got.params.items():
                params.setdefault(key, []).append(value)
        assert first is not None  # at least one layer
        values = fuse(maps, relu=self.relu, size=size, normalize=self.normalize)
        names = [name for _, name in layers]
        return self.result(
            values, first.target.public, first.output, channel_dim=None, layer=names, **params
        )

    def augmented(self, inputs: Inputs, target: Target) -> Attribution:
        """``aug_smooth``: the mean over ``AUGMENTATIONS`` of ``explain_once`` of the flipped
        and scaled input, each map flipped back; the identity runs first and decides
        ``"predicted"`` for the others."""
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            raise SettingError(
                "aug_smooth",
                "False unless x is one batch of images (N, C, H, W) to flip and scale",
                inputs,
                "",
            )
        total: torch.Tensor | None = None
        first: Attribution | None = None
        for flip, factor in AUGMENTATIONS:
            x = inputs * factor if factor != 1.0 else inputs
            got = self.explain_once(
                x.flip(-1) if flip else x, target if first is None else first.target
            )
            values = got.values.flip(-1) if flip else got.values
            total = values if total is None else total + values
            first = first or got
        assert first is not None and total is not None
        values = total / len(AUGMENTATIONS)
        if self.normalize == "minmax":  # the mean of [0, 1] maps spans [0, 1] no more
            values = min_max(values)
        settings = set(self.setting_names()) - {"layer"}  # the call's layer names stay
        extras = {k: v for k, v in first.params.items() if k not in settings}
        return self.result(
            values,
            first.target,
            first.output,
            channel_dim=first.channel_dim,
            **{**extras, "augmentations": len(AUGMENTATIONS)},
        )

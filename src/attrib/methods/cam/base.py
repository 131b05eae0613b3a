"""What every CAM method shares: the layer, the reshape, and the road from the layer's maps to
an ``Attribution`` at the input's resolution.

A CAM method only says how it turns the layer's activations (and gradients, or scores of
masked and ablated copies) into one map per sample: ``compute``. The activations always come
from the core engine, ``attrib.core.grad.batched_layer_gradients``: one forward (whose graph
starts at the layer) and one backward from the target score to the layer, no further. That
forward also resolves ``target="predicted"``, and the backward proves that the layer is on the
path to the target score (a ``LayerError`` says so when it is not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.grad import LayerCapture, batched_layer_gradients
from attrib.core.inputs import Inputs, batch_size_of
from attrib.core.layers import last_conv_layer, layer_name, resolve_layer
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, ResolvedTarget, Target
from attrib.methods.base import Method
from attrib.methods.cam.maps import Normalize, Reshape, check_normalize, finish, input_size, spatial

__all__ = ["CAMMethod", "Computed", "LayerSpec", "check_choice", "check_flag"]

LayerSpec = str | nn.Module | None


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
            the last convolution (``attrib.core.layers.last_conv_layer``).
        reshape: turns the layer's output into maps ``(N, C, h, w)``; needed for transformer
            tokens (``vit_reshape()``, or any callable that only moves values).
        upsample: bilinear upsampling to the input's ``(H, W)`` (``False`` keeps ``(h, w)``).
        normalize: ``None`` (the formula's values) or ``"minmax"`` (each map to [0, 1]).
        relu: apply the ReLU of the papers (``False`` keeps the sign).
        output: which part of the model's output holds the scores (see ``attrib.core.target``).
        batch_size: the most rows in one forward.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        *,
        reshape: Reshape | None = None,
        upsample: bool = True,
        normalize: Normalize = None,
        relu: bool = True,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output=output, batch_size=batch_size)
        if not isinstance(model, nn.Module):
            raise SettingError("model", "an nn.Module (CAM methods look up its layers)", model, "")
        if layer is not None and not isinstance(layer, (str, nn.Module)):
            raise SettingError("layer", "None, a dotted layer name or an nn.Module", layer, "")
        if reshape is not None and not callable(reshape):
            raise SettingError("reshape", "None or a callable tensor -> (N, C, H, W)", reshape, "")
        self.layer = layer
        self.reshape = reshape
        self.upsample = check_flag("upsample", upsample)
        self.normalize = check_normalize(normalize)
        self.relu = check_flag("relu", relu)

    def settings(self) -> dict[str, Any]:
        layer = self.layer if not isinstance(self.layer, nn.Module) else type(self.layer).__name__
        return {
            "layer": layer,
            "reshape": self.reshape,
            "upsample": self.upsample,
            "normalize": self.normalize,
            "relu": self.relu,
            **super().settings(),
        }

    def resolve_layer(self) -> tuple[nn.Module, str]:
        """The layer module and its dotted name (the last convolution when none was given)."""
        spec = self.layer if self.layer is not None else last_conv_layer(self.model)
        module = resolve_layer(self.model, spec)
        return module, layer_name(self.model, module)

    def capture(self, inputs: Inputs, target: Target, layer: nn.Module) -> LayerCapture:
        """Activations, gradients, scores, output and resolved target: one forward and one
        backward to the layer per chunk of ``batch_size`` samples (core engine)."""
        return batched_layer_gradients(
            self.model, inputs, layer, target, self.output, self.batch_size
        )

    def maps(self, tensor: torch.Tensor, name: str, inputs: Inputs) -> torch.Tensor:
        """A captured layer tensor as ``(N, C, h, w)`` maps (through ``reshape``)."""
        return spatial(tensor, self.reshape, name, batch_size_of(inputs))

    def compute(
        self, inputs: Inputs, target: Target, layer: nn.Module, name: str
    ) -> Computed:  # pragma: no cover - every method defines it
        raise NotImplementedError

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        layer, name = self.resolve_layer()
        size = input_size(inputs) if self.upsample else None  # fail before any forward
        got = self.compute(inputs, target, layer, name)
        values = finish(got.maps, relu=self.relu, size=size, normalize=self.normalize)
        return Attribution(
            values=values,
            target=got.target.public,
            method=self.name,
            params={**self.settings(), "layer": name, **got.params},
            output=got.output,
            channel_dim=None,
        )


def check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingError(name, "True or False", value, "")
    return value


def check_choice(name: str, value: object, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise SettingError(name, f"one of {choices}", value, "")
    return value

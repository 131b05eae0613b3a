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
from attrib.core.inputs import Inputs, Model, batch_size_of, module_of
from attrib.core.layers import last_conv_layer, layer_name, resolve_layer
from attrib.core.result import Attribution
from attrib.core.settings import FLAG, Choice, Function, Instance, Optional, Setting
from attrib.core.target import ResolvedTarget, Target
from attrib.methods.base import Method
from attrib.methods.cam.maps import NORMALIZATIONS, finish, input_size, spatial

__all__ = ["CAMMethod", "Computed", "LayerSpec"]

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

    module: nn.Module  # the network whose layers CAM methods look up (inside bind(...) too)

    layer = Setting(
        None,
        Optional(Instance((str, nn.Module), "a dotted layer name or an nn.Module")),
        positional=True,
        shown=lambda layer: layer if not isinstance(layer, nn.Module) else type(layer).__name__,
    )
    reshape = Setting(None, Optional(Function("a callable tensor -> (N, C, H, W)")))
    upsample = Setting(True, FLAG)
    normalize = Setting(None, Choice(NORMALIZATIONS))
    relu = Setting(True, FLAG)

    def __init__(self, model: Model, *args: Any, **settings: Any) -> None:
        module = module_of(model)
        if module is None:
            raise SettingError("model", "an nn.Module (CAM methods look up its layers)", model, "")
        self.module = module
        super().__init__(model, *args, **settings)

    def resolve_layer(self) -> tuple[nn.Module, str]:
        """The layer module and its dotted name (the last convolution when none was given)."""
        spec = self.layer if self.layer is not None else last_conv_layer(self.module)
        module = resolve_layer(self.module, spec)
        return module, layer_name(self.module, module)

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
        return self.result(
            values, got.target.public, got.output, channel_dim=None, layer=name, **got.params
        )

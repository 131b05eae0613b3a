"""Neurons as targets: explain one unit of a hidden layer instead of an output class.

``target=neuron("layer3", (5, 2, 2))`` explains the activation of unit ``(5, 2, 2)`` of
``layer3``'s output (channel 5, row 2, column 2 of each sample's ``(C, H, W)`` map);
``neuron("layer3", channel=5)`` the channel's mean over its locations. Every method takes it
(Captum's ``Neuron*`` methods): the method explains the model whose output is that unit,
``x -> L(x)[unit]`` (``NeuronModel``), with the forward stopped right after the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attrib.core.at_layer import run_to_layer
from attrib.core.errors import TargetError
from attrib.core.inputs import Inputs, Model, module_of
from attrib.core.layers import layer_name, resolve_layer

__all__ = ["Neuron", "NeuronModel", "neuron"]


@dataclass(frozen=True)
class Neuron:
    """A unit (``index`` into one sample's layer output) or a channel's mean of ``layer``."""

    layer: str | nn.Module
    index: tuple[int, ...] | None = None
    channel: int | None = None

    def __post_init__(self) -> None:
        if (self.index is None) == (self.channel is None):
            raise TargetError(
                "neuron",
                "either a unit index (c, i, j) or channel=c",
                self,
                "neuron('layer3', (5, 2, 2)) or neuron('layer3', channel=5).",
            )
        if self.index is not None and not all(
            isinstance(i, int) and not isinstance(i, bool) for i in self.index
        ):
            raise TargetError("neuron", "a tuple of ints (the unit's index)", self.index)

    def describe(self, model: Any) -> str:
        module = module_of(model)
        name = (
            layer_name(module, self.layer)
            if isinstance(self.layer, nn.Module) and module is not None
            else str(self.layer)
        )
        where = f"channel {self.channel} (mean)" if self.channel is not None else str(self.index)
        return f"{name} {where}"


def neuron(
    layer: str | nn.Module, unit: tuple[int, ...] | int | None = None, *, channel: int | None = None
) -> Neuron:
    """The target "unit ``unit`` of ``layer``" (an index into one sample's output of the
    layer, e.g. ``(c, i, j)``; an int for a flat layer), or "the mean of ``channel``"."""
    index = (unit,) if isinstance(unit, int) else (tuple(unit) if unit is not None else None)
    return Neuron(layer, index, channel)


class NeuronModel:
    """``x -> L(x)[unit]`` (one score per row) for ``model`` and the neuron ``target``."""

    def __init__(self, model: Model, target: Neuron) -> None:
        module = module_of(model)
        if module is None:
            raise TargetError(
                "target", "a neuron of a model with layers (an nn.Module)", target, ""
            )
        self.model = model
        self.target = target
        self.layer = resolve_layer(module, target.layer)

    @property
    def module(self) -> Model:
        return self.model

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        inputs: Inputs = kwargs if kwargs and not args else args[0]
        return self._unit(run_to_layer(self.model, self.layer, inputs))

    def _unit(self, output: torch.Tensor) -> torch.Tensor:
        shape = tuple(output.shape[1:])
        if self.target.channel is not None:
            c = self.target.channel
            if output.dim() < 2 or not -shape[0] <= c < shape[0]:
                raise TargetError("target", f"a channel of the layer's {shape} output", c, "")
            return output[:, c].reshape(len(output), -1).mean(1)
        index = self.target.index or ()
        if len(index) != len(shape) or not all(
            -s <= i < s for i, s in zip(index, shape, strict=True)
        ):
            raise TargetError(
                "target",
                f"a unit index into one sample's layer output of shape {shape}",
                index,
                "Give one index per dimension after the batch.",
            )
        unit: tuple[Any, ...] = (slice(None), *index)
        return output[unit]

"""A model explained at one of its layers.

For a layer ``L`` and inputs ``x``, the model at the layer is the function of the layer's
output (or input) ``a``:

    f_L(a) = f(x) with the output of L replaced by a,

so that ``f_L(L(x)) = f(x)``. Any input attribution method applied to ``f_L`` at ``a = L(x)``
attributes to the layer (Captum's ``Layer*`` methods): the gradient at the layer, gradient x
activation, integrated gradients from ``L(x')`` (whose completeness gap is measured at the
layer: ``sum(values) - (f_L(L(x)) - f_L(L(x')))``), DeepLIFT and LRP from the layer down.

Each row a method builds (a path point, a noisy copy, a reference) replaces the layer's
output in a forward of the input of the sample it comes from (``attrib.core.rows``), so parts
of the network that do not pass through the layer (a residual branch around it) still see
that sample's input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attrib.core.errors import LayerError
from attrib.core.hooks import hooked, prepared
from attrib.core.inputs import Inputs, Model, batch_size_of, call_model, first_tensor
from attrib.core.rows import depth, rows_from, sample_rows, take_rows

__all__ = ["LayerModel", "layer_activations", "run_to_layer"]


class LayerModel:
    """``f_L``: the model ``model`` at ``layer`` for the samples ``inputs`` (see the module).

    ``replace_input=True`` replaces the layer's (first) input instead of its output.
    """

    per_sample_rows = True

    def __init__(
        self, model: Model, layer: nn.Module, inputs: Inputs, replace_input: bool = False
    ) -> None:
        self.model = model
        self.layer = layer
        self.inputs = inputs
        self.replace_input = replace_input
        self.level = depth()  # rows built from here on map back to ``inputs``

    @property
    def module(self) -> Model:
        return self.model

    def __call__(self, rows: torch.Tensor) -> Any:
        batch = take_rows(self.inputs, sample_rows(len(rows), self.level))
        if self.replace_input:

            def swap_input(module: nn.Module, args: tuple) -> tuple:
                if not args or not isinstance(args[0], torch.Tensor):
                    raise _not_a_tensor(module, "input")
                return (rows, *args[1:])

            with hooked(self.layer, forward_pre=swap_input):
                return call_model(self.model, batch)

        def swap_output(module: nn.Module, args: Any, output: Any) -> Any:
            try:
                _, put_back = first_tensor(output)
            except TypeError:
                raise _not_a_tensor(module, "output") from None
            return put_back(rows)

        with hooked(self.layer, forward=swap_output):
            return call_model(self.model, batch)


class _StopForwardError(Exception):
    """Ends a forward once the layer has run: nothing after it is needed."""


def run_to_layer(
    model: Model, layer: nn.Module, inputs: Inputs, *, replace_input: bool = False
) -> torch.Tensor:
    """The output (or first input) of ``layer`` in a forward of ``inputs``, with its graph
    (and its forward-mode tangent, under ``torch.func.jvp``); the forward stops there."""
    found: list[torch.Tensor] = []

    def keep_output(module: nn.Module, args: Any, output: Any) -> None:
        try:
            found.append(first_tensor(output)[0])
        except TypeError:
            raise _not_a_tensor(module, "output") from None
        raise _StopForwardError

    def keep_input(module: nn.Module, args: tuple) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            raise _not_a_tensor(module, "input")
        found.append(args[0])
        raise _StopForwardError

    hook = {"forward_pre": keep_input} if replace_input else {"forward": keep_output}
    try:
        with hooked(layer, **hook):
            call_model(model, inputs)
    except _StopForwardError:
        pass
    if not found:
        raise LayerError(
            "layer",
            "a layer the model runs on the way to its output",
            type(layer).__name__,
            "Choose a layer on the path from the input to the output.",
        )
    return found[0]


def layer_activations(
    model: Model,
    layer: nn.Module,
    inputs: Inputs,
    *,
    replace_input: bool = False,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The output (or first input) of ``layer`` at ``inputs``, ``(N, ...)``: forwards without
    gradients, ``batch_size`` samples at a time (a copy: later in-place operations of the
    network cannot change it)."""
    from attrib.core.batching import chunks, default_batch_size

    n = batch_size_of(inputs)
    size = batch_size or default_batch_size(inputs, n)
    parts: list[torch.Tensor] = []

    def keep_output(module: nn.Module, args: Any, output: Any) -> None:
        try:
            parts.append(first_tensor(output)[0].detach().clone())
        except TypeError:
            raise _not_a_tensor(module, "output") from None

    def keep_input(module: nn.Module, args: tuple) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            raise _not_a_tensor(module, "input")
        parts.append(args[0].detach().clone())

    hook = {"forward_pre": keep_input} if replace_input else {"forward": keep_output}
    with prepared(model), torch.no_grad(), hooked(layer, **hook):
        for chunk in chunks(n, 1, size):
            before = len(parts)
            with rows_from(chunk.sample):
                call_model(model, take_rows(inputs, chunk.sample))
            if len(parts) != before + 1:
                raise LayerError(
                    "layer",
                    "a layer that runs once per forward",
                    f"a layer that ran {len(parts) - before} times",
                    "Choose a layer the model calls once (not a shared or unused module).",
                )
    return torch.cat(parts)


def _not_a_tensor(module: nn.Module, what: str) -> LayerError:
    return LayerError(
        "layer",
        f"a layer whose {what} is a tensor (or a tuple starting with one)",
        type(module).__name__,
        "Choose a layer inside it, or one after it.",
    )

"""The gradient primitives every gradient method stands on.

Each is: forward, select one score per sample with the target, then one vector-Jacobian
product with respect to exactly what the method needs (the inputs, or one layer's output).
Parameters are frozen for the call, so autograd computes no weight gradient and no ``.grad``
is ever written; the model's flags and mode are restored afterwards.

Because each row's score depends only on that row (eval mode), the gradient of the summed
scores with respect to a batch is the batch of per-row gradients: one backward per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal, overload

import torch
from torch import nn

from attrib.core.errors import LayerError, ModelOutputError
from attrib.core.hooks import hooked, prepared
from attrib.core.inputs import (
    Inputs,
    Model,
    call_model,
    first_tensor,
    leaves,
    map_inputs,
    rebuild,
)
from attrib.core.layers import layer_name
from attrib.core.rows import rows_from
from attrib.core.target import OutputSelector, ResolvedTarget, Target, resolve_target

__all__ = [
    "InputCapture",
    "LayerCapture",
    "LayersCapture",
    "batched_forward_scores",
    "batched_input_gradients",
    "batched_layers_and_input_gradients",
    "decide_target",
    "forward_scores",
    "input_gradients",
    "layer_gradients",
    "layers_and_input_gradients",
]


def _resolved(
    target: Target | ResolvedTarget, output: Any, inputs: Inputs, selector: OutputSelector
) -> ResolvedTarget:
    if isinstance(target, ResolvedTarget):
        return target
    return resolve_target(target, output, leaves(inputs)[0].shape[0], selector)


@dataclass(frozen=True)
class InputCapture:
    """What one forward and backward to the inputs gives."""

    gradients: Inputs
    scores: torch.Tensor
    output: Any
    target: ResolvedTarget


def forward_scores(
    model: Model,
    inputs: Inputs,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
) -> tuple[torch.Tensor, Any, ResolvedTarget]:
    """Scores ``(rows,)``, the raw output and the resolved target of one forward, no graph."""
    with prepared(model), torch.no_grad():
        output = call_model(model, inputs)
        resolved = _resolved(target, output, inputs, output_selector)
        return resolved.scores(output), output, resolved


def input_gradients(
    model: Model,
    inputs: Inputs,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
) -> InputCapture:
    """Gradients of the target scores with respect to the inputs, from one forward/backward.

    ``target`` may be unresolved (``"predicted"`` is then decided by this very forward, so no
    extra forward is spent on it). Gradients have the structure of ``inputs``.
    """
    with prepared(model), torch.enable_grad():
        tracked = map_inputs(lambda t: t.detach().requires_grad_(True), inputs)
        output = call_model(model, tracked)
        resolved = _resolved(target, output, inputs, output_selector)
        scores = resolved.scores(output)
        _check_differentiable(scores, "the inputs")
        raw = torch.autograd.grad(scores.sum(), leaves(tracked), allow_unused=True)
        grads = [
            torch.zeros_like(t) if g is None else g
            for g, t in zip(raw, leaves(tracked), strict=True)
        ]
    return InputCapture(rebuild(inputs, grads), scores.detach(), _detached(output), resolved)


@dataclass(frozen=True)
class LayerCapture:
    """What one forward and backward at a layer gives: activations ``A`` and ``dF/dA``."""

    activations: torch.Tensor
    gradients: torch.Tensor
    scores: torch.Tensor
    output: Any
    target: ResolvedTarget


def layer_gradients(
    model: nn.Module,
    inputs: Inputs,
    layer: nn.Module,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
) -> LayerCapture:
    """Activations of ``layer`` and the gradients of the target scores with respect to them.

    The graph starts at the layer: the forward up to it builds no graph, and the backward
    stops there (no input gradient, no parameter gradient, no retained graph). The layer's
    output is handed on as a copy, so in-place operations after it (``out += identity``,
    ``ReLU(inplace=True)``) cannot change what we captured.
    """
    captured: list[torch.Tensor] = []

    def capture(module: nn.Module, args: Any, output: Any) -> Any:
        tensor, put_back = _output_tensor(model, module, output)
        start = tensor.detach().requires_grad_(True)
        captured.append(start)
        return put_back(start.clone())

    untracked = map_inputs(torch.Tensor.detach, inputs)
    with prepared(model), hooked(layer, forward=capture), torch.enable_grad():
        output = call_model(model, untracked)
        resolved = _resolved(target, output, inputs, output_selector)
        scores = resolved.scores(output)
    name = layer_name(model, layer)
    if not captured:
        raise LayerError(
            "layer",
            "a layer that the model's forward runs",
            name,
            "The forward never called it; pick a module that is used on this input.",
        )
    if len(captured) > 1:
        raise LayerError(
            "layer",
            "a layer that runs once per forward",
            f"{name!r}, which ran {len(captured)} times",
            "Its activations are ambiguous; choose a module that is used only once.",
        )
    activation = captured[0]
    grad = None
    if scores.requires_grad:  # the graph starts at the layer: no gradient means no path
        (grad,) = torch.autograd.grad(scores.sum(), activation, allow_unused=True)
    if grad is None:
        raise LayerError(
            "layer",
            "a layer on the path from the input to the target score",
            name,
            "The target score does not depend on this layer's output; choose a layer before it.",
        )
    return LayerCapture(activation.detach(), grad, scores.detach(), _detached(output), resolved)


@dataclass(frozen=True)
class LayersCapture:
    """What one forward and one backward give at the inputs and at several layers' outputs.

    ``modules[i]`` made ``activations[i]``, whose gradient is ``gradients[i]``: one entry per
    call, in the order the forward ran them (a module called twice has two entries).
    """

    input_gradients: Inputs
    modules: tuple[nn.Module, ...]
    activations: tuple[torch.Tensor, ...]
    gradients: tuple[torch.Tensor, ...]
    scores: torch.Tensor
    output: Any
    target: ResolvedTarget


def layers_and_input_gradients(
    model: Model,
    inputs: Inputs,
    layers: Sequence[nn.Module],
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
) -> LayersCapture:
    """Gradients of the target scores with respect to the inputs and to the output of every
    call of ``layers``, from one forward and one backward (``torch.autograd.grad`` with all
    of them as its inputs; no parameter gradient).

    Each layer's output is handed on as a copy, so in-place operations after it (a ReLU with
    ``inplace=True`` after a batch norm) change the copy, and the gradient is the one at the
    layer's own output. A layer output the score does not depend on has a zero gradient.
    """
    calls: list[tuple[nn.Module, torch.Tensor]] = []

    def capture(module: nn.Module, args: Any, output: Any) -> Any:
        tensor, put_back = _output_tensor(model, module, output)
        calls.append((module, tensor))
        return put_back(tensor.clone())

    with prepared(model), ExitStack() as stack, torch.enable_grad():
        for layer in dict.fromkeys(layers):  # each module hooked once
            stack.enter_context(hooked(layer, forward=capture))
        tracked = map_inputs(lambda t: t.detach().requires_grad_(True), inputs)
        output = call_model(model, tracked)
        resolved = _resolved(target, output, inputs, output_selector)
        scores = resolved.scores(output)
    _check_differentiable(scores, "the inputs")
    wanted = [*leaves(tracked), *(t for _, t in calls if t.requires_grad)]
    found = iter(torch.autograd.grad(scores.sum(), wanted, allow_unused=True))
    input_grads = [next(found) for _ in leaves(tracked)]
    layer_grads = [next(found) if t.requires_grad else None for _, t in calls]
    return LayersCapture(
        rebuild(
            inputs,
            [
                torch.zeros_like(t) if g is None else g
                for g, t in zip(input_grads, leaves(tracked), strict=True)
            ],
        ),
        tuple(m for m, _ in calls),
        tuple(t.detach() for _, t in calls),
        tuple(
            torch.zeros_like(t) if g is None else g
            for g, (_, t) in zip(layer_grads, calls, strict=True)
        ),
        scores.detach(),
        _detached(output),
        resolved,
    )


def _output_tensor(model: Any, module: nn.Module, output: Any) -> tuple[torch.Tensor, Any]:
    """A layer's output tensor and how to put a replacement back, or a ``LayerError``."""
    try:
        return first_tensor(output)
    except TypeError:
        raise LayerError(
            "layer",
            "a layer whose output is a tensor (or a tuple starting with one)",
            f"{type(output).__name__} from {layer_name(model, module)}",
            "Choose a layer that outputs a tensor.",
        ) from None


def _check_differentiable(scores: torch.Tensor, what: str) -> None:
    if not scores.requires_grad:
        raise ModelOutputError(
            "model",
            f"a target score that depends on {what} through autograd",
            "a score with no gradient",
            "The model detaches its output or runs under torch.no_grad(); remove that, "
            "or use a perturbation method (Occlusion, KernelSHAP) that needs no gradient.",
        )


def _detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, dict) and type(output) is dict:
        return {k: _detached(v) for k, v in output.items()}
    if type(output) in (tuple, list):
        return type(output)(_detached(v) for v in output)
    return output


def batched_input_gradients(
    model: Model,
    inputs: Inputs,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
    batch_size: int | None = None,
) -> InputCapture:
    """``input_gradients`` over a whole batch, at most ``batch_size`` samples per forward.

    The target is resolved by the same forwards that give the gradients: one forward and one
    backward per chunk, nothing else.
    """
    parts = _per_chunk(input_gradients, model, inputs, target, output_selector, batch_size)
    if len(parts) == 1:
        return parts[0]
    grads = map_inputs(lambda *g: torch.cat(g), *[p.gradients for p in parts])
    return InputCapture(
        grads,
        torch.cat([p.scores for p in parts]),
        _concat_outputs([p.output for p in parts]),
        _concat_targets([p.target for p in parts]),
    )


def batched_forward_scores(
    model: Model,
    inputs: Inputs,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, Any, ResolvedTarget]:
    """``forward_scores`` over a whole batch, at most ``batch_size`` rows per forward."""
    parts = _per_chunk(forward_scores, model, inputs, target, output_selector, batch_size)
    if len(parts) == 1:
        return parts[0]
    return (
        torch.cat([p[0] for p in parts]),
        _concat_outputs([p[1] for p in parts]),
        _concat_targets([p[2] for p in parts]),
    )


def batched_layer_gradients(
    model: Model,
    inputs: Inputs,
    layer: nn.Module,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
    batch_size: int | None = None,
) -> LayerCapture:
    """``layer_gradients`` over a whole batch, at most ``batch_size`` samples per forward."""

    def capture(m: nn.Module, x: Inputs, t: Any, sel: OutputSelector) -> LayerCapture:
        return layer_gradients(m, x, layer, t, sel)

    parts = _per_chunk(capture, model, inputs, target, output_selector, batch_size)
    if len(parts) == 1:
        return parts[0]
    return LayerCapture(
        torch.cat([p.activations for p in parts]),
        torch.cat([p.gradients for p in parts]),
        torch.cat([p.scores for p in parts]),
        _concat_outputs([p.output for p in parts]),
        _concat_targets([p.target for p in parts]),
    )


def batched_layers_and_input_gradients(
    model: Model,
    inputs: Inputs,
    layers: Sequence[nn.Module],
    target: Target | ResolvedTarget,
    output_selector: OutputSelector = None,
    batch_size: int | None = None,
) -> LayersCapture:
    """``layers_and_input_gradients`` over a whole batch, at most ``batch_size`` samples per
    forward; every chunk must run the same calls of ``layers`` (eval mode does)."""

    def capture(m: nn.Module, x: Inputs, t: Any, sel: OutputSelector) -> LayersCapture:
        return layers_and_input_gradients(m, x, layers, t, sel)

    parts = _per_chunk(capture, model, inputs, target, output_selector, batch_size)
    if len(parts) == 1:
        return parts[0]
    calls = [tuple(map(id, p.modules)) for p in parts]
    if any(c != calls[0] for c in calls):
        raise LayerError(
            "layers",
            "the same layer calls for every chunk of the batch",
            f"{len(set(calls))} different sequences of calls",
            "The forward depends on the data; pass batch_size= the whole batch.",
        )
    return LayersCapture(
        map_inputs(lambda *g: torch.cat(g), *[p.input_gradients for p in parts]),
        parts[0].modules,
        tuple(torch.cat(a) for a in zip(*[p.activations for p in parts], strict=True)),
        tuple(torch.cat(g) for g in zip(*[p.gradients for p in parts], strict=True)),
        torch.cat([p.scores for p in parts]),
        _concat_outputs([p.output for p in parts]),
        _concat_targets([p.target for p in parts]),
    )


def _per_chunk(
    capture: Callable[..., Any],
    model: Any,
    inputs: Inputs,
    target: Target | ResolvedTarget,
    output_selector: OutputSelector,
    batch_size: int | None,
) -> list[Any]:
    from attrib.core.batching import chunks, default_batch_size
    from attrib.core.target import target_for_rows

    n = leaves(inputs)[0].shape[0]
    size = batch_size or default_batch_size(inputs, n)
    if size >= n:
        return [capture(model, inputs, target, output_selector)]
    parts = []
    for chunk in chunks(n, 1, size, leaves(inputs)[0].device):
        with rows_from(chunk.sample):
            parts.append(
                capture(
                    model,
                    map_inputs(lambda t, s=chunk.start, e=chunk.stop: t[s:e], inputs),
                    target_for_rows(target, chunk.sample),
                    output_selector,
                )
            )
    return parts


def _concat_targets(targets: list[ResolvedTarget]) -> ResolvedTarget:
    first = targets[0]
    if first.indices is None:
        return first
    indices = [t.indices for t in targets if t.indices is not None]
    return ResolvedTarget(torch.cat(indices), None, first.output)


def _concat_outputs(outputs: list[Any]) -> Any:
    """Concatenate per-chunk model outputs where their structure allows it, else keep a list."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if type(first) is dict and all(isinstance(v, torch.Tensor) for v in first.values()):
        return {k: torch.cat([o[k] for o in outputs]) for k in first}
    return outputs


@overload
def decide_target(
    model: nn.Module | Callable[..., Any],
    inputs: Inputs,
    target: Literal["predicted"],
    *,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def decide_target(
    model: nn.Module | Callable[..., Any],
    inputs: Inputs,
    target: Target | ResolvedTarget,
    *,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> tuple[Target, torch.Tensor]: ...


def decide_target(
    model: nn.Module | Callable[..., Any],
    inputs: Inputs,
    target: Target | ResolvedTarget,
    *,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> tuple[Target, torch.Tensor]:
    """``target`` decided once, at ``inputs``, and the model's scores there.

    Returns ``(target, scores)``: ``"predicted"`` becomes the arg-max class of each sample (a
    long tensor ``(N,)``), so that every method and metric run afterwards, at perturbed or
    interpolated copies or on a randomized model, explains the same class; any other target
    comes back as given (a ``ResolvedTarget`` as its ``public`` form), checked against the
    output as ``resolve_target`` checks it. ``scores`` is the tensor of the model's output
    that ``output=`` selects (the logits), ``(N, ...)``. The model runs without gradients on
    at most ``batch_size`` samples at a time: ``ceil(N / batch_size)`` forwards.
    """

    from attrib.core.target import select_output

    def capture(
        m: Any, x: Inputs, t: Target | ResolvedTarget, sel: OutputSelector
    ) -> tuple[torch.Tensor, ResolvedTarget]:
        _, raw, resolved = forward_scores(m, x, t, sel)
        return select_output(raw, sel), resolved

    parts = _per_chunk(capture, model, inputs, target, output, batch_size)
    scores = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    if isinstance(target, str) and target == "predicted":
        classes = _concat_targets([p[1] for p in parts]).indices
        assert classes is not None  # resolve_target gives "predicted" indices or raises
        return classes, scores
    if isinstance(target, ResolvedTarget):
        return target.public, scores
    return target, scores

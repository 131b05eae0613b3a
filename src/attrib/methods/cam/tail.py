"""Running a model from one layer's output onward: what Ablation-CAM evaluates per channel.

``torch.fx`` traces the model with the layer kept as one leaf call, and the graph is cut
after it: the *tail* graph takes the layer's output (and any earlier value that the rest of
the network still reads, such as a residual input) and computes the model's output; a *head*
graph computes those earlier values once per sample. The tail shares the model's modules
(no copy of any weight). Where tracing fails (data-dependent control flow, a layer whose
output is a tuple, ...) or the cut does not reproduce the model's scores, the fallback runs
the whole network with a forward hook that replaces the layer's output: the same values,
at the cost of the layers before it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from attrib.core.hooks import hooked
from attrib.core.inputs import Inputs, Model, call_model, first_tensor, map_inputs

__all__ = ["Tail", "forward_tail", "traced_tail"]

# how closely the cut graph must reproduce the model's own scores (float32 recomputation)
AGREEMENT = 1e-4

Tail = Callable[[torch.Tensor, torch.Tensor], Any]  # (layer output rows, sample of each row)


class _LayerAsLeaf(fx.Tracer):
    """The default tracer, except that the chosen layer stays one call (even a Sequential)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return module is self.layer or super().is_leaf_module(module, qualified_name)


class _Split:
    """The traced model cut after the layer's node."""

    def __init__(self, tail: fx.GraphModule, head: fx.GraphModule | None) -> None:
        self.tail = tail
        self.head = head


def split_after(model: nn.Module, layer: nn.Module) -> _Split | None:
    """Cut ``model`` after ``layer``; ``None`` where ``torch.fx`` cannot trace it."""
    try:
        graph = _LayerAsLeaf(layer).trace(model)
    except Exception:  # tracing failures come in every type; the fallback is exact
        return None
    calls = [
        n
        for n in graph.nodes
        if n.op == "call_module" and model.get_submodule(str(n.target)) is layer
    ]
    if len(calls) != 1:
        return None
    cut = calls[0]
    if any(u.op == "call_function" and u.target is operator.getitem for u in cut.users):
        return None  # the layer returns a tuple: the hooked forward handles that
    downstream: set[fx.Node] = set()
    for node in graph.nodes:
        if node is not cut and any(a is cut or a in downstream for a in node.all_input_nodes):
            downstream.add(node)
    output = next(n for n in graph.nodes if n.op == "output")
    if output not in downstream:
        return None
    earlier = [
        n
        for n in graph.nodes
        if n is not cut
        and n not in downstream
        and n.op != "get_attr"  # parameters are read inside the tail itself
        and any(u in downstream for u in n.users)
    ]
    tail_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {cut: tail_graph.placeholder("layer_output")}
    for i, node in enumerate(earlier):
        env[node] = tail_graph.placeholder(f"earlier_{i}")
    for node in graph.nodes:
        needed_attr = node.op == "get_attr" and any(u in downstream for u in node.users)
        if node is output:
            tail_graph.output(fx.map_arg(node.args[0], lambda a: env[a]))
        elif node in downstream or needed_attr:
            env[node] = tail_graph.node_copy(node, lambda a: env[a])
    head = None
    if earlier:
        head_graph = fx.Graph()
        head_env: dict[fx.Node, fx.Node] = {}
        for node in graph.nodes:
            if node not in downstream and node is not output:
                head_env[node] = head_graph.node_copy(node, lambda a: head_env[a])
        head_graph.output(tuple(head_env[n] for n in earlier))
        head = fx.GraphModule(model, head_graph)
    return _Split(fx.GraphModule(model, tail_graph), head)


def traced_tail(split: _Split, inputs: Inputs) -> Tail | None:
    """The tail of ``split`` for these inputs (the head's values computed once per sample);
    ``None`` when an earlier value is not a per-sample tensor."""
    earlier: tuple[Any, ...] = ()
    if split.head is not None:
        with torch.no_grad():
            earlier = tuple(call_model(split.head, inputs))
        n = next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else len(inputs)
        if not all(isinstance(e, torch.Tensor) and e.dim() > 0 and len(e) == n for e in earlier):
            return None  # e.g. a batch size read before the layer: rows would not match it

    def run(rows: torch.Tensor, sample: torch.Tensor) -> Any:
        with torch.no_grad():
            return split.tail(rows, *(e[sample.to(e.device)] for e in earlier))

    return run


def forward_tail(model: Model, layer: nn.Module, inputs: Inputs) -> Tail:
    """The exact fallback: the whole network on each row's input, the layer's output
    replaced by the row (a forward hook from ``attrib.core.hooks``)."""

    def run(rows: torch.Tensor, sample: torch.Tensor) -> Any:
        def replace(module: nn.Module, args: Any, output: Any) -> Any:
            _, put_back = first_tensor(output)
            return put_back(rows)

        batch = map_inputs(lambda t: t[sample.to(t.device)], inputs)
        with hooked(layer, forward=replace), torch.no_grad():
            return call_model(model, batch)

    return run


def reproduces(
    tail: Tail,
    activations: torch.Tensor,
    score: Callable[[Any, torch.Tensor], torch.Tensor],
    expected: torch.Tensor,
) -> bool:
    """Whether ``tail`` gives the model's own scores at the captured activations, also with
    every sample twice (rows need not number the samples)."""
    n = len(activations)
    sample = torch.arange(n, device=activations.device).repeat(2)
    try:
        got = score(tail(activations[sample], sample), sample)
    except Exception:  # a cut graph that fails to run is a cut that does not work
        return False
    want = expected.to(got.device, got.dtype)[sample]
    scale = float(want.abs().max()) + 1e-12
    return bool((got - want).abs().max() <= AGREEMENT * scale)

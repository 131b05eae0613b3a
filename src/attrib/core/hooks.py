"""Context managers that change a model for the length of one explanation, and only that long.

Every change (hooks, swapped modules, overridden parameters, ``requires_grad`` flags, the
training mode) is undone in ``finally``: also when the model raises in the middle of a forward
or a backward. Nothing here is ever left on a user's model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError, warn
from attrib.core.inputs import Model, module_of

__all__ = [
    "evaluation_mode",
    "frozen_parameters",
    "hooked",
    "params_overridden",
    "prepared",
    "swapped",
]


@contextmanager
def hooked(
    module: nn.Module,
    *,
    forward: Callable | None = None,
    forward_pre: Callable | None = None,
    backward: Callable | None = None,
) -> Iterator[nn.Module]:
    """Register hooks on ``module`` for the body of the ``with`` block, then remove them.

    ``forward(module, args, output)`` may return a replacement output; ``forward_pre(module,
    args)`` replacement arguments; ``backward(module, grad_input, grad_output)`` replacement
    input gradients (a full backward hook).
    """
    handles = []
    try:
        if forward_pre is not None:
            handles.append(module.register_forward_pre_hook(forward_pre))
        if forward is not None:
            handles.append(module.register_forward_hook(forward))
        if backward is not None:
            handles.append(module.register_full_backward_hook(backward))
        yield module
    finally:
        for handle in handles:
            handle.remove()


def _parent_and_name(model: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    from attrib.core.layers import resolve_layer

    parent_name, _, child = dotted.rpartition(".")
    parent = resolve_layer(model, parent_name) if parent_name else model
    if child not in parent._modules:
        # resolve_layer raises the helpful error with close names
        resolve_layer(model, dotted)
    return parent, child


@contextmanager
def swapped(model: nn.Module, name: str, replacement: nn.Module) -> Iterator[nn.Module]:
    """Replace the submodule at dotted ``name`` by ``replacement``; put the original back after."""
    parent, child = _parent_and_name(model, name)
    original = parent._modules[child]
    parent._modules[child] = replacement
    try:
        yield replacement
    finally:
        parent._modules[child] = original


@contextmanager
def params_overridden(
    model: nn.Module, overrides: Mapping[str, torch.Tensor]
) -> Iterator[nn.Module]:
    """Give parameters (or buffers) new values, by dotted name, and restore the originals.

    The ``Parameter`` objects stay the same objects (optimizers and user references keep
    working); only the storage they point to is swapped, so no copy of the model is made.
    """
    known: dict[str, torch.Tensor] = dict(model.named_parameters())
    known.update(dict(model.named_buffers()))
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        for name, value in overrides.items():
            if name not in known:
                import difflib

                close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
                raise LayerError(
                    "overrides",
                    "names of the model's parameters or buffers",
                    name,
                    f"Close names: {close}."
                    if close
                    else "List them with model.named_parameters().",
                )
            tensor = known[name]
            if tuple(value.shape) != tuple(tensor.shape):
                raise SettingError(
                    f"overrides[{name!r}]",
                    f"a tensor of shape {tuple(tensor.shape)}",
                    value,
                    "Give a value of the parameter's own shape.",
                )
            saved.append((tensor, tensor.data))
            tensor.data = value.detach().to(device=tensor.device, dtype=tensor.dtype)
        yield model
    finally:
        for tensor, data in reversed(saved):
            tensor.data = data


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """Turn ``requires_grad`` off on every parameter, and restore each flag afterwards.

    An explanation needs gradients with respect to inputs or activations only: frozen
    parameters make autograd skip every weight gradient and save less for the backward.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield model
    finally:
        for p in params:
            p.requires_grad_(True)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the body with every submodule in eval mode; restore each module's own flag afterwards.

    Decision (documented in the README): a model in training mode is explained in eval mode,
    with an ``AttribWarning``. In training mode dropout makes every explanation random and
    batch norm would both use batch statistics and overwrite its running statistics, which
    would leave the user's model changed.
    """
    training = [m for m in model.modules() if m.training]
    if training:
        warn(
            "the model is in training mode; attrib explains it in eval mode (dropout off, "
            "batch norm running statistics) and puts training mode back afterwards. Call "
            "model.eval() before explaining to silence this warning."
        )
    try:
        for m in training:
            m.training = False
        yield model
    finally:
        for m in training:
            m.training = True


@contextmanager
def prepared(model: Model) -> Iterator[Model]:
    """The state every explanation runs in: eval mode and frozen parameters, both undone after.

    A wrapper (``bind``, ``functools.partial``) prepares the module it runs; a plain callable
    (no ``nn.Module``) has neither, and passes through unchanged.
    """
    module = module_of(model)
    if module is None:
        yield model
        return
    with ExitStack() as stack:
        stack.enter_context(evaluation_mode(module))
        stack.enter_context(frozen_parameters(module))
        yield model

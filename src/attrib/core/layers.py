"""The one place that turns a ``layer=`` argument into a module.

A layer is named by its dotted path in ``model.named_modules()`` (``"layer4.1.conv2"``) or
given as the module itself. A miss lists the closest names, so a typo costs one read.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from attrib.core.errors import LayerError
from attrib.core.inputs import module_of

__all__ = ["last_conv_layer", "layer_name", "resolve_layer", "torchscript_part"]

LayerSpec = str | nn.Module


def _network(model: Any) -> nn.Module:
    """The module whose layers are named: ``model``, or the one inside attrib's wrappers."""
    module = module_of(model)
    if module is None:
        raise LayerError("model", "an nn.Module (layers are its submodules)", model, "")
    return module


def resolve_layer(model: Any, layer: LayerSpec) -> nn.Module:
    """Return the submodule of ``model`` that ``layer`` names (a dotted name or a module)."""
    model = _network(model)
    if isinstance(layer, nn.Module):
        for _, module in model.named_modules():
            if module is layer:
                return layer
        raise LayerError(
            "layer",
            "a module of the model being explained",
            type(layer).__name__,
            "Pass a submodule of this model, or its dotted name from model.named_modules().",
        )
    if not isinstance(layer, str):
        raise LayerError("layer", "a dotted name or an nn.Module", layer, "")
    modules = dict(model.named_modules())
    if layer in modules and layer != "":
        return modules[layer]
    names = [name for name in modules if name]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.4)
    if not close:
        # also match on the last component ("conv2" -> "layer4.1.conv2")
        tail = layer.rsplit(".", 1)[-1]
        close = [n for n in names if n.rsplit(".", 1)[-1] == tail][-5:]
    hint = f"Close names: {', '.join(close)}." if close else ""
    raise LayerError(
        "layer",
        "the dotted name of a submodule (see model.named_modules())",
        layer,
        (hint + " " if hint else "") + f"The model has {len(names)} named submodules.",
    )


def layer_name(model: Any, module: nn.Module) -> str:
    """The dotted name of ``module`` inside ``model`` (for messages and results)."""
    for name, candidate in _network(model).named_modules():
        if candidate is module:
            return name
    return type(module).__name__


_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def last_conv_layer(model: Any) -> str:
    """The dotted name of the last convolution in ``model.named_modules()`` order.

    Registration order follows the forward order in every torchvision classifier; for models
    where it does not, pass ``layer=`` explicitly.
    """
    model = _network(model)
    found = [name for name, module in model.named_modules() if isinstance(module, _CONV)]
    if not found:
        raise LayerError(
            "layer",
            "a model with a convolutional layer (to pick the last one by default)",
            type(model).__name__,
            "Pass layer= with the dotted name of the layer to explain "
            "(for transformers, also reshape=).",
        )
    return found[-1]


def torchscript_part(model: Any) -> str | None:
    """The TorchScript part of ``model``, described for a message (``"the TorchScript module
    'RecursiveScriptModule'"``, or a submodule by its dotted name), or ``None`` where the
    model is Python all the way down.

    A compiled graph (``torch.jit.script`` or ``trace``, ``torch.jit.load``) runs outside
    Python: it refuses hooks and never calls back into a ``TorchFunctionMode``.
    """
    if isinstance(model, torch.jit.ScriptFunction):
        return f"the TorchScript function {model.name!r}"
    if not isinstance(model, nn.Module):
        return None
    for name, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            return f"the TorchScript module {name or type(module).__name__!r}"
    return None

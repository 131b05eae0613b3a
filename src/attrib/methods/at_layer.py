"""Attribution to a layer: ``layer=`` on the gradient, path and propagation methods.

``IntegratedGradients(model, layer="layer2")(x, target=t)`` is integrated gradients of the
model at that layer (``attrib.core.at_layer.LayerModel``), ``f_L(a) = f(x with L's output
:= a)``, from ``a' = L(x')`` to ``a = L(x)``: Captum's ``LayerIntegratedGradients``. The same
setting gives the layer's gradient (``Saliency``), gradient x activation (``GradientXInput``,
Captum's ``LayerGradientXActivation``), ``ExpectedGradients`` with references mapped to the
layer (``LayerGradientShap``), ``DeepLIFT`` and ``LRP`` from the output down to the layer
(``LayerDeepLift``, ``LayerLRP``), and guided backpropagation to the layer. ``layer_input=True``
attributes to the layer's input instead of its output.

Baselines and references are given in input space, as for the method at the input, and
mapped to the layer by a forward: the layer's activation at the baseline input. Values have
the layer's shape; a path method's completeness gap is measured at the layer; the inputs may
be integers (token ids) when the layer is an embedding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from attrib.core.at_layer import LayerModel, layer_activations
from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.core.inputs import Inputs, batch_size_of, check_inputs, module_of
from attrib.core.layers import layer_name, resolve_layer
from attrib.core.neuron import Neuron
from attrib.core.result import Attribution
from attrib.core.settings import FLAG, Instance, Optional, Setting
from attrib.core.target import Target, check_target_length

__all__ = ["LayerSettings"]


def _shown_layer(layer: Any) -> Any:
    return type(layer).__name__ if isinstance(layer, nn.Module) else layer


class LayerSettings:
    """The settings of attribution to a layer, for a method of the input (see the module).

    Args:
        layer: ``None`` (the input), or a dotted name from ``model.named_modules()`` or the
            module itself: attribute to that layer's output.
        layer_input: attribute to the layer's (first) input instead.
    """

    layer = Setting(
        None,
        Optional(Instance((str, nn.Module), "a dotted layer name or an nn.Module")),
        shown=_shown_layer,
    )
    layer_input = Setting(False, FLAG)

    def __call__(self, x: Inputs, target: Target = None, **settings: Any) -> Attribution:
        method: Any = self
        if settings:
            return method.for_call(settings)(x, target)
        if self.layer is None or isinstance(target, Neuron):  # a neuron: the Method's way first
            return super().__call__(x, target)  # type: ignore[misc]  # the Method's
        return attribute_at_layer(method, x, target)


def attribute_at_layer(method: Any, x: Inputs, target: Target) -> Attribution:
    """``method`` (with ``layer`` set) at ``x``: the same method, layer unset, applied to the
    model at the layer at the layer's activations."""
    inputs = check_inputs(x, integers=True)  # token ids are fine: the gradient is at the layer
    check_target_length(target, batch_size_of(inputs))
    module = module_of(method.model)
    if module is None:
        raise SettingError(
            "layer", "a model with layers (an nn.Module)", method.model, "Pass the module."
        )
    layer = resolve_layer(module, method.layer)
    name = layer_name(module, layer)
    into = method.layer_input
    with prepared(method.model):

        def at(batch: Inputs) -> Any:
            return layer_activations(
                method.model, layer, batch, replace_input=into, batch_size=method.batch_size
            )

        activations = at(inputs)
        settings = {**method.given_settings(), "layer": None, "layer_input": False}
        shown_baseline = None
        if "baseline" in method.setting_names():
            # baselines in input space, mapped to the layer: L(x')
            made = method.make_baselines(inputs)
            mapped = [at(b) for b in made]
            settings["baseline"] = mapped[0] if len(mapped) == 1 else mapped
            shown_baseline = settings["baseline"]
            for named in ("value_range", "blur_sigma", "seed"):  # used up by the mapping
                settings.pop(named, None)
        if "references" in method.setting_names():
            settings["references"] = at(method.references)
        inner = type(method)(LayerModel(method.model, layer, inputs, into), **settings)
        result: Attribution = inner(activations, target)
    params = {**result.params, "layer": name, "layer_input": into}
    baseline = shown_baseline if shown_baseline is not None else result.baseline
    return replace(result, params=params, baseline=baseline)

"""Layer conductance: how much of integrated gradients flows through each unit of a layer.

Dhamdhere, Sundararajan and Yan (2019, "How Important Is a Neuron?") follow the straight
input path ``x(alpha) = x' + alpha (x - x')`` of integrated gradients and ask, for each unit
``y_j`` of a layer, how much of the change of the score passes through it:

    Cond_j(x) = integral_0^1 dF/dy_j(x(alpha)) * dy_j(x(alpha))/dalpha d alpha.

Where every path from the input to the output passes through the layer, the conductances add
up to ``F(x) - F(x')``, like integrated gradients at the input (completeness; the gap is in
``delta``). It differs from integrated gradients at the layer (``IntegratedGradients(model,
layer=...)``), which integrates along the straight path between ``y(x')`` and ``y(x)`` in
the layer's own space.

Each quadrature node costs a forward to the layer with its tangent ``dy/dalpha`` (forward-mode
autodiff, exact: Captum's ``LayerConductance`` takes finite differences of ``y`` between its
steps instead) and a forward and backward from the layer to the score.
"""

from __future__ import annotations

import torch
from torch import nn

from attrib.core.at_layer import LayerModel, run_to_layer
from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import InputError, SettingError
from attrib.core.grad import batched_forward_scores, input_gradients
from attrib.core.inputs import Inputs, module_of
from attrib.core.layers import layer_name, resolve_layer
from attrib.core.result import Attribution
from attrib.core.settings import FLAG, REQUIRED, Anything, Count, Instance, Setting
from attrib.core.target import Target
from attrib.methods.base import Method
from attrib.methods.baselines import BaselineSettings
from attrib.methods.catalogue import HOOKS_A_LAYER, register
from attrib.methods.quadrature import quadrature

__all__ = ["LayerConductance"]


@register(
    family="gradient",
    paper="Dhamdhere et al. 2019",
    short="integrated gradients flowing through a layer",
    summary="For each unit of a layer, the part of integrated gradients along the input path "
    "that flows through it; the units' conductances add up to S_c(x) − S_c(x').",
    formula="Cond_j = ∫₀¹ ∂S_c/∂y_j(x(α)) · ∂y_j(x(α))/∂α dα,  x(α) = x' + α(x − x')",
    signed=True,
    completeness=True,
    python_module=HOOKS_A_LAYER,
    image_recipe=lambda context: {"layer": context.layer} if context.layer else {},
)
class LayerConductance(BaselineSettings, Method):
    """Layer conductance (Dhamdhere et al. 2019):

        Cond_j(x) = integral_0^1 dF/dy_j(x(alpha)) * dy_j(x(alpha))/dalpha d alpha,

    along ``x(alpha) = x' + alpha (x - x')``, for each unit ``y_j`` of ``layer``'s output (or
    input, ``layer_input=True``). Values have the layer's shape; ``delta = sum(values) -
    (f(x) - f(x'))``, the quadrature's gap where every path passes through the layer.

    Args:
        layer: a dotted name from ``model.named_modules()`` or the module.
        steps, rule: the quadrature of ``IntegratedGradients`` (32 Gauss-Legendre nodes).
        baseline, value_range, blur_sigma, seed: the baseline ``x'``, as for
            ``IntegratedGradients`` (one baseline).
    """

    layer = Setting(
        REQUIRED,
        Instance((str, nn.Module), "a dotted layer name or an nn.Module"),
        positional=True,
        shown=lambda layer: type(layer).__name__ if isinstance(layer, nn.Module) else layer,
    )
    layer_input = Setting(False, FLAG)
    steps = Setting(32, Count(1, "quadrature nodes per path"))
    rule = Setting("gauss_legendre", Anything("a rule name or a callable n -> (alphas, weights)"))

    def configure(self) -> None:
        self.alphas, self.weights = quadrature(self.rule, self.steps)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        if not isinstance(inputs, torch.Tensor):
            raise InputError("x", "one tensor for LayerConductance", inputs, "")
        module = module_of(self.model)
        if module is None:
            raise SettingError("model", "an nn.Module (conductance hooks a layer)", self.model)
        layer = resolve_layer(module, self.layer)
        baselines = self.make_baselines(inputs)
        if len(baselines) != 1:
            raise SettingError("baseline", "one baseline for LayerConductance", self.baseline)
        x, base = inputs, baselines[0]
        assert isinstance(base, torch.Tensor)  # x is one tensor
        scores_x, output, resolved = batched_forward_scores(
            self.model, x, target, self.output, self.batch_size
        )
        scores_base, _, _ = batched_forward_scores(
            self.model, base, resolved, self.output, self.batch_size
        )
        alphas = self.alphas.to(x.dtype)
        into = self.layer_input

        def evaluate(chunk: Chunk) -> torch.Tensor:
            start = base[chunk.sample]
            velocity = x[chunk.sample] - start
            alpha = alphas[chunk.item.cpu()].to(x.device).view(-1, *([1] * (x.dim() - 1)))

            def to_layer(point: torch.Tensor) -> torch.Tensor:
                return run_to_layer(self.model, layer, point, replace_input=into)

            # y(x(alpha)) and dy/dalpha = J_y(x(alpha)) (x - x'): forward-mode autodiff
            y, y_dot = torch.func.jvp(to_layer, (start + alpha * velocity,), (velocity,))[:2]
            # dF/dy at x(alpha): the model at the layer (the rest of it at x(alpha)), from y
            at_point = LayerModel(self.model, layer, start + alpha * velocity, into)
            got = input_gradients(at_point, y.detach(), resolved.rows(chunk.sample), self.output)
            assert isinstance(got.gradients, torch.Tensor)
            return got.gradients * y_dot

        n, m = x.shape[0], len(alphas)
        size = self.batch_size or default_batch_size(x, n * m)
        values = run_chunks(
            evaluate,
            n,
            m,
            size,
            "sum",
            weights=self.weights.to(x.dtype),
            device=x.device,
            automatic=self.batch_size is None,
        )
        total = values.flatten(1).sum(1).to(torch.float64)
        delta = total - (scores_x.to(torch.float64) - scores_base.to(torch.float64))
        return self.result(
            values,
            resolved.public,
            output,
            baseline=base,
            delta=delta,
            layer=layer_name(module, layer),
        )

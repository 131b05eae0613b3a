"""FullGrad (Srinivas and Fleuret 2019, "Full-Gradient Representation for Neural Network
Visualization").

A ReLU network with biases is piecewise linear in its input and its biases together, so its
score splits exactly into an input part and one part per bias neuron (the full-gradient
decomposition, eq. 2)::

    S_c(x) = sum(x * dS_c/dx) + sum_layers sum(b * dS_c/db),

where every location of a convolution's output has its own copy of the channel's bias, so
``dS_c/db`` at a location is the gradient at the layer's output there, ``G``. FullGrad's map
(eq. 4) post-processes each part and adds them::

    M = psi(x * dS_c/dx) + sum_l sum_k psi(b^l_k G^l_k),
    psi = |.|, min-max scaled to [0, 1], bilinearly upsampled to the input,

over every ``nn.Conv2d`` with a bias and every ``nn.BatchNorm2d``, whose eval-mode bias is
``beta - gamma mu / sqrt(var + eps)`` (``y = gamma / sqrt(var + eps) x + that``). Linear
layers' biases have no locations and stay out of the map, as in the paper's saliency. One
forward and one backward give every gradient (``attrib.core.grad``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError
from attrib.core.grad import LayersCapture, batched_layers_and_input_gradients
from attrib.core.inputs import Inputs
from attrib.core.layers import layer_name
from attrib.core.result import Attribution
from attrib.core.settings import Choice, Fixed, Setting
from attrib.core.target import Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod
from attrib.methods.cam.maps import finish, input_size, upsample
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["FullGrad", "bias_layers", "effective_bias"]


def effective_bias(layer: nn.Module) -> torch.Tensor | None:
    """The bias a layer adds to each channel in eval mode, or ``None`` where it adds none:
    a convolution's own; a batch norm's ``beta - gamma mu / sqrt(var + eps)`` (``gamma = 1``,
    ``beta = 0`` without affine parameters)."""
    if isinstance(layer, nn.BatchNorm2d):
        if layer.running_mean is None or layer.running_var is None:
            raise LayerError(
                "layer",
                "batch norms with running statistics (FullGrad folds them into a bias)",
                type(layer).__name__,
                "This batch norm normalises with batch statistics even in eval mode.",
            )
        scale = torch.rsqrt(layer.running_var + layer.eps)
        gamma = layer.weight if layer.weight is not None else torch.ones_like(scale)
        beta = layer.bias if layer.bias is not None else torch.zeros_like(scale)
        return (beta - gamma * layer.running_mean * scale).detach()
    if isinstance(layer, nn.Conv2d) and layer.bias is not None:
        return layer.bias.detach()
    return None


def bias_layers(model: nn.Module) -> list[tuple[nn.Module, torch.Tensor]]:
    """Every ``nn.Conv2d`` with a bias and every ``nn.BatchNorm2d`` of ``model``, with the bias
    it adds (``effective_bias``), in ``named_modules`` order."""
    found = []
    for module in model.modules():
        bias = effective_bias(module)
        if bias is not None:
            found.append((module, bias))
    return found


@register(
    family="cam",
    paper="Srinivas and Fleuret 2019",
    short="input and bias gradients of every layer",
    summary="The input-gradient part plus, for every convolution and batch norm, its bias times "
    "the gradient at its output: the parts of the full-gradient decomposition of the score, "
    "each scaled and upsampled.",
    formula="M = ψ(x ⊙ ∂S_c/∂x) + Σ_l Σ_k ψ(b^l_k ∂S_c/∂z^l_k),  ψ = upsample(minmax(|·|))",
    inputs="image",
    python_module=HOOKS_A_LAYER,
)
class FullGrad(CAMMethod):
    """FullGrad (Srinivas and Fleuret 2019): the parts of the full-gradient decomposition
    ``S_c = sum(x * dS_c/dx) + sum_l sum(b^l * G^l)`` as one map,

        M = psi(x * dS_c/dx) + sum_l sum_k psi(b^l_k G^l_k),   psi = Up(s(|.|)),

    ``G^l`` the gradient at the output of layer ``l`` (every ``nn.Conv2d`` with a bias and
    every ``nn.BatchNorm2d``, its bias folded from its statistics), ``s`` the min-max scaling
    to [0, 1], ``Up`` the bilinear upsampling to the input.

    Args:
        scale: where ``s`` scales: ``"channel"`` (each channel of each part on its own, the
            paper's ``sum_c psi(f^b_c)`` and pytorch-grad-cam) or ``"layer"`` (all channels of
            a part at once, the authors' released code).
        normalize: ``"minmax"`` scales the sum to [0, 1] (pytorch-grad-cam's output).
        aug_smooth, batch_size, output: as every CAM method.

    The map is at the input's resolution and not negative; there is no layer to choose.
    ``params["layer"]`` lists the layers whose biases count.
    """

    layer = Fixed(None)  # every layer with a bias
    reshape = Fixed(None)
    upsample = Fixed(True)
    relu = Fixed(False)  # psi takes |.|
    eigen_smooth = Fixed(False)
    scale = Setting("channel", Choice(("channel", "layer")))

    def explain_once(self, inputs: Inputs, target: Target) -> Attribution:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            raise SettingError("x", "one batch of images (N, C, H, W) for FullGrad", inputs, "")
        size = input_size(inputs)
        layers = bias_layers(self.module)
        got = batched_layers_and_input_gradients(
            self.model, inputs, [m for m, _ in layers], target, self.output, self.batch_size
        )
        assert isinstance(got.input_gradients, torch.Tensor)  # images are one tensor
        gradient_x_input = got.input_gradients * inputs
        total = rules.full_gradient_map(gradient_x_input, self.scale)
        for part in bias_parts(got, {id(m): b for m, b in layers}):
            total = total + upsample(rules.full_gradient_map(part, self.scale), size)
        values = finish(total, relu=False, size=None, normalize=self.normalize)
        names = list(dict.fromkeys(layer_name(self.model, m) for m in got.modules))
        return self.result(values, got.target.public, got.output, channel_dim=None, layer=names)


def bias_parts(got: LayersCapture, biases: dict[int, torch.Tensor]) -> list[torch.Tensor]:
    """``b_k G_k`` for every captured call of a bias layer whose output is a map
    ``(N, K, h, w)`` (a call per entry: a module used twice adds two parts)."""
    parts: list[Any] = []
    for module, gradient in zip(got.modules, got.gradients, strict=True):
        if gradient.dim() != 4:
            continue
        bias = biases[id(module)].to(device=gradient.device, dtype=gradient.dtype)
        parts.append(gradient * bias.view(1, -1, 1, 1))
    return parts

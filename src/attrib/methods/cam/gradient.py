"""The gradient-weighted CAMs: one forward and one backward to the layer, then a rule.

Each class is its rule from ``attrib.methods.cam.rules`` applied to the activations ``A`` and
gradients ``G = dS_c/dA`` that the core engine captures; see the rules for the formulas.
"""

from __future__ import annotations

import torch
from torch import nn

from attrib.core.inputs import Inputs
from attrib.core.settings import Number, Setting
from attrib.core.target import Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "XGradCAM"]


class _GradientCAM(CAMMethod):
    """A CAM whose map is a function of ``A`` and ``G`` alone."""

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        got = self.capture(inputs, target, layer)
        activations = self.maps(got.activations, name, inputs)
        gradients = self.maps(got.gradients, name, inputs)
        return Computed(self.rule(activations, gradients), got.target, got.output)


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Selvaraju et al. 2017",
    short="feature maps weighted by mean gradients",
    summary="Feature maps of a layer weighted by their spatially averaged gradients.",
    formula="L = ReLU(Σ_k α_k A^k),  α_k = 1/Z Σ_ij ∂S_c/∂A^k_ij",
    inputs="image",
)
class GradCAM(_GradientCAM):
    """Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization"):

        alpha_k = 1/(h w) sum_ij dS_c/dA^k_ij,      L = ReLU(sum_k alpha_k A^k).

    On a network that ends in global average pooling and one linear layer, ``alpha_k`` is the
    class weight ``w_ck / (h w)``, so Grad-CAM is ``ReLU(CAM) / (h w)``.
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.grad_cam(activations, gradients, self.reduction)


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Chattopadhay et al. 2018",
    short="Grad-CAM with higher-order weights",
    summary="Grad-CAM with channel weights from positive gradients, weighted by higher-order "
    "terms: several objects of a class show up.",
    formula="α_k = Σ_ij a^k_ij ReLU(∂S_c/∂A^k_ij),  a from 2nd/3rd derivatives of exp(S_c)",
    inputs="image",
    aliases=("gradcam++",),
)
class GradCAMPlusPlus(_GradientCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018, "Grad-CAM++: Generalized Gradient-based Visual
    Explanations for Deep Convolutional Networks"), eq. 19:

        a^k_ij = G_ij^2 / (2 G_ij^2 + sum_ab A^k_ab G_ij^3),   w_k = sum_ij a^k_ij ReLU(G^k_ij),
        L = ReLU(sum_k w_k A^k),

    the closed form the paper derives for an exponential of the score, written with the
    gradients ``G`` of the score itself (as the paper's and every implementation do).

    Args:
        eps: added to the denominator of ``a``; 0 (the paper) by default. pytorch-grad-cam
            adds 1e-6, which changes ``a`` wherever ``G^2`` is not much larger than 1e-6.
    """

    eps = Setting(0.0, Number(0, purpose="added to the denominator of a"))

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.grad_cam_plus_plus(activations, gradients, self.eps, self.reduction)


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Fu et al. 2020",
    short="Grad-CAM with activation-weighted gradients",
    summary="Grad-CAM with gradients weighted by the normalised activations (sensitivity and "
    "conservation axioms).",
    formula="α_k = Σ_ij (A^k_ij / Σ_ij A^k_ij) ∂S_c/∂A^k_ij",
    inputs="image",
)
class XGradCAM(_GradientCAM):
    """XGrad-CAM (Fu et al. 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs"):

        w_k = sum_ij (A^k_ij / sum_ab A^k_ab) dS_c/dA^k_ij,      L = ReLU(sum_k w_k A^k).
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.xgrad_cam(activations, gradients, self.reduction)


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Draelos and Carin 2020",
    short="gradient times activation, no averaging",
    summary="Gradients times activations element-wise, summed over channels: no spatial "
    "averaging of the gradient.",
    formula="L = Σ_k ∂S_c/∂A^k ⊙ A^k",
    inputs="image",
)
class HiResCAM(_GradientCAM):
    """HiResCAM (Draelos and Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful
    explanations of convolutional neural networks"):

        L = ReLU(sum_k dS_c/dA^k * A^k)     (element-wise; no averaging of the gradient).

    For a network whose layer is followed by global average pooling and a linear head the
    gradient is constant over locations, and HiResCAM equals Grad-CAM.
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.hires_cam(activations, gradients, self.reduction)


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Jiang et al. 2021",
    short="positive gradients times activations",
    summary="Activations weighted location by location by their positive gradients.",
    formula="L = ReLU(Σ_k ReLU(∂S_c/∂A^k) ⊙ A^k)",
    inputs="image",
)
class LayerCAM(_GradientCAM):
    """LayerCAM (Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps
    for Localization"):

        L = ReLU(sum_k ReLU(dS_c/dA^k) * A^k)     (element-wise positive gradients).
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.layer_cam(activations, gradients, self.reduction)

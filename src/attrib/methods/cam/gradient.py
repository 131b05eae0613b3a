"""The gradient-weighted CAMs: one forward and one backward to the layer, then a rule.

Each class is its rule from ``attrib.methods.cam.rules`` applied to the activations ``A`` and
gradients ``G = dS_c/dA`` that the core engine captures; see the rules for the formulas.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs
from attrib.core.target import OutputSelector, Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed, LayerSpec
from attrib.methods.cam.maps import Normalize, Reshape

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


class GradCAM(_GradientCAM):
    """Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization"):

        alpha_k = 1/(h w) sum_ij dS_c/dA^k_ij,      L = ReLU(sum_k alpha_k A^k).

    On a network that ends in global average pooling and one linear layer, ``alpha_k`` is the
    class weight ``w_ck / (h w)``, so Grad-CAM is ``ReLU(CAM) / (h w)``.
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.grad_cam(activations, gradients)


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

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        *,
        eps: float = 0.0,
        reshape: Reshape | None = None,
        upsample: bool = True,
        normalize: Normalize = None,
        relu: bool = True,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            layer,
            reshape=reshape,
            upsample=upsample,
            normalize=normalize,
            relu=relu,
            output=output,
            batch_size=batch_size,
        )
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise SettingError("eps", "a number >= 0", eps, "")
        self.eps = float(eps)

    def settings(self) -> dict[str, Any]:
        return {"eps": self.eps, **super().settings()}

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.grad_cam_plus_plus(activations, gradients, self.eps)


class XGradCAM(_GradientCAM):
    """XGrad-CAM (Fu et al. 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs"):

        w_k = sum_ij (A^k_ij / sum_ab A^k_ab) dS_c/dA^k_ij,      L = ReLU(sum_k w_k A^k).
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.xgrad_cam(activations, gradients)


class HiResCAM(_GradientCAM):
    """HiResCAM (Draelos and Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful
    explanations of convolutional neural networks"):

        L = ReLU(sum_k dS_c/dA^k * A^k)     (element-wise; no averaging of the gradient).

    For a network whose layer is followed by global average pooling and a linear head the
    gradient is constant over locations, and HiResCAM equals Grad-CAM.
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.hires_cam(activations, gradients)


class LayerCAM(_GradientCAM):
    """LayerCAM (Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps
    for Localization"):

        L = ReLU(sum_k ReLU(dS_c/dA^k) * A^k)     (element-wise positive gradients).
    """

    def rule(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return rules.layer_cam(activations, gradients)

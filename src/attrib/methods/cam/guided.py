"""Guided Grad-CAM (Selvaraju et al. 2017): a fine-grained input attribution times the
upsampled Grad-CAM map,

    R = R_guide(x) * upsample(L_Grad-CAM),       values (N, C, H, W) = (N, C, H, W) * (N, 1, H, W),

with guided backpropagation (Springenberg et al. 2015) as the guide in the paper; any other
input attribution (the plain gradient, say) makes the same product.
Composed, not copied: the guide is any method ``guide(x, target=...) -> Attribution``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attrib.core.inputs import Inputs, map_inputs
from attrib.core.result import Attribution
from attrib.core.settings import Fixed, Function, Optional, Setting
from attrib.core.target import Target
from attrib.methods.cam.gradient import GradCAM
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["GuidedGradCAM"]

Guide = Callable[..., Attribution]


def _label(guide: Guide | None) -> str:
    if guide is None:
        return "GuidedBackprop"
    return getattr(guide, "name", type(guide).__name__)


def _guide_for_images(context: Any) -> dict[str, Any]:
    from attrib.methods.propagation import GuidedBackprop

    # activations other than ReLU (SiLU, GELU, hardswish) pass their ordinary gradient
    return {"guide": GuidedBackprop(context.model, other_activations="gradient")}


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Selvaraju et al. 2017",
    short="guided backprop times Grad-CAM",
    summary="Guided backpropagation multiplied by the upsampled Grad-CAM map.",
    formula="A = GuidedBackprop(x) ⊙ upsample(L_GradCAM)",
    inputs="image",
    image_recipe=_guide_for_images,
)
class GuidedGradCAM(GradCAM):
    """Guided Grad-CAM (Selvaraju et al. 2017): ``R = guide(x) * upsample(L_Grad-CAM)``, guided
    backpropagation (the default guide) times the Grad-CAM map at the input's resolution.

    Args:
        layer, reshape, normalize, relu: the Grad-CAM map's settings (see ``GradCAM``); the
            map is always upsampled to the input, and normalised before the product when
            ``normalize="minmax"``.
        guide: the input attribution method, called as ``guide(x, target=t)`` with the
            targets Grad-CAM resolved; default ``GuidedBackprop(model)`` from
            ``attrib.methods.propagation`` (imported when first needed).
    """

    guide = Setting(None, Optional(Function("a method guide(x, target=...)")), shown=_label)
    upsample = Fixed(True)  # the product needs the map at the input's resolution

    def _guide(self) -> Guide:
        if self.guide is not None:
            return self.guide
        # imported here: propagation methods are a separate module, loaded only when used
        from attrib.methods.propagation import GuidedBackprop

        shared = {"output": self.output, "batch_size": self.batch_size}
        return GuidedBackprop(self.model, **{k: v for k, v in shared.items() if v is not None})

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        cam = super().attribute(inputs, target)
        fine = self._guide()(inputs, target=cam.target)
        mask = cam.values.unsqueeze(1)  # (N, 1, H, W): broadcast over the input's channels

        def product(values: torch.Tensor) -> torch.Tensor:
            return values * mask.to(values.dtype)

        values = map_inputs(product, fine.values)
        return self.result(values, cam.target, cam.output, layer=cam.params["layer"])

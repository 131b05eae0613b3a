"""Guided Grad-CAM (Selvaraju et al. 2017): a fine-grained input attribution times the
upsampled Grad-CAM map,

    R = R_guide(x) * upsample(L_Grad-CAM),       values (N, C, H, W) = (N, C, H, W) * (N, 1, H, W),

with guided backpropagation (Springenberg et al. 2015) as the guide in the paper; seed 000
writes the same product with "another attribution method, such as Vanilla Gradient".
Composed, not copied: the guide is any method ``guide(x, target=...) -> Attribution``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs, map_inputs
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.methods.base import Method
from attrib.methods.cam.base import LayerSpec
from attrib.methods.cam.gradient import GradCAM
from attrib.methods.cam.maps import Normalize, Reshape

__all__ = ["GuidedGradCAM"]

Guide = Callable[..., Attribution]


class GuidedGradCAM(Method):
    """Guided Grad-CAM: ``guide(x).values * upsampled Grad-CAM map``.

    Args:
        layer, reshape, normalize, relu: the Grad-CAM map's settings (see ``GradCAM``); the
            map is always upsampled to the input, and normalised before the product when
            ``normalize="minmax"``.
        guide: the input attribution method, called as ``guide(x, target=t)`` with the
            targets Grad-CAM resolved; default ``GuidedBackprop(model)`` from
            ``attrib.methods.propagation`` (imported when first needed).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        *,
        guide: Guide | None = None,
        reshape: Reshape | None = None,
        normalize: Normalize = None,
        relu: bool = True,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output=output, batch_size=batch_size)
        if guide is not None and not callable(guide):
            raise SettingError("guide", "None or a method guide(x, target=...)", guide, "")
        self.guide = guide
        self.grad_cam = GradCAM(
            model,
            layer,
            reshape=reshape,
            upsample=True,
            normalize=normalize,
            relu=relu,
            output=output,
            batch_size=batch_size,
        )

    def settings(self) -> dict[str, Any]:
        inner = self.grad_cam.settings()
        del inner["upsample"]
        return {"guide": _label(self.guide), **inner}

    def _guide(self) -> Guide:
        if self.guide is not None:
            return self.guide
        # imported here: propagation methods are a separate module, loaded only when used
        from attrib.methods.propagation import GuidedBackprop

        shared = {"output": self.output, "batch_size": self.batch_size}
        return GuidedBackprop(self.model, **{k: v for k, v in shared.items() if v is not None})

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        cam = self.grad_cam.attribute(inputs, target)
        fine = self._guide()(inputs, target=cam.target)
        mask = cam.values.unsqueeze(1)  # (N, 1, H, W): broadcast over the input's channels

        def product(values: torch.Tensor) -> torch.Tensor:
            return values * mask.to(values.dtype)

        return Attribution(
            values=map_inputs(product, fine.values),
            target=cam.target,
            method=self.name,
            params={**self.settings(), "layer": cam.params["layer"]},
            output=cam.output,
            channel_dim=1,
        )


def _label(guide: Guide | None) -> str:
    if guide is None:
        return "GuidedBackprop"
    return getattr(guide, "name", type(guide).__name__)

"""Eigen-CAM (Muhammad and Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal
Components"): the layer's activations projected on their first principal direction,
``O v_1`` with ``O = U S V^T`` the ``(h w) x K`` activation matrix (see
``attrib.methods.cam.rules.eigen_cam``). Class-agnostic: the target does not change the map.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed, LayerSpec, check_flag
from attrib.methods.cam.maps import Normalize, Reshape

__all__ = ["EigenCAM"]


class EigenCAM(CAMMethod):
    """Eigen-CAM: the first principal component of the layer's activations.

    Args:
        center: subtract each channel's mean over locations before the SVD (principal
            components of centred data, as pytorch-grad-cam does); ``False`` factorises the
            activations themselves, as the paper writes.
        relu: ``False`` by default: the paper's map is the projection itself.

    The target only decides which score the layer must lead to (its default here is the
    predicted class, since the map does not depend on it); it is recorded in the result.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        *,
        center: bool = False,
        reshape: Reshape | None = None,
        upsample: bool = True,
        normalize: Normalize = None,
        relu: bool = False,
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
        self.center = check_flag("center", center)

    def settings(self) -> dict[str, Any]:
        return {"center": self.center, **super().settings()}

    def __call__(self, x: Inputs, target: Target = "predicted") -> Attribution:
        return super().__call__(x, target)

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        got = self.capture(inputs, target, layer)
        maps = self.maps(got.activations, name, inputs)
        return Computed(rules.eigen_cam(maps, self.center), got.target, got.output)

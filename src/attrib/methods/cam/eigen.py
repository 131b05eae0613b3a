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
from attrib.core.settings import FLAG, Fixed, Setting
from attrib.core.target import Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["EigenCAM"]


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Muhammad and Yeasin 2020",
    short="first principal component of activations",
    summary="The first principal component of the layer's activations (class-agnostic).",
    formula="L = A · v₁,  v₁ the first right singular vector of A",
    inputs="image",
)
class EigenCAM(CAMMethod):
    """Eigen-CAM (Muhammad and Yeasin 2020): the first principal component of the layer's
    activations, ``L = O v_1`` with ``O = U S V^T`` the ``(h w) x K`` activation matrix.

    Args:
        center: subtract each channel's mean over locations before the SVD (principal
            components of centred data, as pytorch-grad-cam does); ``False`` factorises the
            activations themselves, as the paper writes.
        relu: ``False`` by default: the paper's map is the projection itself.

    The target only decides which score the layer must lead to (its default here is the
    predicted class, since the map does not depend on it); it is recorded in the result.
    """

    center = Setting(False, FLAG)
    relu = Setting(False, FLAG)
    eigen_smooth = Fixed(False)  # the map is already the first principal component

    def __call__(self, x: Inputs, target: Target = "predicted", **settings: Any) -> Attribution:
        return super().__call__(x, target, **settings)

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        got = self.capture(inputs, target, layer)
        maps = self.maps(got.activations, name, inputs)
        return Computed(rules.eigen_cam(maps, self.center), got.target, got.output)

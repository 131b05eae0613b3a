"""Plain gradient methods: one forward and one backward to the input per chunk.

- Saliency (Simonyan, Vedaldi and Zisserman 2014, "Deep Inside Convolutional Networks"):
  ``R = dF_c/dx`` at the input; its picture is ``M_ij = max_c |R_ijc|``.
- Gradient x input (Shrikumar et al. 2016, "Not Just a Black Box"): ``R = x * dF_c/dx``,
  the first-order Taylor term of ``F_c`` around zero.
"""

from __future__ import annotations

import torch

from attrib.core.grad import batched_input_gradients
from attrib.core.inputs import Inputs, map_inputs
from attrib.core.result import Attribution
from attrib.core.settings import FLAG, Setting
from attrib.core.target import Target
from attrib.methods.at_layer import LayerSettings
from attrib.methods.base import Method
from attrib.methods.catalogue import register

__all__ = ["GradientXInput", "Saliency"]


@register(
    family="gradient",
    paper="Simonyan et al. 2014",
    short="input gradient of the class score",
    summary="How much the class score changes when one input value changes: the input gradient.",
    formula="A = ∂S_c/∂x;  map M_ij = max_c |A_cij|",
    token_reduction="l2",  # a token's saliency is the norm of its gradient (Li et al. 2016)
)
class Saliency(LayerSettings, Method):
    """The input gradient of the target score, ``R = dF_c/dx`` (Simonyan et al. 2014).

    Args:
        abs: return ``|dF_c/dx|`` instead of the signed gradient (Captum's default is
            ``abs=True``; ours keeps the sign, and ``Attribution.saliency()`` takes the
            magnitude for the picture either way).
    """

    abs = Setting(False, FLAG)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        got = batched_input_gradients(self.model, inputs, target, self.output, self.batch_size)
        values = map_inputs(torch.abs, got.gradients) if self.abs else got.gradients
        return self.result(values, got.target.public, got.output)


@register(
    family="gradient",
    paper="Shrikumar et al. 2016",
    short="gradient times input",
    summary="The gradient times the input: a first-order estimate of each value's contribution.",
    formula="A = x ⊙ ∂S_c/∂x",
    signed=True,
    aliases=("input_x_gradient",),  # Captum's name
)
class GradientXInput(LayerSettings, Method):
    """Gradient times input, ``R = x * dF_c/dx`` (Shrikumar et al. 2016)."""

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        got = batched_input_gradients(self.model, inputs, target, self.output, self.batch_size)
        values = map_inputs(lambda g, x: g * x, got.gradients, inputs)
        return self.result(values, got.target.public, got.output)

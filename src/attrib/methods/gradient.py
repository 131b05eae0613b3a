"""Plain gradient methods: one forward and one backward to the input per chunk.

- Saliency (Simonyan, Vedaldi and Zisserman 2014, "Deep Inside Convolutional Networks"):
  ``R = dF_c/dx`` at the input; its picture is ``M_ij = max_c |R_ijc|``.
- Gradient x input (Shrikumar et al. 2016, "Not Just a Black Box"): ``R = x * dF_c/dx``,
  the first-order Taylor term of ``F_c`` around zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.grad import batched_input_gradients
from attrib.core.inputs import Inputs, map_inputs
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.methods.base import Method

__all__ = ["GradientXInput", "Saliency"]


class Saliency(Method):
    """The input gradient of the target score, ``dF_c/dx`` (Simonyan et al. 2014).

    Args:
        abs: return ``|dF_c/dx|`` instead of the signed gradient (Captum's default is
            ``abs=True``; ours keeps the sign, and ``Attribution.saliency()`` takes the
            magnitude for the picture either way).
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        abs: bool = False,  # noqa: A002 - the name users know from Captum
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output=output, batch_size=batch_size)
        self.abs = bool(abs)

    def settings(self) -> dict[str, Any]:
        return {"abs": self.abs, **super().settings()}

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        got = batched_input_gradients(self.model, inputs, target, self.output, self.batch_size)
        values = map_inputs(torch.abs, got.gradients) if self.abs else got.gradients
        return Attribution(
            values=values,
            target=got.target.public,
            method=self.name,
            params=self.settings(),
            output=got.output,
        )


class GradientXInput(Method):
    """Gradient times input, ``x * dF_c/dx`` (Shrikumar et al. 2016)."""

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        got = batched_input_gradients(self.model, inputs, target, self.output, self.batch_size)
        values = map_inputs(lambda g, x: g * x, got.gradients, inputs)
        return Attribution(
            values=values,
            target=got.target.public,
            method=self.name,
            params=self.settings(),
            output=got.output,
        )

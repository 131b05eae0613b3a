"""Guided backpropagation and deconvolution: the gradient with a different rule at each ReLU.

Seed 003 writes the three backward passes layer by layer, with ``f^(h)`` the pre-activations
of layer ``h`` and ``S^(h)`` the signal at its output:

- backpropagation:      ``S_B^(h) = diag(1[f^(h)(x) > 0]) W^(h+1)^T S_B^(h+1)``
- deconvolution:        ``S_D^(h) = relu(W^(h+1)^T S_D^(h+1))`` (only the positive part of the
  backward signal passes a ReLU; the forward mask is ignored);
- guided backprop:      ``S_G^(h) = diag(1[f^(h)(x) > 0]) relu(W^(h+1)^T S_G^(h+1))`` (both the
  forward mask and the positive-signal mask).

Where the seed's notation is ambiguous (it writes the second mask on the right of
``W^T S``), Springenberg et al. 2015 ("Striving for Simplicity: The All Convolutional Net",
figure 1) decide: the signal arriving at a ReLU is rectified, ``R^l = (f^l > 0) * (R^{l+1} >
0) * R^{l+1}`` for guided backprop and ``R^l = (R^{l+1} > 0) * R^{l+1}`` for the deconvnet
(Zeiler and Fergus 2014). Every other function keeps its gradient: max pooling routes the
signal through its switches, as in both papers.

Both are defined for ReLU networks. A clipped ReLU, ``ReLU6`` or ``hardtanh`` with a lower
bound of 0 (MobileNet, EfficientNet-Lite), is a ReLU followed by a clip,
``min(relu(z), top)``: it gets the ReLU's rule and then the clip's ordinary gradient
``1[z < top]``, so guided backprop passes ``1[0 < z < top] * relu(g)`` and the deconvnet
``1[z < top] * relu(g)`` (Captum hooks ``nn.ReLU`` only and passes a ReLU6's plain gradient).
Another activation (sigmoid, GELU, hardswish) has no rule in either paper: by default it
raises a ``LayerError`` naming the module; ``other_activations="gradient"`` backpropagates
its ordinary gradient (what Captum does silently).

Guided backprop is known to be nearly independent of the weights of the upper layers
(Adebayo et al. 2018, "Sanity Checks for Saliency Maps"; Nie et al. 2018): it mostly
reconstructs the image. That is a property of the method, reproduced here, not a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attrib.core.grad import batched_input_gradients
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.settings import Choice, Setting
from attrib.core.target import Target
from attrib.methods.at_layer import LayerSettings
from attrib.methods.base import Method
from attrib.methods.catalogue import RULES_IN_PYTHON, register
from attrib.methods.propagation.mode import Propagated, Propagator, check_visible, elementwise_call
from attrib.methods.propagation.ops import Op

__all__ = ["Deconvolution", "GuidedBackprop"]

OTHER_ACTIVATIONS = ("error", "gradient")


class _GuidedReLU:
    """Guided backprop at a ReLU: forward mask times the positive part of the signal.

    The mask ``1[z > 0]`` is read off the saved output (``y > 0`` exactly where ``z > 0``)
    by the ReLU's own backward kernel, then the signal is rectified in place: two passes in
    the backward and none in the forward, what the plain gradient plus a hook costs."""

    keeps_output = True

    @staticmethod
    def backward(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.threshold_backward(g, y, 0).clamp_(min=0)


class _DeconvReLU:
    """The deconvnet at a ReLU: the positive part of the signal, whatever the forward did."""

    needs_output = False

    @staticmethod
    def forward(z: torch.Tensor, y: torch.Tensor) -> None:
        return None

    @staticmethod
    def backward(g: torch.Tensor, kept: None) -> torch.Tensor:
        return g.clamp(min=0)


class _ClippedReLU:
    """A rule at ``min(relu(z), top)``: the ReLU's rule (``guided``: forward mask and positive
    signal; else the positive signal), then the clip's gradient, 1 where ``y == z`` or
    ``z <= 0`` (not clipped at the top)."""

    needs_output = True

    def __init__(self, guided: bool) -> None:
        self.guided = guided

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        unclipped = y == z
        return unclipped & (z > 0) if self.guided else unclipped | (z <= 0)

    @staticmethod
    def backward(g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return g.clamp(min=0).mul_(mask)


_CLIPPED = {"relu6", "relu6_", "hardtanh", "hardtanh_"}


def _lower_bound(func: Callable[..., Any], args: tuple, kwargs: dict) -> float | None:
    """The lower clip of a ``relu6``/``hardtanh`` call (``None`` for other functions)."""
    name = getattr(func, "__name__", "")
    if name not in _CLIPPED:
        return None
    if name.startswith("relu6"):
        return 0.0
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    return float(low) if isinstance(low, (int, float)) else None


class _ReLURules(Propagator):
    def __init__(self, model: Any, method: str, rule: Any, other_activations: str) -> None:
        super().__init__(model)
        self.method = method
        self.rule = rule
        self.clipped = _ClippedReLU(guided=isinstance(rule, _GuidedReLU))
        self.refuse_others = other_activations == "error"
        self.handlers = {"relu": self._relu, "fused": self._fused, "activation": self._activation}
        if self.refuse_others:
            self.handlers["gate"] = self._refuse

    def _relu(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return elementwise_call(self.rule, func, op, args, kwargs)

    def _activation(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        if _lower_bound(func, args, kwargs) == 0.0:  # a clipped ReLU: ReLU6, hardtanh(0, top)
            return elementwise_call(self.clipped, func, op, args, kwargs)
        if self.refuse_others:
            return self._refuse(func, op, args, kwargs)
        return func(*args, **kwargs)

    def _refuse(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        z = args[0] if args else next(iter(kwargs.values()), None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            return func(*args, **kwargs)
        raise self.unsupported(
            func,
            f"{self.method} is defined for ReLU networks (Springenberg et al. 2015); this "
            "activation has no rule in the paper.",
            "Pass other_activations='gradient' to backpropagate its ordinary gradient there.",
        )

    def _fused(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return func(*args, **kwargs)
        raise self.unsupported(
            func,
            "A fused kernel hides its ReLU, whose rule would be skipped.",
            "Run the model with gradients enabled on unfused layers (the default in eval "
            "mode with inputs that need gradients).",
        )


class _ModifiedReLUMethod(LayerSettings, Method):
    """Shared by guided backprop and deconvolution: one forward and one backward per chunk."""

    rule: Any = None

    other_activations = Setting(
        "error",
        Choice(
            OTHER_ACTIVATIONS,
            "'error' refuses non-ReLU activations; 'gradient' keeps their gradient.",
        ),
    )

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        check_visible(self.model, self.name)
        wrapped = Propagated(
            self.model,
            lambda: _ReLURules(self.model, self.name, self.rule, self.other_activations),
        )
        got = batched_input_gradients(wrapped, inputs, target, self.output, self.batch_size)
        return self.result(got.gradients, got.target.public, got.output)


def _other_activations_pass(context: Any) -> dict[str, Any]:
    # activations other than ReLU and clipped ReLU (SiLU, GELU, hardswish) pass their
    # ordinary gradient, as in Captum; on a (clipped) ReLU network this changes nothing
    return {"other_activations": "gradient"}


@register(
    family="propagation",
    python_module=RULES_IN_PYTHON,
    paper="Springenberg et al. 2015",
    short="backprop through ReLUs, positive signals only",
    summary="Backpropagation that lets only positive signals through ReLUs, where the forward "
    "input was positive as well.",
    formula="R_l = 1[x_l > 0] ⊙ ReLU(R_{l+1})",
    image_recipe=_other_activations_pass,
)
class GuidedBackprop(_ModifiedReLUMethod):
    """Guided backpropagation (Springenberg et al. 2015): at every ReLU the backward signal is
    ``R_l = 1[z > 0] * relu(R_{l+1})`` (at a ReLU6, ``1[0 < z < 6] * relu(R_{l+1})``);
    elsewhere the ordinary gradient. Values have the input's shape.

    Args:
        other_activations: ``"error"`` (default) refuses activations other than ReLU and
            clipped ReLU, naming the module; ``"gradient"`` keeps their ordinary gradient.
        output, batch_size: see ``Method``.
    """

    rule = _GuidedReLU()


@register(
    family="propagation",
    python_module=RULES_IN_PYTHON,
    paper="Zeiler and Fergus 2014",
    short="backprop with ReLU on the backward signal",
    summary="Backpropagation that applies ReLU to the backward signal and ignores the forward "
    "input's sign.",
    formula="R_l = ReLU(R_{l+1})",
    aliases=("deconvnet",),
    image_recipe=_other_activations_pass,
)
class Deconvolution(_ModifiedReLUMethod):
    """The deconvnet (Zeiler and Fergus 2014, as written by Springenberg et al. 2015): at every
    ReLU the backward signal is ``R_l = relu(R_{l+1})``, ignoring the forward mask (at a ReLU6,
    ``1[z < 6] * relu(g)``: the clip's own gradient); elsewhere the ordinary gradient (max
    pooling uses its switches).

    Args:
        other_activations: ``"error"`` (default) or ``"gradient"``, as in ``GuidedBackprop``.
        output, batch_size: see ``Method``.
    """

    rule = _DeconvReLU()

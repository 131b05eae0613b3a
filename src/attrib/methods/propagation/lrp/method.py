"""The ``LRP`` method: layer-wise relevance propagation with a composite of rules.

Layer-wise relevance propagation (Bach et al. 2015, "On Pixel-Wise Explanations for
Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation"; Montavon et al. 2019,
"Layer-Wise Relevance Propagation: An Overview") starts from ``R = f_c(x)`` at the target
output and hands relevance down layer by layer, each layer splitting what it receives over
its inputs by its rule (the epsilon rule of Bach et al. 2015 is
``R_{i<-j} = z_ij / (z_j + eps sign(z_j)) R_j``). The attribution is the relevance at the
input; ``delta = sum(R) - f_c(x)`` is the relevance the rules did not conserve (absorbed by
biases and stabilisers, or created by alpha-beta).
"""

from __future__ import annotations

from typing import Any

import torch

from attrib.core.grad import batched_input_gradients
from attrib.core.inputs import Inputs, leaves, map_inputs
from attrib.core.result import Attribution
from attrib.core.settings import Check, Instance, Optional, Setting
from attrib.core.target import Target
from attrib.methods.at_layer import LayerSettings
from attrib.methods.base import Method
from attrib.methods.catalogue import RULES_IN_PYTHON, register
from attrib.methods.propagation.lrp.canonizers import Canonizer, MergeBatchNorm
from attrib.methods.propagation.lrp.composites import COMPOSITES, Composite, make_composite
from attrib.methods.propagation.lrp.layers import module_of_parameter
from attrib.methods.propagation.lrp.propagator import LRPRules, OutputRelevance
from attrib.methods.propagation.lrp.rules import Rule
from attrib.methods.propagation.mode import Propagated, check_visible, map_output

__all__ = ["LRP"]


class _Canonizers(Check):
    @property
    def what(self) -> str:
        return "a sequence of Canonizer objects (MergeBatchNorm())"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(c, Canonizer) for c in value)

    def convert(self, value: Any) -> Any:
        return tuple(value)


_COMPOSITE_NAMES = ", ".join(repr(name) for name in COMPOSITES if name != "epsilon_gamma_box")


@register(
    family="propagation",
    python_module=RULES_IN_PYTHON,
    paper="Bach et al. 2015; Montavon et al. 2019",
    short="layer-wise relevance propagation (transformers: composite=attnlrp, cp-lrp)",
    summary="The score redistributed layer by layer onto the inputs by conservative rules, one "
    "per kind of layer (epsilon, gamma, z+, z-box); for transformers, AttnLRP's rules for "
    "softmax, q k^T, A v and layer norm (composite='attnlrp', Achtibat et al. 2024), or "
    "CP-LRP's detached softmax (composite='cp-lrp', Ali et al. 2022).",
    formula="R_i = Σ_j (x_i w_ij / Σ_i' x_i' w_i'j) R_j  (LRP-0)",
    signed=True,
    completeness=True,
)
class LRP(LayerSettings, Method):
    """Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019): relevance
    ``R_j`` of a layer's output is split over its inputs by each layer's rule, e.g. LRP-0
    ``R_i = sum_j x_i w_ij / (sum_i' x_i' w_i'j) R_j``, from ``R = f_c(x)`` at the output.

    Args:
        composite: which rule each layer gets: a ``Composite`` (``EpsilonPlus()``,
            ``EpsilonGammaBox(low, high)``, ``EpsilonPlusFlat()``, ``EpsilonAlpha2Beta1()``,
            ``AttnLRP()``, ``CPLRP()``, or your own) or one of the names
            ``"epsilon_plus"`` (the default), ``"epsilon_plus_flat"``,
            ``"epsilon_alpha2_beta1"``, and for transformers ``"attnlrp"`` (Achtibat et al.
            2024) and ``"cp-lrp"`` (Ali et al. 2022).
        rule: one ``Rule`` for every convolution and fully connected layer instead of a
            composite (e.g. ``Epsilon(0)`` for LRP-0).
        canonizers: rewrites applied during the forward (default: ``MergeBatchNorm()``;
            ``()`` keeps batch norms as layers with the composite's ``batch_norms`` rule).
        output, batch_size: see ``Method``.

    Supported: convolutions (any dimension, transposed too), fully connected layers (and
    GPT-2's ``addmm``), batch norm (merged or passed), element-wise activations (relevance
    passes), sums of branches (``+``, ``+=``, ``torch.add``), average and max pooling
    (adaptive too), views, concatenation, padding, dropout in eval mode, products with
    sigmoid gates; with a transformer composite also softmax, products of two signals
    (``q k^T``, ``A v``), layer norm and RMS norm, element-wise math, and attention
    (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``) as its math. Anything
    else that depends on the input raises a ``LayerError`` naming the function and the
    module that called it.
    """

    composite = Setting(
        None,
        Optional(
            Instance(
                (str, Composite),
                f"a Composite or one of {_COMPOSITE_NAMES}",
            )
        ),
    )
    rule = Setting(None, Optional(Instance((Rule,), "a Rule for every layer (e.g. Epsilon(0))")))
    canonizers = Setting((MergeBatchNorm(),), _Canonizers())

    def configure(self) -> None:
        # the composite is recorded as built: a name or None becomes the Composite it means
        self.assign("composite", make_composite(self.composite, self.rule))

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        check_visible(self.model, self.name)
        parameters = module_of_parameter(self.model)
        gradient_form = self.composite.in_gradient_form
        wrapped = Propagated(
            self.model,
            lambda: LRPRules(self.model, self.composite, self.canonizers, parameters),
            finish=None if gradient_form else _seed_with_output,
        )
        got = batched_input_gradients(wrapped, inputs, target, self.output, self.batch_size)
        values = got.gradients
        if gradient_form:  # the backward carried g = R / x: the relevance is x * g
            values = map_inputs(lambda g, x: g * x, got.gradients, inputs)
        total = sum(v.flatten(1).sum(1).to(torch.float64) for v in leaves(values))
        delta = total - got.scores.to(torch.float64)
        return self.result(values, got.target.public, got.output, delta=delta)


def _seed_with_output(output: Any) -> Any:
    return map_output(lambda t: OutputRelevance.apply(t) if t.requires_grad else t, output)

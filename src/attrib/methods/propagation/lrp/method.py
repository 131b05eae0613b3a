"""The ``LRP`` method: layer-wise relevance propagation with a composite of rules.

Layer-wise relevance propagation (Bach et al. 2015, "On Pixel-Wise Explanations for
Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation"; Montavon et al. 2019,
"Layer-Wise Relevance Propagation: An Overview") starts from ``R = f_c(x)`` at the target
output and hands relevance down layer by layer, each layer splitting what it receives over
its inputs by its rule (seed 001's epsilon rule is
``R_{i<-j} = z_ij / (z_j + eps sign(z_j)) R_j``). The attribution is the relevance at the
input; ``delta = sum(R) - f_c(x)`` is the relevance the rules did not conserve (absorbed by
biases and stabilisers, or created by alpha-beta).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.grad import batched_input_gradients
from attrib.core.inputs import Inputs, leaves
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.methods.base import Method
from attrib.methods.propagation.lrp.canonizers import Canonizer, MergeBatchNorm
from attrib.methods.propagation.lrp.composites import Composite, make_composite
from attrib.methods.propagation.lrp.layers import module_of_parameter
from attrib.methods.propagation.lrp.propagator import LRPRules, OutputRelevance
from attrib.methods.propagation.lrp.rules import Rule
from attrib.methods.propagation.mode import Propagated, check_visible, map_output

__all__ = ["LRP"]


class LRP(Method):
    """Layer-wise relevance propagation.

    Args:
        composite: which rule each layer gets: a ``Composite`` (``EpsilonPlus()``,
            ``EpsilonGammaBox(low, high)``, ``EpsilonPlusFlat()``, ``EpsilonAlpha2Beta1()``,
            or your own) or one of the names ``"epsilon_plus"`` (the default),
            ``"epsilon_plus_flat"``, ``"epsilon_alpha2_beta1"``.
        rule: one ``Rule`` for every convolution and fully connected layer instead of a
            composite (e.g. ``Epsilon(0)`` for LRP-0).
        canonizers: rewrites applied during the forward (default: ``MergeBatchNorm()``;
            ``()`` keeps batch norms as layers with the composite's ``batch_norms`` rule).
        output, batch_size: see ``Method``.

    Supported: convolutions (any dimension, transposed too), fully connected layers, batch
    norm (merged or passed), element-wise activations (relevance passes), sums of branches
    (``+``, ``+=``, ``torch.add``), average and max pooling (adaptive too), views,
    concatenation, padding, dropout in eval mode, products with sigmoid gates. Anything else
    that depends on the input (softmax, layer norm, attention, ``exp``) raises a
    ``LayerError`` naming the function and the module that called it.
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        composite: str | Composite | None = None,
        rule: Rule | None = None,
        canonizers: Sequence[Canonizer] = (MergeBatchNorm(),),
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output=output, batch_size=batch_size)
        self.composite = make_composite(composite, rule)
        self.rule = rule
        canonizers = tuple(canonizers)
        for canonizer in canonizers:
            if not isinstance(canonizer, Canonizer):
                raise SettingError(
                    "canonizers", "Canonizer objects (MergeBatchNorm())", canonizer, ""
                )
        self.canonizers = canonizers

    def settings(self) -> dict[str, Any]:
        return {
            "composite": self.composite,
            "canonizers": self.canonizers,
            **super().settings(),
        }

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        check_visible(self.model, self.name)
        parameters = module_of_parameter(self.model)
        wrapped = Propagated(
            self.model,
            lambda: LRPRules(self.model, self.composite, self.canonizers, parameters),
            finish=_seed_with_output,
        )
        got = batched_input_gradients(wrapped, inputs, target, self.output, self.batch_size)
        total = sum(v.flatten(1).sum(1).to(torch.float64) for v in leaves(got.gradients))
        return Attribution(
            values=got.gradients,
            target=got.target.public,
            method=self.name,
            params=self.settings(),
            delta=total - got.scores.to(torch.float64),
            output=got.output,
        )


def _seed_with_output(output: Any) -> Any:
    return map_output(lambda t: OutputRelevance.apply(t) if t.requires_grad else t, output)

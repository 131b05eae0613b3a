"""Token attributions for a text classifier with any method of the library.

``explain_tokens`` encodes the texts, and for each group of texts that need no padding (same
length, same special tokens; ``Encoding.groups``) it

1. looks up the input embeddings ``E = W_emb[ids]``, ``(n, L, d)``;
2. builds the baseline ``E'`` (``[PAD]``/``[MASK]``/``[UNK]``/zero at ordinary positions,
   the real special tokens; by default ``[PAD]``, or ``[UNK]`` or zero for a tokenizer
   without a pad token; ``attrib.text.baselines``), one ``(L, d)`` tensor for the group;
3. runs the method on ``classifier.embedding_model`` (``E -> logits``) at ``E``.

The method is used unchanged: ``Saliency``, ``GradientXInput``, ``IntegratedGradients``,
``SmoothGrad(...)`` of any of them, ``LeaveOneOut``, KernelSHAP. It is given as

- a name with settings: ``explain_tokens(clf, texts, "integrated_gradients", steps=64)``:
  a token method of the catalogue (``"leave_one_out"``, ``"kernel_shap"``), a gradient
  method (``"saliency"``, ``"gradient_x_input"``, ``"integrated_gradients"``,
  ``"smoothgrad"`` of ``inner="saliency"`` by default, ...) or LRP and DeepLIFT
  (``explain_tokens(clf, texts, "lrp", composite="attnlrp")``; ``text_methods()`` lists them);
- a builder ``build(model, baseline) -> Method`` called once per group, e.g.
  ``lambda m, b: SmoothGrad(IntegratedGradients(m, baseline=b, steps=16), samples=8)``
  or ``functools.partial(IntegratedGradients, steps=64)`` (called as ``build(model,
  baseline=b)``);
- a method instance built on ``classifier.embedding_model`` (its own baseline, if any, is
  then used as it is: a scalar baseline also replaces the special tokens).

Groups are run one after the other, so padding never reaches the model: a text gets the same
attributions alone and in any batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import nn

from attrib.core.errors import SettingError, did_you_mean
from attrib.core.target import Target, check_target_length, target_for_rows
from attrib.methods import catalogue
from attrib.methods.base import Method
from attrib.methods.catalogue import MethodInfo, find, key
from attrib.methods.recipes import INNER, build
from attrib.text.baselines import (
    TokenBaseline,
    baseline_embeddings,
    replacement_embedding,
    resolve_baseline,
)
from attrib.text.encoding import Encoding
from attrib.text.models import TextClassifier
from attrib.text.result import TokenAttribution

__all__ = [
    "MethodSpec",
    "builder",
    "explain_tokens",
    "find_text_method",
    "method_names",
    "text_methods",
]

MethodBuilder = Callable[..., Method]
MethodSpec = Union[str, Method, MethodBuilder]


def text_methods() -> list[MethodInfo]:
    """The methods ``explain_tokens`` runs by name: the token methods (``inputs="tokens"``),
    then the gradient family's methods of any tensor, which work at the embeddings, then the
    propagation methods whose values add up to the score (LRP, DeepLIFT: ``completeness``),
    so that a token's sum over its embedding dimensions is its share of the score (LRP's
    transformer composites, ``composite="attnlrp"``, take it through attention)."""
    propagation = [i for i in catalogue.entries("propagation", ["tensor"]) if i.completeness]
    return (
        catalogue.entries(inputs=["tokens"])
        + catalogue.entries("gradient", ["tensor"])
        + propagation
    )


def method_names() -> list[str]:
    """The method names ``explain_tokens`` knows (``catalogue.key`` form, aliases too)."""
    return sorted({n for info in text_methods() for n in (key(info.name), *info.aliases)})


def find_text_method(name: str) -> MethodInfo:
    """The catalogue entry ``explain_tokens`` runs for ``name`` (``SettingError`` listing the
    known names otherwise)."""
    wanted = key(name)
    for info in text_methods():  # token methods first: "kernel_shap" is KernelSHAP over tokens
        if wanted == key(info.name) or wanted in info.aliases:
            return info
    known = method_names()
    raise SettingError(
        "method",
        f"one of {known}, a builder (model, baseline) -> Method, or a method",
        name,
        did_you_mean(wanted, known, cutoff=0.5),
    )


def builder(method: MethodSpec, settings: dict[str, Any]) -> Callable[[nn.Module, Any], Method]:
    """``(model, baseline) -> Method`` for a name, a builder or an instance. A method given
    by name gets the baseline embeddings where it takes a ``baseline`` (a wrapper's wrapped
    method too: ``"smoothgrad"`` wraps ``inner=`` ``"saliency"`` by default)."""
    if isinstance(method, str):
        info = find_text_method(method)

        def make(model: nn.Module, baseline: Any) -> Method:
            chosen = dict(settings)
            if info.wrapper:
                inner = find(chosen.pop(INNER, "saliency"))
                extra = {"baseline": baseline} if inner.takes("baseline") else {}
                return build(info, model, chosen, inner=inner.name, inner_settings=extra)
            if info.takes("baseline"):
                chosen["baseline"] = baseline
            return build(info, model, chosen)

        return make
    if settings:
        raise SettingError(
            "settings",
            "no settings when the method is given as an instance or a builder",
            sorted(settings),
            "Put them in the method's constructor.",
        )
    if isinstance(method, Method):

        def same(model: nn.Module, baseline: Any) -> Method:
            if method.model is not model:
                raise SettingError(
                    "method",
                    "a method built on classifier.embedding_model",
                    method,
                    "Construct it as Method(classifier.embedding_model, ...), or pass a "
                    "name or a builder (model, baseline) -> Method.",
                )
            return method

        return same
    if callable(method):
        return lambda model, baseline: method(model, baseline=baseline)
    raise SettingError(
        "method", "a name, a builder (model, baseline) -> Method, or a method", method, ""
    )


def explain_tokens(
    classifier: TextClassifier,
    texts: str | Sequence[str] | Encoding,
    method: MethodSpec = "integrated_gradients",
    *,
    target: Target = "predicted",
    baseline: TokenBaseline = "auto",
    truncate: bool = False,
    **settings: Any,
) -> TokenAttribution:
    """Attributions of ``classifier``'s ``target`` score to the tokens of ``texts``.

    Args:
        classifier: a ``TextClassifier``.
        texts: one text, a list of texts, or an ``Encoding`` from ``classifier.encode``.
        method: a name, a builder or a method instance (see the module docstring).
        target: the class to explain: ``"predicted"``, an int, one per text, or a callable.
        baseline: ``"auto"`` (``[PAD]`` where the tokenizer has a pad token, else
            ``[UNK]``, else the zero embedding; the one used is ``result.baseline``),
            ``"pad"``, ``"mask"``, ``"unk"``, ``"zero"`` or an embedding ``(d,)``; used by
            path and occlusion methods (special tokens always keep their embedding).
        truncate: cut texts longer than the model's maximum (with a warning) instead of
            raising ``TextTooLongError``.
        settings: the method's settings when it is given by name (``steps=64``, ...).

    Returns:
        a ``TokenAttribution``: ``values`` ``(N, L, d)``, ``delta`` for path methods,
        ``.scores(reduce)`` per token, ``.words()``, ``.html()``.
    """
    if not isinstance(classifier, TextClassifier):
        raise SettingError(
            "classifier",
            "a TextClassifier",
            classifier,
            "Wrap the model: TextClassifier(model, tokenizer).",
        )
    make = builder(method, settings)
    enc = texts if isinstance(texts, Encoding) else classifier.encode(texts, truncate=truncate)
    n = len(enc)
    check_target_length(target, n)
    baseline = resolve_baseline(classifier.tokenizer, baseline)
    replacement = replacement_embedding(classifier, baseline)
    model = classifier.embedding_model
    values: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    outputs: torch.Tensor | None = None
    public_target: Any = None
    name, params = "", {}
    groups = enc.groups()
    for group in groups:
        ids = enc.ids_of(group)
        length = ids.shape[1]
        embeds = classifier.embed(ids)
        special = enc.special[int(group[0]), :length]
        base = baseline_embeddings(embeds[0], special, replacement)
        result = make(model, base)(embeds, target=target_for_rows(target, group))
        name, params = result.method, result.params
        part = result.values
        if not isinstance(part, torch.Tensor) or part.shape != embeds.shape:
            raise SettingError(
                "method",
                f"a method whose values have the embeddings' shape {tuple(embeds.shape)}",
                part,
                "Use an input attribution method (not a layer or CAM method).",
            )
        if values is None:
            values = part.new_zeros(n, enc.input_ids.shape[1], part.shape[-1])
        values[group.to(part.device), :length] = part.detach()
        if result.delta is not None:
            if delta is None:
                delta = torch.full((n,), float("nan"), dtype=result.delta.dtype)
            delta[group] = result.delta.detach().cpu()
        if isinstance(result.target, torch.Tensor):
            if targets is None:
                targets = torch.zeros(n, dtype=torch.long)
            targets[group] = result.target.cpu()
        else:
            public_target = result.target
        logits = result.output
        if isinstance(logits, torch.Tensor) and logits.dim() == 2 and logits.shape[0] == len(group):
            if outputs is None:
                outputs = logits.new_zeros(n, logits.shape[1])
            outputs[group.to(logits.device)] = logits.detach()
    assert values is not None  # at least one group: encode rejects an empty list
    return TokenAttribution(
        encoding=enc,
        values=values,
        delta=delta,
        target=targets if targets is not None else public_target,
        output=outputs,
        method=name,
        # the method's settings (those of the last group: the same for every group, except
        # counts such as "evaluations", which are the last group's) and the number of groups
        params={**params, "groups": len(groups)},
        labels=classifier.labels,
        baseline=baseline if isinstance(baseline, str) else "tensor",
    )

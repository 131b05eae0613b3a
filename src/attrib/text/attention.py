"""Attention as explanation: raw weights, the last layer, rollout, attention x gradient.

For a layer with heads ``h`` the attention ``A^h in R^{L x L}`` is row-stochastic: row ``q``
says how query token ``q`` mixes the value vectors of the key tokens. A token score needs a
query: ``"cls"`` (row 0, what a ``[CLS]``-pooled classifier reads), ``"mean"`` (the mean of
all rows, what a mean-pooled classifier reads) or a position. The default follows
``classifier.pooling``.

- ``attention_weights``: every layer and head, ``(layers, heads, L, L)`` per text.
- ``last_layer_attention``: the last attention layer's weights as the explanation (as Jain
  and Wallace 2019 and Wiegreffe and Pinter 2019 examine it): the mean over
  heads of the last layer, ``s_t = 1/H sum_h A^h_{q t}``.
- ``attention_rollout`` (Abnar and Zuidema 2020, "Quantifying Attention Flow in
  Transformers"): with the residual connection counted as attention to oneself,
  ``A_hat_l = (1 - r) mean_h A^h_l + r I`` (``r = 1/2`` in the paper), rows renormalised, and
  ``R = A_hat_L ... A_hat_2 A_hat_1``; ``s_t = R_{q t}``.
- ``attention_x_gradient``: ``s_t = 1/H sum_h A^h_{q t} dF/dA^h_{q t}`` at one layer, the
  attention weighted by how much the target score ``F`` depends on it (the per-head
  product of Chefer et al. 2021, "Generic Attention-model Explainability", before their
  positive part and rollout).

Attention weights need a model that returns them: Hugging Face models loaded with
``attn_implementation="eager"``. Others raise ``AttentionUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Union

import torch

from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.core.target import Target, resolve_target, select_output, target_for_rows
from attrib.methods.attention import rollout
from attrib.text.encoding import Encoding
from attrib.text.errors import AttentionUnavailableError
from attrib.text.models import TextClassifier, call_with_embeddings
from attrib.text.result import TokenScores

__all__ = [
    "Query",
    "attention_rollout",
    "attention_weights",
    "attention_x_gradient",
    "last_layer_attention",
    "rollout",
]

Query = Union[Literal["mean", "cls"], int, None]


def attentions_of(output: Any, model: Any) -> tuple[torch.Tensor, ...]:
    """The per-layer attention weights in a model output, or a clear error."""
    found = getattr(output, "attentions", None)
    if found is None and isinstance(output, dict):
        found = output.get("attentions")
    if not found or any(a is None for a in found):
        implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
        hint = (
            f" It runs attn_implementation={implementation!r}, which computes no weights; "
            "load it with attn_implementation='eager'."
            if implementation not in (None, "eager")
            else " Use a model that returns attentions (Hugging Face models with "
            "attn_implementation='eager')."
        )
        raise AttentionUnavailableError(
            "model",
            "a model that returns attention weights (output_attentions=True)",
            type(model).__name__,
            "It returned none." + hint,
        )
    return tuple(found)


def run_with_attentions(model: Any, **inputs: Any) -> Any:
    """``model(**inputs, output_attentions=True)``; a model that does not take the argument
    has no attention to give (nor embeddings, where ``inputs_embeds`` is among ``inputs``)."""
    try:
        if "inputs_embeds" in inputs:
            return call_with_embeddings(model, **inputs, output_attentions=True)
        return model(**inputs, output_attentions=True)
    except TypeError as err:
        if "output_attentions" not in str(err):
            raise
        raise AttentionUnavailableError(
            "model",
            "a model whose forward accepts output_attentions=True",
            type(model).__name__,
            "Attention explanations need a transformer that returns its attention weights.",
        ) from None


def _encoding(classifier: TextClassifier, texts: Any, truncate: bool) -> Encoding:
    if not isinstance(classifier, TextClassifier):
        raise SettingError("classifier", "a TextClassifier", classifier, "")
    return texts if isinstance(texts, Encoding) else classifier.encode(texts, truncate=truncate)


def attention_weights(
    classifier: TextClassifier, texts: str | Sequence[str] | Encoding, *, truncate: bool = False
) -> list[torch.Tensor]:
    """Every layer's and head's attention for each text: ``(layers, heads, L_i, L_i)``."""
    enc = _encoding(classifier, texts, truncate)
    out: list[torch.Tensor] = [torch.empty(0)] * len(enc)
    device = _device(classifier)
    with prepared(classifier.model), torch.no_grad():
        for group in enc.groups():
            ids = enc.ids_of(group).to(device)
            maps = attentions_of(
                run_with_attentions(classifier.model, input_ids=ids), classifier.model
            )
            stacked = torch.stack(maps, dim=1)  # (n, layers, heads, L, L)
            for k, i in enumerate(group.tolist()):
                out[i] = stacked[k].detach()
    return out


def _query_rows(maps: torch.Tensor, query: Query, pooling: str) -> torch.Tensor:
    """Select the query row(s) of ``(..., L, L)`` maps: ``(..., L)``."""
    chosen: Any = pooling if query is None else query
    if chosen == "mean":
        return maps.mean(-2)
    if chosen == "cls":
        return maps[..., 0, :]
    if isinstance(chosen, int) and not isinstance(chosen, bool):
        length = maps.shape[-1]
        if not -length <= chosen < length:
            raise SettingError("query", f"a position in [0, {length})", chosen, "")
        return maps[..., chosen, :]
    raise SettingError("query", "'mean', 'cls', a position or None", chosen, "")


def _layer_index(layer: int, n_layers: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_layers <= layer < n_layers:
        raise SettingError("layer", f"a layer index in [-{n_layers}, {n_layers})", layer, "")
    return layer % n_layers


def _scores(enc: Encoding, per_text: list[torch.Tensor]) -> torch.Tensor:
    scores = torch.zeros(enc.input_ids.shape, dtype=per_text[0].dtype)
    for i, s in enumerate(per_text):
        scores[i, : len(s)] = s.cpu()
    return scores


def last_layer_attention(
    classifier: TextClassifier,
    texts: str | Sequence[str] | Encoding,
    *,
    query: Query = None,
    layer: int = -1,
    truncate: bool = False,
) -> TokenScores:
    """``s_t = 1/H sum_h A^h_{q t}`` at the last layer (or ``layer``)."""
    enc = _encoding(classifier, texts, truncate)
    maps = attention_weights(classifier, enc)
    per_text = []
    for m in maps:
        chosen = m[_layer_index(layer, m.shape[0])].mean(0)
        per_text.append(_query_rows(chosen, query, classifier.pooling))
    return TokenScores(
        encoding=enc,
        scores=_scores(enc, per_text),
        method="LastLayerAttention",
        params={"query": query or classifier.pooling, "layer": layer},
        labels=classifier.labels,
    )


def attention_rollout(
    classifier: TextClassifier,
    texts: str | Sequence[str] | Encoding,
    *,
    query: Query = None,
    residual: float = 0.5,
    truncate: bool = False,
) -> TokenScores:
    """Attention rollout (Abnar and Zuidema 2020): ``s_t = (A_hat_L ... A_hat_1)_{q t}``."""
    enc = _encoding(classifier, texts, truncate)
    per_text = [
        _query_rows(rollout(m, residual), query, classifier.pooling)
        for m in attention_weights(classifier, enc)
    ]
    return TokenScores(
        encoding=enc,
        scores=_scores(enc, per_text),
        method="AttentionRollout",
        params={"query": query or classifier.pooling, "residual": residual},
        labels=classifier.labels,
    )


def attention_gradients(
    classifier: TextClassifier,
    ids: torch.Tensor,
    layer: int,
    target: Target,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """Attention ``A`` of one layer, ``dF/dA``, the logits and the resolved target, for one
    batch of unpadded ids ``(n, L)``; one forward and one backward."""
    model = classifier.model
    embeds = classifier.embed(ids)
    with prepared(model), torch.enable_grad():
        # the graph must reach the attention weights; the input is the only leaf that can
        # carry it, as the parameters are frozen (no weight gradient is computed)
        tracked = embeds.requires_grad_(True)
        output = run_with_attentions(model, inputs_embeds=tracked)
        maps = attentions_of(output, model)
        chosen = maps[_layer_index(layer, len(maps))]
        logits = select_output(output)
        resolved = resolve_target(target, output, ids.shape[0])
        scores = resolved.scores(output)
        (grad,) = torch.autograd.grad(scores.sum(), chosen)
    return chosen.detach(), grad.detach(), logits.detach(), resolved


def attention_x_gradient(
    classifier: TextClassifier,
    texts: str | Sequence[str] | Encoding,
    *,
    target: Target = "predicted",
    layer: int = -1,
    query: Query = None,
    truncate: bool = False,
) -> TokenScores:
    """``s_t = 1/H sum_h A^h_{q t} dF/dA^h_{q t}`` at ``layer`` (default the last)."""
    enc = _encoding(classifier, texts, truncate)
    per_text: list[torch.Tensor] = [torch.empty(0)] * len(enc)
    targets = torch.zeros(len(enc), dtype=torch.long)
    logits_all: torch.Tensor | None = None
    for group in enc.groups():
        ids = enc.ids_of(group).to(_device(classifier))
        maps, grads, logits, resolved = attention_gradients(
            classifier, ids, layer, target_for_rows(target, group)
        )
        product = (maps * grads).mean(1)  # (n, L, L): mean over heads
        rows = _query_rows(product, query, classifier.pooling)
        if logits_all is None:
            logits_all = logits.new_zeros(len(enc), logits.shape[1])
        logits_all[group.to(logits.device)] = logits
        if resolved.indices is not None:
            targets[group] = resolved.indices.cpu()
        for k, i in enumerate(group.tolist()):
            per_text[i] = rows[k]
    return TokenScores(
        encoding=enc,
        scores=_scores(enc, per_text),
        method="AttentionXGradient",
        params={"query": query or classifier.pooling, "layer": layer},
        target=targets,
        output=logits_all,
        labels=classifier.labels,
    )


def _device(classifier: TextClassifier) -> torch.device:
    for p in classifier.model.parameters():
        return p.device
    return torch.device("cpu")

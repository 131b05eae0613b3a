"""From one score per embedding dimension to one score per token, and from tokens to words.

Gradient methods at the embeddings give ``R_t in R^d`` for each token ``t`` (gradients
per dimension, where a user wants one importance score per word).
A token's score is a reduction over its ``d`` dimensions:

- ``"sum"``: the signed sum ``sum_k R_tk``. For integrated gradients the token scores then
  add up to ``f(x) - f(x')`` (completeness carries over); for gradient x input it is the
  first-order Taylor term of the token; for token-level methods (leave-one-out) it is the
  token's score itself.
- ``"abs_sum"``: ``sum_k |R_tk|``, magnitude regardless of sign.
- ``"l2"``: ``||R_t||_2``, the usual saliency of a token (Li et al. 2016, "Visualizing and
  Understanding Neural Models in NLP").
- ``"mean"``: the signed mean ``(1/d) sum_k R_tk`` (the sum scaled by ``1/d``).
- ``"max_abs"``: ``max_k |R_tk|``.

The names are those of ``Attribution.saliency`` ("sum" keeps the sign there too).

Each method has its own default, the catalogue's ``MethodInfo.token_reduction``
(``default_token_reduction``): the L2 norm for saliency, whose gradient says how sensitive
the score is to a token, not in which direction it pushes it (its signed sum is not a score:
BERT-like models normalise the embeddings (``LayerNorm``) before anything else, so the
gradient at the embeddings sums to 0 over the dimensions); the sum for gradient x
input, path methods and the token removal methods; the SmoothGrad family takes that of the
method it wraps (``SmoothGrad(Saliency)``: the L2 norm).

Words are the tokenizer's words (a fast tokenizer knows which pieces form a word, e.g.
``"un" "##watch" "##able"``); a word's score merges its pieces' scores: ``"sum"`` (default:
additive scores stay additive), ``"mean"`` or ``"max"`` (the piece of largest magnitude,
with its sign). A word reads as it is written in the text (``word_texts``); every output
(``TokenScores.words``, the HTML, ``attrib.viz.token_figure``, the command line) shows
these same words by default.
"""

from __future__ import annotations

from typing import Literal

import torch

from attrib.core.errors import SettingError
from attrib.methods import catalogue
from attrib.text.encoding import Encoding

__all__ = [
    "TOKEN_REDUCTIONS",
    "TOKEN_REDUCTION_TITLES",
    "WORD_MERGES",
    "TokenReduction",
    "WordMerge",
    "default_token_reduction",
    "merge_words",
    "token_scores",
    "word_spans",
    "word_texts",
]

TokenReduction = Literal["sum", "abs_sum", "l2", "mean", "max_abs"]
WordMerge = Literal["sum", "mean", "max"]
TOKEN_REDUCTIONS: tuple[TokenReduction, ...] = ("sum", "abs_sum", "l2", "mean", "max_abs")
WORD_MERGES = ("sum", "mean", "max")
TOKEN_REDUCTION_TITLES: dict[str, str] = {
    "sum": "sum over the embedding dimensions",
    "abs_sum": "sum of magnitudes over the embedding dimensions",
    "l2": "L2 norm over the embedding dimensions",
    "mean": "mean over the embedding dimensions",
    "max_abs": "largest magnitude over the embedding dimensions",
}
"""How each reduction reads in a caption (reports, the command line)."""


def default_token_reduction(method: str) -> TokenReduction:
    """The reduction the literature uses for ``method`` (``Attribution.method``: a name, or
    ``"SmoothGrad(Saliency)"`` for a wrapper), from the catalogue's ``token_reduction``; a
    wrapper's is that of the method it wraps, and a method outside the catalogue gets
    ``"sum"``."""
    name = method.strip()
    while True:
        outer, _, inner = name.partition("(")
        info = catalogue.get(outer.strip())
        if info is None:
            return "sum"
        if info.token_reduction is None and inner.endswith(")"):
            name = inner[:-1].strip()
            continue
        chosen = info.token_reduction or "sum"  # a wrapper whose wrapped method is unknown
        for known in TOKEN_REDUCTIONS:
            if known == chosen:
                return known
        raise SettingError(
            "token_reduction", f"one of {TOKEN_REDUCTIONS} in {info.name}'s registration", chosen
        )


def token_scores(values: torch.Tensor, reduce: TokenReduction = "sum") -> torch.Tensor:
    """Reduce the last dimension of ``values`` ``(..., L, d)`` to one score per token."""
    if reduce not in TOKEN_REDUCTIONS:
        raise SettingError("reduce", f"one of {TOKEN_REDUCTIONS}", reduce, "")
    if reduce == "sum":
        return values.sum(-1)
    if reduce == "abs_sum":
        return values.abs().sum(-1)
    if reduce == "l2":
        return values.pow(2).sum(-1).sqrt()
    if reduce == "mean":
        return values.mean(-1)
    return values.abs().amax(-1)


def merge_words(
    scores: torch.Tensor, word_ids: list[int | None], merge: WordMerge = "sum"
) -> torch.Tensor:
    """Scores ``(L,)`` of one text's tokens merged into ``(W,)`` word scores.

    ``word_ids[t]`` is the word of token ``t`` (``None`` for special tokens, which belong to
    no word and are left out).
    """
    if merge not in WORD_MERGES:
        raise SettingError("merge", f"one of {WORD_MERGES}", merge, "")
    if len(word_ids) != scores.shape[0]:
        raise SettingError("word_ids", f"one word id per token ({scores.shape[0]})", word_ids, "")
    keep = [t for t, w in enumerate(word_ids) if w is not None]
    n_words = 1 + max((w for w in word_ids if w is not None), default=-1)
    if not keep:
        return scores.new_zeros(0)
    index = torch.tensor([word_ids[t] for t in keep], device=scores.device)
    values = scores[torch.tensor(keep, device=scores.device)]
    if merge == "max":
        best = torch.full((n_words,), -1.0, dtype=values.dtype, device=values.device)
        best = best.scatter_reduce(0, index, values.abs(), reduce="amax")
        # the signed value of the piece with the largest magnitude (the first on ties)
        out = scores.new_zeros(n_words)
        filled = torch.zeros(n_words, dtype=torch.bool, device=values.device)
        for k in range(len(keep)):
            w = int(index[k])
            if not filled[w] and values[k].abs() == best[w]:
                out[w] = values[k]
                filled[w] = True
        return out
    total = scores.new_zeros(n_words).index_add_(0, index, values)
    if merge == "sum":
        return total
    count = scores.new_zeros(n_words).index_add_(0, index, torch.ones_like(values))
    return total / count


def word_spans(encoding: Encoding, i: int) -> list[tuple[int, int]]:
    """``(first, last)`` token positions of each word of text ``i``, in word order."""
    spans: dict[int, tuple[int, int]] = {}
    for t, w in enumerate(encoding.word_ids[i]):
        if w is not None:
            spans[w] = (spans[w][0], t) if w in spans else (t, t)
    return [spans[w] for w in sorted(spans)]


def word_texts(encoding: Encoding, i: int) -> list[str]:
    """The words of text ``i`` as they appear in it (from character offsets where known,
    else the pieces joined without their ``##`` marks): the one spelling of a word that
    every output uses."""
    text = encoding.texts[i]
    out = []
    for first, last in word_spans(encoding, i):
        if encoding.offsets is not None:
            out.append(text[encoding.offsets[i][first][0] : encoding.offsets[i][last][1]])
        else:
            pieces = encoding.tokens[i][first : last + 1]
            out.append("".join(p.removeprefix("##") for p in pieces))
    return out

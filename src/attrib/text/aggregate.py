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

Words are the tokenizer's words (a fast tokenizer knows which pieces form a word, e.g.
``"un" "##watch" "##able"``); a word's score merges its pieces' scores: ``"sum"`` (default:
additive scores stay additive), ``"mean"`` or ``"max"`` (the piece of largest magnitude,
with its sign).
"""

from __future__ import annotations

from typing import Literal

import torch

from attrib.core.errors import SettingError

__all__ = [
    "TOKEN_REDUCTIONS",
    "WORD_MERGES",
    "TokenReduction",
    "WordMerge",
    "merge_words",
    "token_scores",
]

TokenReduction = Literal["sum", "abs_sum", "l2", "mean", "max_abs"]
WordMerge = Literal["sum", "mean", "max"]
TOKEN_REDUCTIONS = ("sum", "abs_sum", "l2", "mean", "max_abs")
WORD_MERGES = ("sum", "mean", "max")


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

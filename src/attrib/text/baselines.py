"""Baselines at the input embeddings: "no token here", with the special tokens kept.

A path method compares ``f(E)`` with ``f(E')``. For text, ``E'`` replaces every ordinary
token by an uninformative one and keeps ``[CLS]``, ``[SEP]`` (and any other special token) as
they are, since the model never sees a text without them (Sundararajan et al. 2017 use the
zero embedding; Kokhlikyan et al. 2020, Captum, a ``[PAD]`` sequence with ``[CLS]``/``[SEP]``):

- ``"auto"`` (the default of ``explain_tokens``): ``"pad"`` where the tokenizer has a pad
  token, else ``"unk"`` (GPT-2's tokenizer has no pad token; its unknown token is
  ``<|endoftext|>``), else ``"zero"``: a baseline every tokenizer has; the kind used is
  recorded (``TokenAttribution.baseline``);
- ``"pad"``: the ``[PAD]`` embedding at every ordinary position;
- ``"mask"``: the ``[MASK]`` embedding (what a masked language model reads as "unknown");
- ``"unk"``: the ``[UNK]`` embedding;
- ``"zero"``: the zero vector;
- a tensor ``(d,)``: that embedding.

Special tokens then get exactly zero attribution (``E_t - E'_t = 0``) and completeness,
``sum_t IG_t = f(E) - f(E')``, is over the ordinary tokens.
"""

from __future__ import annotations

from typing import Any, Union

import torch

from attrib.core.errors import SettingError

__all__ = [
    "BASELINE_KINDS",
    "TokenBaseline",
    "baseline_embeddings",
    "replacement_embedding",
    "resolve_baseline",
]

BASELINE_KINDS = ("auto", "pad", "mask", "unk", "zero")
TokenBaseline = Union[str, torch.Tensor]
_TOKEN_ATTRIBUTE = {"pad": "pad_token_id", "mask": "mask_token_id", "unk": "unk_token_id"}
_AUTO = ("pad", "unk")  # in this order; then "zero"


def resolve_baseline(tokenizer: Any, kind: TokenBaseline) -> TokenBaseline:
    """The kind that ``kind`` stands for with ``tokenizer``: ``"auto"`` becomes ``"pad"``,
    ``"unk"`` or ``"zero"`` (the first the tokenizer has); anything else is itself."""
    if not (isinstance(kind, str) and kind == "auto"):
        return kind
    for candidate in _AUTO:
        if getattr(tokenizer, _TOKEN_ATTRIBUTE[candidate], None) is not None:
            return candidate
    return "zero"


def replacement_embedding(classifier: Any, kind: TokenBaseline) -> torch.Tensor:
    """The ``(d,)`` embedding that stands for "no token" under baseline ``kind``
    (``"auto"``: see ``resolve_baseline``)."""
    kind = resolve_baseline(classifier.tokenizer, kind)
    embeddings = classifier.embed(torch.zeros(1, 1, dtype=torch.long))
    d = embeddings.shape[-1]
    if isinstance(kind, torch.Tensor):
        if kind.shape != (d,):
            raise SettingError("baseline", f"an embedding of shape ({d},)", kind, "")
        return kind.to(embeddings)
    if kind == "zero":
        return embeddings.new_zeros(d)
    if kind in _TOKEN_ATTRIBUTE:
        token_id = getattr(classifier.tokenizer, _TOKEN_ATTRIBUTE[kind], None)
        if token_id is None:
            raise SettingError(
                "baseline",
                f"a token the tokenizer has ({_TOKEN_ATTRIBUTE[kind]} is None)",
                kind,
                "Choose another baseline: 'auto' (the pad token where there is one, else the "
                "unknown token, else zero), 'mask', 'unk', 'zero' or an embedding.",
            )
        return classifier.token_embedding(token_id)
    raise SettingError("baseline", f"one of {BASELINE_KINDS} or an embedding tensor (d,)", kind, "")


def baseline_embeddings(
    embeds: torch.Tensor, special: torch.Tensor, replacement: torch.Tensor
) -> torch.Tensor:
    """``E'``: ``replacement`` at ordinary positions, ``embeds`` at special ones.

    ``embeds`` is ``(L, d)`` (or ``(N, L, d)``) and ``special`` a bool mask ``(L,)`` (or
    ``(N, L)``).
    """
    keep = special.to(embeds.device).unsqueeze(-1)
    return torch.where(keep, embeds, replacement.to(embeds).expand_as(embeds))

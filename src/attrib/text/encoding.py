"""Texts to token ids, checked: no empty text, nothing longer than the model takes.

Texts are tokenised one by one (no padding from the tokenizer) and packed here, left-aligned,
with a mask of real tokens. Explanations never run padded rows through the model: they run
one *group* of texts at a time, texts with the same length and the same special tokens at the
same places (``Encoding.groups``). Inside a group there is no padding at all, so no attention
mask has to follow the rows that methods expand (integration steps, noise draws, occluded
copies), padding can change nothing, and no compute is spent on padded positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from attrib.core.errors import InputError, warn
from attrib.text.errors import EmptyTextError, TextTooLongError

__all__ = ["Encoding", "check_texts", "encode"]


@dataclass(frozen=True)
class Encoding:
    """Token ids of a batch of texts, left-aligned and padded to the longest.

    Attributes:
        texts: the texts as given.
        input_ids: ``(N, L)`` long; padding holds ``pad_id``.
        mask: ``(N, L)`` bool, True at real tokens (special tokens included).
        special: ``(N, L)`` bool, True at special tokens (``[CLS]``, ``[SEP]``, ...).
        tokens: the token strings of each text (real tokens only).
        word_ids: the word index of each real token, ``None`` for special tokens.
        offsets: the ``(start, end)`` character span of each real token in its text
            (``(0, 0)`` for special tokens), or ``None`` where the tokenizer gives none.
        truncated: whether each text was cut to the model's maximum.
        pad_id: the id used for padding.
    """

    texts: list[str]
    input_ids: torch.Tensor
    mask: torch.Tensor
    special: torch.Tensor
    tokens: list[list[str]]
    word_ids: list[list[int | None]]
    offsets: list[list[tuple[int, int]]] | None
    truncated: list[bool]
    pad_id: int

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> torch.Tensor:
        """Real tokens per text, ``(N,)``."""
        return self.mask.sum(1)

    def groups(self) -> list[torch.Tensor]:
        """Indices of texts that can run as one batch without padding.

        Texts share a group when they have the same length and the same special tokens at
        the same positions (so that a baseline that keeps special tokens fixed is one
        ``(L, d)`` tensor for the whole group, valid for any number of expanded rows).
        """
        keys: dict[tuple, list[int]] = {}
        for i in range(len(self)):
            n = int(self.mask[i].sum())
            ids = self.input_ids[i, :n]
            pattern = tuple(torch.where(self.special[i, :n], ids, -1).tolist())
            keys.setdefault((n, pattern), []).append(i)
        return [torch.tensor(v, dtype=torch.long) for v in keys.values()]

    def ids_of(self, group: torch.Tensor) -> torch.Tensor:
        """The unpadded ``(n, L)`` ids of one group."""
        n = int(self.mask[int(group[0])].sum())
        return self.input_ids[group, :n]


def check_texts(texts: Any) -> list[str]:
    """One text or a sequence of texts, as a list of strings."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
        raise InputError("texts", "a string or a list of strings", texts, "")
    texts = list(texts)
    if not texts:
        raise InputError("texts", "at least one text", texts, "")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}]", "a string", text, "")
    return texts


def encode(
    tokenizer: Any,
    texts: str | Sequence[str],
    max_length: int,
    *,
    truncate: bool = False,
    allow_empty: bool = False,
) -> Encoding:
    """Tokenise ``texts`` with special tokens and check them.

    Decision: a text longer than ``max_length`` tokens raises ``TextTooLongError`` unless
    ``truncate=True``, which explains the first ``max_length`` tokens and warns. An
    explanation of a silently cut text would look like an explanation of the whole text.
    An empty text (no token besides the special ones) raises ``EmptyTextError``, unless
    ``allow_empty`` (predictions for Anchors' perturbed texts, which may drop every word).
    """
    texts = check_texts(texts)
    batch = _tokenize(tokenizer, texts, None)
    for i, row in enumerate(batch["special_tokens_mask"]):
        if not allow_empty and all(row):
            raise EmptyTextError(
                f"texts[{i}]",
                "a text with at least one token",
                texts[i],
                "Remove empty texts before explaining; there is nothing to attribute.",
            )
    truncated = [len(row) > max_length for row in batch["input_ids"]]
    if any(truncated):
        first = truncated.index(True)
        size = len(batch["input_ids"][first])
        if not truncate:
            raise TextTooLongError(
                f"texts[{first}]",
                f"at most {max_length} tokens (the model's maximum, special tokens included)",
                f"a text of {size} tokens",
                "Shorten it, or pass truncate=True to explain only its first "
                f"{max_length} tokens (with a warning).",
            )
        warn(
            f"{sum(truncated)} text(s) (first: texts[{first}], {size} tokens) were cut to the "
            f"model's maximum of {max_length} tokens; the explanation covers only the part "
            "the model sees."
        )
        batch = _tokenize(tokenizer, texts, max_length)
    ids: list[list[int]] = [list(row) for row in batch["input_ids"]]
    specials: list[list[int]] = [list(row) for row in batch["special_tokens_mask"]]
    if getattr(batch, "is_fast", False):
        words = [batch.word_ids(i) for i in range(len(ids))]
        offsets = [[(int(a), int(b)) for a, b in row] for row in batch["offset_mapping"]]
    else:
        words = _wordpiece_words(tokenizer, ids)
        offsets = None
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = 0 if pad_id is None else int(pad_id)
    longest = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(ids), longest, dtype=torch.bool)
    special = torch.zeros(len(ids), longest, dtype=torch.bool)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
        special[i, : len(row)] = torch.tensor(specials[i], dtype=torch.bool)
    return Encoding(
        texts=texts,
        input_ids=input_ids,
        mask=mask,
        special=special,
        tokens=[list(tokenizer.convert_ids_to_tokens(row)) for row in ids],
        word_ids=[_renumbered(w, s) for w, s in zip(words, specials, strict=True)],
        offsets=offsets,
        truncated=truncated,
        pad_id=pad_id,
    )


def _tokenize(tokenizer: Any, texts: list[str], max_length: int | None) -> Any:
    fast = bool(getattr(tokenizer, "is_fast", False))
    return tokenizer(
        texts,
        add_special_tokens=True,
        return_special_tokens_mask=True,
        return_offsets_mapping=fast,
        truncation=max_length is not None,
        max_length=max_length,
        verbose=False,
    )


def _wordpiece_words(tokenizer: Any, ids: list[list[int]]) -> list[list[int | None]]:
    """Word index per token for slow tokenizers, from WordPiece continuation marks (``##``)."""
    out: list[list[int | None]] = []
    for row in ids:
        pieces = tokenizer.convert_ids_to_tokens(row)
        words: list[int | None] = []
        word = -1
        for piece in pieces:
            if not piece.startswith("##") or word < 0:
                word += 1
            words.append(word)
        out.append(words)
    return out


def _renumbered(words: list[int | None], specials: list[int]) -> list[int | None]:
    """Renumber words 0, 1, ... over ordinary tokens; ``None`` at special tokens."""
    out: list[int | None] = []
    seen: dict[int, int] = {}
    for w, s in zip(words, specials, strict=True):
        if s or w is None:
            out.append(None)
            continue
        if w not in seen:
            seen[w] = len(seen)
        out.append(seen[w])
    return out

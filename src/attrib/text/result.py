"""What attrib.text returns: scores per token (and per embedding dimension), per text.

Both results are padded to the longest text; padding holds 0 and is never part of a text
(``encoding.mask`` says which positions are real). Per-text views (``tokens_and_scores``,
``words``) drop the padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.text.aggregate import (
    TokenReduction,
    WordMerge,
    default_token_reduction,
    merge_words,
    token_scores,
    word_texts,
)
from attrib.text.encoding import Encoding
from attrib.text.html import highlight

__all__ = ["TokenAttribution", "TokenScores"]


@dataclass(frozen=True)
class TokenScores:
    """One score per token of each text.

    Attributes:
        encoding: the texts' tokens (``encoding.tokens``, ``encoding.mask``, ...).
        scores: ``(N, L)``, 0 at padding.
        method: how the scores were made, e.g. ``"IntegratedGradients / sum"``.
        params: the settings.
        target: the class explained per text (``(N,)``), where there is one.
        output: the model's logits ``(N, classes)``, where computed.
        labels: class names (for reports and HTML).
    """

    encoding: Encoding
    scores: torch.Tensor
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    output: Any = None
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.encoding)

    @property
    def texts(self) -> list[str]:
        return self.encoding.texts

    def _check_index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int) or not -len(self) <= i < len(self):
            raise SettingError("i", f"a text index in [0, {len(self)})", i, "")
        return i % len(self)

    def of(self, i: int) -> torch.Tensor:
        """The scores of text ``i``'s real tokens, ``(L_i,)`` (no padding)."""
        i = self._check_index(i)
        return self.scores[i, : int(self.encoding.mask[i].sum())]

    def tokens_and_scores(self, i: int, special: bool = True) -> list[tuple[str, float]]:
        """``(token, score)`` for each token of text ``i`` (special tokens unless told not)."""
        i = self._check_index(i)
        values = self.of(i).tolist()
        flags = self.encoding.special[i].tolist()
        return [
            (tok, v)
            for tok, v, s in zip(self.encoding.tokens[i], values, flags, strict=False)
            if special or not s
        ]

    def ranking(self, i: int, special: bool = False) -> list[int]:
        """Token positions of text ``i``, highest score first (special tokens left out
        unless ``special``)."""
        i = self._check_index(i)
        values = self.of(i)
        flags = self.encoding.special[i, : len(values)]
        positions = [t for t in range(len(values)) if special or not bool(flags[t])]
        return sorted(positions, key=lambda t: -float(values[t]))

    def words_of(self, i: int, merge: WordMerge = "sum") -> list[tuple[str, float]]:
        """``(word, score)`` per word of text ``i``: sub-word pieces merged by ``merge``,
        each word spelled as in the text (``attrib.text.aggregate.word_texts``); the words
        that the HTML, ``attrib.viz.token_figure`` and the command line show."""
        i = self._check_index(i)
        merged = merge_words(self.of(i), self.encoding.word_ids[i], merge)
        return list(zip(word_texts(self.encoding, i), merged.tolist(), strict=True))

    def words(self, merge: WordMerge = "sum") -> list[list[tuple[str, float]]]:
        """``(word, score)`` per word of each text (``words_of`` of every text)."""
        return [self.words_of(i, merge) for i in range(len(self))]

    def html(self, **options: Any) -> str:
        """Self-contained HTML highlighting (see ``attrib.text.html.highlight``)."""
        return highlight(self, **options)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"TokenScores(method={self.method!r}, texts={len(self)})"


@dataclass(frozen=True)
class TokenAttribution:
    """Attributions at the input embeddings: one score per token and dimension.

    Attributes:
        encoding: the texts' tokens.
        values: ``(N, L, d)``, 0 at padding and (for baselines that keep them fixed) at
            special tokens.
        delta: the completeness gap per text, ``sum(values) - (f(x) - f(x'))``, for path
            methods; else ``None``.
        target, output, method, params, labels: as in ``TokenScores``.
        baseline: the kind of baseline used (``"pad"``, ``"mask"``, ``"unk"``, ``"zero"``,
            or ``"tensor"``); ``"auto"`` is recorded as the kind it chose.
    """

    encoding: Encoding
    values: torch.Tensor
    delta: torch.Tensor | None = None
    target: Any = None
    output: Any = None
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    labels: list[str] | None = None
    baseline: Any = None

    def __len__(self) -> int:
        return len(self.encoding)

    @property
    def reduction(self) -> TokenReduction:
        """The method's own token reduction (the catalogue's ``token_reduction``): what
        ``scores()`` uses when no reduction is given."""
        return default_token_reduction(self.method)

    def scores(self, reduce: TokenReduction | None = None) -> TokenScores:
        """One score per token: the embedding dimensions reduced by ``reduce``
        (``attrib.text.aggregate``); by default the method's own reduction (``reduction``:
        the L2 norm for saliency, the sum for gradient x input, path and removal methods)."""
        if reduce is None:
            reduce = self.reduction
        scores = token_scores(self.values, reduce) * self.encoding.mask.to(self.values.device)
        return TokenScores(
            encoding=self.encoding,
            scores=scores,
            method=f"{self.method} / {reduce}",
            params={**self.params, "reduce": reduce},
            target=self.target,
            output=self.output,
            labels=self.labels,
        )

    def words(
        self, reduce: TokenReduction | None = None, merge: WordMerge = "sum"
    ) -> list[list[tuple[str, float]]]:
        return self.scores(reduce).words(merge)

    def html(self, reduce: TokenReduction | None = None, **options: Any) -> str:
        return self.scores(reduce).html(**options)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        extra = "" if self.delta is None else f", max|delta|={float(self.delta.abs().max()):.3g}"
        return (
            f"TokenAttribution(method={self.method!r}, texts={len(self)}, "
            f"values={tuple(self.values.shape)}{extra})"
        )

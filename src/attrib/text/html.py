"""Token highlighting as self-contained HTML (inline styles only: no script, no stylesheet,
no external resource), with a colour legend.

Positive scores are red, negative blue; the opacity is ``|s| / max |s|``, where the maximum
is taken over each text (``scale="text"``) or over all texts (``scale="batch"``, so that
texts can be compared). Each highlighted span carries its exact score in a tooltip. Texts
are drawn from their own characters (the tokenizer's offsets), so spacing and case are the
original ones; words merge their sub-word pieces (``words=True``, the default: the words of
``TokenScores.words``).
"""

from __future__ import annotations

import html as _html
from typing import Any, Literal, Protocol

import torch

from attrib.core.errors import SettingError
from attrib.text.aggregate import WordMerge, merge_words, word_spans, word_texts
from attrib.text.encoding import Encoding

__all__ = ["ScoredTexts", "highlight"]


class ScoredTexts(Protocol):
    """What ``highlight`` reads: one score per token of each text, as ``TokenScores`` holds
    them (``attrib.text.result``, whose ``html()`` calls ``highlight``; a protocol, so that
    this module need not import that one). Read-only, as the frozen result is."""

    @property
    def encoding(self) -> Encoding: ...

    @property
    def scores(self) -> torch.Tensor: ...

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> Any: ...

    @property
    def output(self) -> Any: ...

    @property
    def labels(self) -> list[str] | None: ...

    def __len__(self) -> int: ...

    def of(self, i: int) -> torch.Tensor: ...


_POSITIVE = (214, 39, 40)
_NEGATIVE = (31, 119, 180)


def _colour(value: float, scale: float) -> str:
    if scale <= 0:
        return "transparent"
    a = min(1.0, abs(value) / scale)
    r, g, b = _POSITIVE if value >= 0 else _NEGATIVE
    return f"rgba({r},{g},{b},{a:.3f})"


def _span(text: str, value: float, scale: float, label: str) -> str:
    tip = _html.escape(f"{label}: {value:+.4g}", quote=True)
    return (
        f'<span title="{tip}" style="background:{_colour(value, scale)};'
        f'border-radius:3px;padding:0 1px">{_html.escape(text)}</span>'
    )


def _legend(scale: float, per_text: bool) -> str:
    left = f"rgb{_NEGATIVE}"
    right = f"rgb{_POSITIVE}"
    bound = "max |score| of each text" if per_text else f"{scale:.3g}"
    return (
        '<div style="display:flex;align-items:center;gap:6px;font-size:12px;margin:4px 0 8px">'
        f"<span>&minus;{_html.escape(bound)}</span>"
        f'<span style="display:inline-block;width:160px;height:12px;border:1px solid #ccc;'
        f'background:linear-gradient(to right,{left},white,{right})"></span>'
        f"<span>+{_html.escape(bound)}</span>"
        '<span style="color:#666">(blue: against the class, red: for it)</span></div>'
    )


def _pieces(scores: ScoredTexts, i: int, words: bool, merge: WordMerge, special: bool):
    """``(start, end, label, value)`` spans of text ``i`` (``start = None``: not in the text)."""
    enc = scores.encoding
    values = scores.of(i)
    out: list[tuple[int, int, str | None, float]] = []
    if words:
        merged = merge_words(values, enc.word_ids[i], merge).tolist()
        spelled = word_texts(enc, i) if enc.offsets is None else [None] * len(merged)
        for (first, last), word, v in zip(word_spans(enc, i), spelled, merged, strict=True):
            out.append((first, last, word, v))
    else:
        for t in range(len(values)):
            if not bool(enc.special[i, t]):
                out.append((t, t, None, float(values[t])))
    if special:
        for t in range(len(values)):
            if bool(enc.special[i, t]):
                out.append((t, t, enc.tokens[i][t], float(values[t])))
        out.sort(key=lambda p: p[0])
    return out


def highlight(
    scores: ScoredTexts,
    *,
    words: bool = True,
    merge: WordMerge = "sum",
    special: bool = False,
    scale: Literal["text", "batch"] = "text",
    title: str | None = None,
) -> str:
    """One HTML fragment that highlights every text of ``scores``.

    ``words`` (default): one span per word, its pieces' scores merged by ``merge`` (the words
    of ``TokenScores.words``); ``words=False``: one span per token. ``special``: show the
    special tokens too. ``scale``: colours relative to each text's or the whole batch's
    largest ``|score|``."""
    if scale not in ("text", "batch"):
        raise SettingError("scale", "'text' or 'batch'", scale, "")
    enc = scores.encoding
    parts = []
    batch_scale = float(scores.scores.abs().max()) if len(scores) else 0.0
    heading = title if title is not None else scores.method
    parts.append(
        '<div style="font-family:system-ui,sans-serif;line-height:1.9;max-width:60em">'
        f'<div style="font-weight:600">{_html.escape(heading)}</div>'
    )
    parts.append(_legend(batch_scale, per_text=scale == "text"))
    for i in range(len(scores)):
        pieces = _pieces(scores, i, words, merge, special)
        text_scale = max((abs(p[3]) for p in pieces), default=0.0)
        s = text_scale if scale == "text" else batch_scale
        line = []
        cursor = 0
        text = enc.texts[i]
        for start_t, end_t, label, value in pieces:
            if label is not None or enc.offsets is None:
                shown = label if label is not None else enc.tokens[i][start_t]
                line.append(" " + _span(shown, value, s, shown) + " ")
                continue
            a = enc.offsets[i][start_t][0]
            b = enc.offsets[i][end_t][1]
            line.append(_html.escape(text[cursor:a]) if a > cursor else "")
            line.append(_span(text[a:b], value, s, text[a:b]))
            cursor = max(cursor, b)
        if enc.offsets is not None:
            line.append(_html.escape(text[cursor:]))
        parts.append(f'<div style="margin:2px 0 6px">{_caption(scores, i)}{"".join(line)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _caption(scores: ScoredTexts, i: int) -> str:
    """ "class: probability" of the explained class, where known."""
    target: Any = scores.target
    if target is None or not hasattr(target, "__getitem__"):
        return ""
    try:
        c = int(target[i])
    except (TypeError, ValueError, IndexError):
        return ""
    name = scores.labels[c] if scores.labels and 0 <= c < len(scores.labels) else str(c)
    extra = ""
    if scores.output is not None:
        p = scores.output[i].double().softmax(-1)[c]
        extra = f" {float(p):.2f}"
    return (
        '<span style="font-size:11px;color:#555;border:1px solid #ddd;border-radius:3px;'
        f'padding:0 3px;margin-right:6px">{_html.escape(name)}{extra}</span>'
    )

"""Text: token highlighting and attention heat maps.

``token_html`` is ``attrib.text.highlight`` (self-contained HTML, the form for reports and
notebooks); ``token_figure`` draws the same highlighting as a matplotlib figure, for a PNG.
Both show the words of ``TokenScores.words`` by default (sub-word pieces merged, spelled as
in the text), the words the command line prints; ``words=False`` shows the tokens.
A ``TokenAttribution`` is reduced by its method's own reduction (``TokenAttribution.scores``).
``attention_figure`` draws one attention matrix (queries x keys) with the tokens on both axes;
``generation_figure`` the steps x tokens matrix of ``attrib.text.explain_generation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attrib.core.errors import SettingError
from attrib.viz._deps import figure
from attrib.viz.colors import DIVERGING, SEQUENTIAL, colorize

__all__ = ["attention_figure", "generation_figure", "token_figure", "token_html"]


def token_html(scores: Any, **options: Any) -> str:
    """HTML highlighting of ``TokenScores`` (or a ``TokenAttribution``, reduced by its
    method's reduction): ``attrib.text.highlight(scores, **options)``."""
    try:
        from attrib.text import highlight
    except ImportError as error:  # pragma: no cover - attrib.text ships with attrib
        raise SettingError("scores", "attrib.text (token highlighting)", str(error), "") from None
    if hasattr(scores, "scores") and callable(scores.scores):  # a TokenAttribution
        scores = scores.scores()
    return highlight(scores, **options)


def _tokens_and_values(
    scores: Any, tokens: Sequence[str] | None, index: int, words: bool, merge: str
) -> tuple[list[str], np.ndarray]:
    if tokens is not None:
        values = np.asarray(
            scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, dtype=float
        )
        if values.shape != (len(tokens),):
            raise SettingError("scores", f"one score per token ({len(tokens)})", scores, "")
        return list(tokens), values
    if hasattr(scores, "scores") and callable(scores.scores):  # a TokenAttribution
        scores = scores.scores()
    if hasattr(scores, "tokens_and_scores"):  # TokenScores
        if words:
            pairs = scores.words_of(index, merge)
        else:
            pairs = scores.tokens_and_scores(index, special=False)
        return [t for t, _ in pairs], np.array([s for _, s in pairs], dtype=float)
    raise SettingError(
        "scores", "TokenScores, a TokenAttribution, or scores with tokens=", scores, ""
    )


def token_figure(
    scores: Any,
    tokens: Sequence[str] | None = None,
    *,
    index: int = 0,
    title: str | None = None,
    width: float = 8.0,
    per_line: int = 12,
    words: bool = True,
    merge: str = "sum",
) -> Any:
    """Words (or tokens) as boxes coloured by their score (red for the class, blue
    against), one text.

    ``scores``: ``TokenScores`` / ``TokenAttribution`` (text ``index``), or one score per
    token with ``tokens``. ``words`` (default): the words of ``TokenScores.words(merge)``,
    as the command line prints them and ``highlight`` shows them; ``words=False``: the
    tokenizer's tokens. Colours are scaled by the text's largest ``|score|``.
    """
    words_shown, values = _tokens_and_values(scores, tokens, index, words, merge)
    scale = float(np.abs(values).max()) if values.size else 0.0
    scaled = values / scale if scale > 0 else np.zeros_like(values)
    colours = colorize(scaled, DIVERGING, signed=True)
    lines = max(1, -(-len(words_shown) // per_line))
    fig = figure(width, 0.45 * lines + (0.5 if title else 0.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, per_line)
    ax.set_ylim(lines + (0.8 if title else 0.1), 0)
    for k, (word, colour, value) in enumerate(zip(words_shown, colours, values, strict=True)):
        row, col = divmod(k, per_line)
        y = row + (0.9 if title else 0.5)
        ax.text(
            col + 0.5,
            y,
            word,
            ha="center",
            va="center",
            fontsize=9,
            color="white" if abs(value) > 0.6 * scale and scale > 0 else "black",
            bbox={"facecolor": tuple(colour), "edgecolor": "none", "pad": 2.0},
        )
    if title:
        ax.text(0.05, 0.35, title, ha="left", va="center", fontsize=10, fontweight="bold")
    return fig


def attention_figure(
    weights: Any,
    tokens: Sequence[str],
    *,
    layer: int | None = -1,
    head: int | None = None,
    title: str | None = None,
    size: float = 4.5,
) -> Any:
    """A heat map of attention ``A[query, key]`` with the tokens on both axes.

    ``weights``: ``(L, L)``, ``(heads, L, L)`` or ``(layers, heads, L, L)`` (as
    ``attrib.text.attention_weights`` returns per text). ``layer`` picks the layer (default
    the last), ``head`` the head (default the mean over heads).
    """
    w = torch.as_tensor(weights).detach().to("cpu", torch.float64)
    label = []
    if w.dim() == 4:
        if layer is None:
            raise SettingError("layer", "a layer index for (layers, heads, L, L) weights", layer)
        w = w[layer]
        label.append(f"layer {layer % weights.shape[0] if hasattr(weights, 'shape') else layer}")
    if w.dim() == 3:
        w = w.mean(0) if head is None else w[head]
        label.append("mean over heads" if head is None else f"head {head}")
    if w.dim() != 2 or w.shape[0] != w.shape[1] or w.shape[0] != len(tokens):
        raise SettingError(
            "weights", f"an attention matrix over the {len(tokens)} tokens", weights, ""
        )
    n = len(tokens)
    fig = figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(w.numpy(), cmap=SEQUENTIAL, vmin=0.0, vmax=float(w.max()) or 1.0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(tokens, rotation=90, fontsize=7)
    ax.set_yticklabels(tokens, fontsize=7)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or "attention, " + ", ".join(label), fontsize=9)
    fig.tight_layout()
    return fig


def generation_figure(
    result: Any, *, title: str | None = None, cell: float = 0.28, max_size: float = 14.0
) -> Any:
    """A heat map of a ``GenerationAttribution`` (``attrib.text.explain_generation``): one
    row per generated token (the token it explains on the left), one column per token of
    the sequence, prompt and generated (a line after the prompt). Signed methods are drawn
    with the diverging map, symmetric about 0; saliency and attention (weights,
    rollout) with the sequential map. The undefined entries (the explained token and later
    ones) are left blank."""
    matrix = getattr(result, "matrix", None)
    if not isinstance(matrix, torch.Tensor) or matrix.dim() != 2:
        raise SettingError("result", "a GenerationAttribution", result, "")
    values = matrix.detach().to("cpu", torch.float64).numpy()
    steps, length = values.shape
    start = int(result.prompt_length)
    tokens = list(result.tokens)
    signed = result.method not in ("saliency", "attention", "attention_rollout")
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound or 1.0
    width = min(max_size, 2.0 + cell * length)
    height = min(max_size, 1.5 + cell * steps)
    fig = figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(
        np.ma.masked_invalid(values),
        cmap=DIVERGING if signed else SEQUENTIAL,
        vmin=-bound if signed else 0.0,
        vmax=bound,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_xticks(range(length))
    ax.set_xticklabels([repr(t)[1:-1] for t in tokens], rotation=90, fontsize=7)
    ax.set_yticks(range(steps))
    ax.set_yticklabels([repr(t)[1:-1] for t in tokens[start:]], fontsize=7)
    ax.axvline(start - 0.5, color="black", linewidth=0.8)
    ax.set_xlabel("earlier token (prompt | generated)")
    ax.set_ylabel("generated token")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or f"{result.method}: log p(generated token)", fontsize=9)
    fig.tight_layout()
    return fig

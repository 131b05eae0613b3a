"""The text part of the demo's report: the MiniLM sentiment classifier of ``attrib.text`` on a
few sentences, as token highlighting, token figures and an attention heat map."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from attrib.report.content import Picture, Section

__all__ = ["text_sections"]


def text_sections(
    texts: Sequence[str],
    methods: Sequence[tuple[str, dict[str, Any]]],
    on_step: Callable[[str, float], None] | None = None,
) -> list[Section]:
    """One section per method (highlighted words of every text), and one of attention."""
    import time

    from attrib.text import attention_weights, explain_tokens, highlight, load_text_model
    from attrib.text.aggregate import TOKEN_REDUCTION_TITLES
    from attrib.viz import attention_figure, png_bytes, token_figure

    start = time.perf_counter()
    classifier = load_text_model("minilm-sentiment")
    if on_step is not None:
        on_step("text model loaded", time.perf_counter() - start)
    sections = []
    for name, settings in methods:
        start = time.perf_counter()
        result = explain_tokens(classifier, list(texts), name, **settings)
        scores = result.scores()  # the method's own reduction (the catalogue's)
        pictures = [
            Picture(
                f"{scores.method}: text {i + 1}",
                png_bytes(token_figure(scores, index=i, title=texts[i][:70])),
            )
            for i in range(len(texts))
        ]
        reduction = TOKEN_REDUCTION_TITLES[scores.params["reduce"]]
        page = highlight(scores, title=f"{result.method} ({reduction})")
        settings_text = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        sections.append(Section(f"{name} ({settings_text})", page, pictures[:1]))
        if on_step is not None:
            on_step(f"text {name}", time.perf_counter() - start)
    start = time.perf_counter()
    weights = attention_weights(classifier, texts[0])[0]
    tokens = classifier.encode(texts[0]).tokens[0]
    fig = attention_figure(weights, tokens, title="last layer attention, mean over heads")
    sections.append(
        Section(
            "Attention",
            "<div class='caption'>Attention weights of the last layer of all-MiniLM-L6-v2 "
            "for the first sentence: which tokens (columns) each token (rows) attends to. "
            "Attention is not an explanation of the prediction by itself (Jain and Wallace "
            "2019); the attributions above are.</div>",
            [Picture("Attention heat map", png_bytes(fig))],
        )
    )
    if on_step is not None:
        on_step("text attention", time.perf_counter() - start)
    return sections

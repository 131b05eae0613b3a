"""The text part of the demo's report: the MiniLM sentiment classifier of ``attrib.text`` on a
few sentences, as token highlighting, token figures and an attention heat map."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from attrib.report.content import Picture, Section

__all__ = ["generation_section", "text_sections"]


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


def generation_section(
    prompt: str, max_new_tokens: int, on_step: Callable[[str, float], None] | None = None
) -> Section:
    """What the shipped tiny language model (``attrib.data.tiny_lm``) writes after ``prompt``
    (greedy), each written token explained by gradient x input: the heat map and the
    highlighted text of every step."""
    import time

    from attrib.data import tiny_lm
    from attrib.text import explain_generation
    from attrib.viz import generation_figure, png_bytes

    start = time.perf_counter()
    model, tokenizer = tiny_lm.load()
    result = explain_generation(
        model, tokenizer, prompt, max_new_tokens=max_new_tokens, method="gradient_x_input"
    )
    written = "".join(result.generated_tokens)
    caption = (
        "<div class='caption'>A 4-layer GPT-2-style model trained for minutes on Python's "
        f"help topics (<code>attrib.data.tiny_lm</code>) continued {prompt!r} with "
        f"{written!r}. Each row explains one written token: gradient x input of its "
        "log-probability, one score per earlier token (red for, blue against).</div>"
    )
    fig = generation_figure(result, title="gradient x input per generated token")
    section = Section(
        "Generation (tiny language model)",
        caption + result.html(),
        [Picture("Generation heat map", png_bytes(fig))],
    )
    if on_step is not None:
        on_step("text generation", time.perf_counter() - start)
    return section

"""``attrib explain-text "TEXT"... --model SPEC --method NAME``.

Prints each text's words with their scores and writes ``text.html`` (the words highlighted,
``attrib.text.highlight``) and ``text_{i}.png`` (the same words as a figure) to ``--out``.
A token's score reduces its embedding dimensions by ``--reduce``, by default the method's own
reduction (the catalogue's ``token_reduction``: the L2 norm for saliency, else the sum).
The model is the demo's sentiment classifier (``minilm-sentiment``) or a local Hugging Face
sequence-classification folder; nothing is downloaded.
"""

from __future__ import annotations

import argparse
from typing import Any

from attrib.cli.common import output_folder
from attrib.cli.recipes import parse_settings
from attrib.core.errors import SettingError
from attrib.text.loading import load_text_model

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib.text import explain_tokens, highlight
    from attrib.text.aggregate import TOKEN_REDUCTION_TITLES, TOKEN_REDUCTIONS
    from attrib.viz import save_png, token_figure

    reduce = getattr(args, "reduce", None)
    if reduce is not None and reduce not in TOKEN_REDUCTIONS:
        raise SettingError("--reduce", f"one of {', '.join(TOKEN_REDUCTIONS)}", reduce)
    out = output_folder(args.out)
    classifier = load_text_model(args.model, argument="--model")
    target: Any = args.target
    if target != "predicted":
        labels = [str(n).lower() for n in (getattr(classifier, "labels", None) or [])]
        if target.isdigit():
            target = int(target)
        elif target.lower() in labels:
            target = labels.index(target.lower())
        else:
            raise SettingError("--target", f"predicted, a class index or one of {labels}", target)
    result = explain_tokens(
        classifier, list(args.texts), args.method, target=target, **parse_settings(args.set)
    )
    scores = result.scores(reduce)
    reduction = scores.params["reduce"]
    # the terminal, the page and the figures show the same words (TokenScores.words_of)
    page = highlight(scores, title=f"{result.method}: {TOKEN_REDUCTION_TITLES[reduction]}")
    (out / "text.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>attrib</title></head>"
        f"<body>{page}</body></html>",
        encoding="utf-8",
    )
    for i, words in enumerate(scores.words()):
        shown = " ".join(f"{w}({s:+.2f})" for w, s in words)
        label = ""
        if scores.target is not None and scores.labels:
            label = f"[{scores.labels[int(scores.target[i])]}] "
        print(f"{label}{shown}")
        save_png(token_figure(scores, index=i, title=scores.texts[i][:80]), out / f"text_{i}.png")
    print(f"scores: {result.method}, {TOKEN_REDUCTION_TITLES[reduction]} (--reduce)")
    print(f"written: {out / 'text.html'}")
    return 0

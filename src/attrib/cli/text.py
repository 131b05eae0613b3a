"""``attrib explain-text "TEXT"... --model SPEC --method NAME``.

Prints each text's words with their scores and writes ``text.html`` (highlighted tokens,
``attrib.text.highlight``) and ``text_{i}.png`` (the same as a figure) to ``--out``.
The model is the demo's sentiment classifier (``minilm-sentiment``) or a local Hugging Face
sequence-classification folder; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from attrib.cli.recipes import parse_settings
from attrib.core.errors import SettingError

__all__ = ["TEXT_MODELS", "load_text_model", "run"]

TEXT_MODELS = ("minilm-sentiment", "minilm", "demo")


def _offline() -> None:
    # never reach the network from a command (the demo must run without one)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()
    except ImportError:
        pass


def load_text_model(spec: str) -> Any:
    """A ``TextClassifier`` for ``spec``."""
    _offline()
    try:
        from attrib.text import TextClassifier, load_minilm_sentiment
    except ImportError as error:
        raise SettingError(
            "--model", "attrib.text (pip install attrib[text])", str(error)
        ) from None
    if spec in TEXT_MODELS:
        return load_minilm_sentiment()
    folder = Path(spec)
    if not (folder / "config.json").is_file():
        raise SettingError(
            "--model",
            "minilm-sentiment or a local Hugging Face model folder (with config.json)",
            spec,
            "",
        )
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    labels = getattr(model.config, "id2label", None)
    names = [labels[i] for i in range(len(labels))] if labels else None
    return TextClassifier(model.eval(), tokenizer, labels=names)


def run(args: argparse.Namespace) -> int:
    from attrib.text import explain_tokens, highlight
    from attrib.viz import save_png, token_figure

    classifier = load_text_model(args.model)
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
    scores = result.scores("sum")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = highlight(scores, words=True, title=f"{scores.method}")
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
    print(f"written: {out / 'text.html'}")
    return 0

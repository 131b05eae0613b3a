"""A text classifier by name: the demo's MiniLM sentiment model, or a local Hugging Face folder.

Nothing is downloaded: the Hugging Face libraries are told to stay offline before anything
is loaded, so a command (and the demo) runs the same without a network.
"""

from __future__ import annotations

import os
from pathlib import Path

from attrib.core.errors import SettingError
from attrib.text.models import TextClassifier

__all__ = ["TEXT_MODELS", "load_text_model"]

TEXT_MODELS = ("minilm-sentiment", "minilm", "demo")
"""The names of the shipped sentiment classifier (``attrib.text.load_minilm_sentiment``)."""


def _offline() -> None:
    # never reach the network from a command (the demo must run without one); setdefault,
    # so that a user who allows the network keeps it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()
    except ImportError:
        pass


def load_text_model(model: str, *, argument: str = "model") -> TextClassifier:
    """A ``TextClassifier`` for ``model``: one of ``TEXT_MODELS`` (the demo's MiniLM sentiment
    classifier), or a local folder of a Hugging Face sequence-classification model (with its
    ``config.json`` and tokenizer; class names from ``config.id2label``).

    ``argument``: the name that errors give the model (``"--model"`` on the command line).
    """
    _offline()
    if model in TEXT_MODELS:
        from attrib.text.minilm import load_minilm_sentiment

        return load_minilm_sentiment()
    folder = Path(model)
    if not (folder / "config.json").is_file():
        raise SettingError(
            argument,
            "minilm-sentiment or a local Hugging Face model folder (with config.json)",
            model,
            "",
        )
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError:
        raise SettingError(
            argument, "transformers installed", model, "pip install 'attrib[text]'."
        ) from None

    loaded = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    labels = getattr(loaded.config, "id2label", None)
    names = [labels[i] for i in range(len(labels))] if labels else None
    return TextClassifier(loaded.eval(), tokenizer, labels=names)

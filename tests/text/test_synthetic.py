"""A tiny transformer learns a task decided by known tokens; attributions must find them.

Each text is 5 to 12 random filler words and one decisive word, "good" (label 1) or "bad"
(label 0), at a random place. The model is trained here (60 Adam steps, seconds; 100%
held-out accuracy). On held-out texts the decisive token must rank first among the ordinary
tokens in at least 90% of the texts for every method; random scores rank it first only about
1 time in 9.

What is not claimed: signed gradient x input ("sum") ranks it first in only 75-100% of texts
depending on the seed, and trained longer (150 steps) the model saturates and plain
saliency drops to ~89% while IG, SmoothGrad and leave-one-out stay at 100% (seed 002's point
about saturated gradients).
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from attrib.text import (
    TextClassifier,
    attention_rollout,
    attention_x_gradient,
    explain_tokens,
    last_layer_attention,
)
from attrib.text.result import TokenScores
from tests.text.conftest import FILLERS, tiny_classifier

THRESHOLD = 0.9


def make_texts(n: int, seed: int, neutral: float = 0.0) -> tuple[list[str], list[int]]:
    """``n`` texts; a share ``neutral`` of them has no decisive word and a random label.

    Training with neutral texts makes both words decisive: without them a model may learn
    "bad -> 0, anything else -> 1", and then "good" decides nothing (attributions that
    say so are right, and the test would be wrong).
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        words = [rng.choice(FILLERS) for _ in range(rng.randint(5, 12))]
        label = rng.randint(0, 1)
        if rng.random() >= neutral:
            words.insert(rng.randint(0, len(words)), "good" if label else "bad")
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def train(clf: TextClassifier, steps: int = 60, seed: int = 0) -> float:
    texts, labels = make_texts(2048, seed, neutral=1 / 3)
    enc = clf.encode(texts)
    ids, mask, y = enc.input_ids, enc.mask.long(), torch.tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    model = clf.model
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(texts), (64,), generator=generator)
        loss = F.cross_entropy(
            model(input_ids=ids[batch], attention_mask=mask[batch]).logits, y[batch]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return float(loss.detach())


@pytest.fixture(scope="module")
def trained() -> tuple[TextClassifier, list[str], list[int]]:
    clf = tiny_classifier(seed=5)
    train(clf)
    texts, labels = make_texts(120, seed=99)  # held out: another seed
    accuracy = float((torch.tensor(clf.predict(texts)) == torch.tensor(labels)).double().mean())
    assert accuracy >= 0.97, f"the tiny model did not learn the task ({accuracy:.2f})"
    return clf, texts, labels


def decisive_first(scores, texts: list[str]) -> float:
    """Share of texts whose top-ranked ordinary token is the decisive word."""
    hits = 0
    for i in range(len(texts)):
        top = scores.ranking(i)[0]
        hits += scores.encoding.tokens[i][top] in ("good", "bad")
    return hits / len(texts)


@pytest.mark.parametrize(
    ("method", "reduce", "settings"),
    [
        ("saliency", "l2", {}),
        ("gradient_x_input", "l2", {}),
        ("integrated_gradients", "sum", {"steps": 32}),
        ("smoothgrad", "l2", {"samples": 8, "sigma": 0.1, "seed": 0}),
        ("leave_one_out", "sum", {}),
    ],
)
def test_methods_find_the_decisive_token(trained, method, reduce, settings):
    clf, texts, _ = trained
    result = explain_tokens(clf, texts, method, **settings)
    share = decisive_first(result.scores(reduce), texts)
    assert share >= THRESHOLD, f"{method}: decisive token first in {share:.0%} of texts"


@pytest.mark.parametrize(
    "explain",
    [
        lambda clf, texts: attention_x_gradient(clf, texts, layer=0),
        lambda clf, texts: attention_x_gradient(clf, texts, layer=-1),
        last_layer_attention,
        attention_rollout,
    ],
    ids=["attention_x_gradient_0", "attention_x_gradient_last", "last_layer", "rollout"],
)
def test_attention_scores_find_the_decisive_token(trained, explain):
    clf, texts, _ = trained
    share = decisive_first(explain(clf, texts), texts)
    assert share >= THRESHOLD, share


def test_random_scores_do_not(trained):
    clf, texts, _ = trained
    result = explain_tokens(clf, texts, "saliency")
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(result.values.shape[:2], generator=generator)
    random_scores = TokenScores(result.encoding, noise * result.encoding.mask)
    share = decisive_first(random_scores, texts)
    assert share < 0.3, share


def test_anchors_plug_in_through_predict(trained):
    """``classifier.predict`` is the "list of strings -> labels" function of AnchorsText; on
    the trained model the anchor of a text is its decisive word."""
    from attrib.text import anchors

    clf, texts, _ = trained
    explainer = anchors.AnchorsText(clf.predict, seed=0, max_samples=4000)
    for text in texts[:3]:
        anchor = explainer(text)
        assert anchor.found and anchor.words in (("good",), ("bad",)), anchor

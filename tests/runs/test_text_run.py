"""A text run of the real MiniLM sentiment classifier over a JSON Lines file: the model's
predictions, an empty text as an error row, and each text's token scores as
``attrib.text.explain_tokens`` gives them for the predicted class, or for the label.

The run explains the texts of a shard together (``explain_tokens`` batches texts of the same
token length), the direct calls below one text at a time: the same operations on batches of
another size, whose matrix products may sum in another order. Float32 sums of n terms then
differ by up to about n * 2^-24 of their magnitude; MiniLM's widest sums have n = 1536 (its
feed-forward layer), so scores are compared within 1536 * 2^-24 (about 1e-4) of the text's
largest score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attrib.runs import run

pytest.importorskip("pyarrow")

TEXTS = [
    "A wonderful, moving film.",
    "The plot was dull and the acting worse.",
    "",
    "Not bad at all.",
    "I would never watch it again.",
    "An instant classic.",
]
LABELS = [0, 0, 1, 1, 0, 1]  # the first is wrong on purpose: "label" explains it anyway
EMPTY = 2
STEPS = 4
TOLERANCE = 1536 * 2.0**-24  # relative to the text's largest score (see the module)


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "reviews.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i, (text, label) in enumerate(zip(TEXTS, LABELS, strict=True)):
            handle.write(json.dumps({"id": f"review-{i}", "text": text, "label": label}) + "\n")
    return path


def _settings(**kwargs):
    return {"progress": False, "workers": 0, "shard_size": 4, **kwargs}


def assert_scores_equal(got: list[float], want: list[float]) -> None:
    scale = max(abs(v) for v in want)
    assert scale > 0
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * scale)


def test_a_text_run_holds_the_predictions_and_token_scores_of_the_classifier(
    minilm, texts, tmp_path
):
    from attrib.text import explain_tokens

    done = run(
        minilm,
        texts,
        methods="saliency,integrated_gradients",
        settings={"steps": STEPS},
        out=tmp_path / "run",
        **_settings(),
    )
    rows = done.samples.to_pylist()
    assert [r["id"] for r in rows] == [f"review-{i}" for i in range(len(TEXTS))]
    assert [r["label"] for r in rows] == LABELS
    empty = rows[EMPTY]
    assert empty["status"] == "error" and empty["prediction"] is None
    assert "no text" in empty["error"]
    kept = [i for i in range(len(TEXTS)) if i != EMPTY]
    assert all(rows[i]["status"] == "ok" for i in kept)
    predicted = minilm.logits([TEXTS[i] for i in kept]).argmax(-1).tolist()
    assert [rows[i]["prediction"] for i in kept] == predicted
    assert len(set(predicted)) == 2  # both classes: the targets matter below

    assert sorted(done.methods) == ["IntegratedGradients", "Saliency"]
    for method, name in (("Saliency", "saliency"), ("IntegratedGradients", "integrated_gradients")):
        table = done.tokens(method).to_pylist()
        assert [t["id"] for t in table] == [rows[i]["id"] for i in kept]  # errors have none
        for entry, i, target in zip(table, kept, predicted, strict=True):
            settings = {"steps": STEPS} if name == "integrated_gradients" else {}
            want = explain_tokens(minilm, TEXTS[i], name, target=target, **settings)
            pairs = want.scores().tokens_and_scores(0)
            assert entry["tokens"] == [t for t, _ in pairs]
            assert_scores_equal(entry["scores"], [s for _, s in pairs])


def test_target_label_explains_the_label(minilm, texts, tmp_path):
    from attrib.text import explain_tokens

    done = run(
        minilm,
        texts,
        methods="integrated_gradients",
        settings={"steps": STEPS},
        target="label",
        out=tmp_path / "run",
        **_settings(),
    )
    rows = {r["id"]: r for r in done.samples.to_pylist()}
    table = done.tokens("IntegratedGradients").to_pylist()
    assert len(table) == len(TEXTS) - 1
    differ = 0
    for entry in table:
        row = rows[entry["id"]]
        text = TEXTS[row["index"]]
        of_label = explain_tokens(
            minilm, text, "integrated_gradients", target=row["label"], steps=STEPS
        )
        assert_scores_equal(entry["scores"], [s for _, s in of_label.scores().tokens_and_scores(0)])
        if row["label"] != row["prediction"]:
            differ += 1
            of_prediction = explain_tokens(
                minilm, text, "integrated_gradients", target=row["prediction"], steps=STEPS
            )
            other = [s for _, s in of_prediction.scores().tokens_and_scores(0)]
            scale = max(abs(v) for v in other)
            assert np.abs(np.subtract(entry["scores"], other)).max() > 100 * TOLERANCE * scale
    assert differ >= 1  # a text whose label is not its prediction: the check above is real

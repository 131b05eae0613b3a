"""Serrano and Smith's erasure tests: the erasure itself, JS, the two tests (the command is
tested in tests/cli/test_erasure.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attrib.core.errors import LayerError, SettingError
from attrib.text.erasure import (
    SetErasure,
    SingleWeightErasure,
    attention_modules,
    erased,
    erasure_tests,
    js_divergence,
)
from tests.conftest import assert_state_restored, model_state
from tests.text.conftest import tiny_classifier

TEXTS = ["w1 good w2 w3", "bad w3 w4 w5 w6 w7", "w8 unwell w9", "w2 w3 w4 w5"]


def attentions(clf, ids):
    with torch.no_grad():
        return clf.model(input_ids=ids, output_attentions=True).attentions


def test_js_divergence():
    p = torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.2, 0.8], [0.0, 1.0], [0.9, 0.1]])
    js = js_divergence(p, q)
    assert float(js[0]) == 0.0
    assert math.isclose(float(js[1]), math.log(2), rel_tol=1e-12)  # disjoint: the maximum
    m = (p[2] + q[2]) / 2
    literal = 0.5 * sum(p[2] * (p[2] / m).log()) + 0.5 * sum(q[2] * (q[2] / m).log())
    assert math.isclose(float(js[2]), float(literal), rel_tol=1e-6)
    torch.testing.assert_close(js_divergence(q, p), js)


def test_attention_modules_in_layer_order(tiny):
    names = [n for n, _ in attention_modules(tiny.model)]
    assert names == [f"encoder.encoder.layer.{k}.attention.self" for k in range(2)]


@pytest.mark.parametrize("layer", [0, 1])
def test_erasure_zeroes_and_renormalises(tiny, layer):
    """Under erasure of keys I', the layer's attention is the original one with the columns
    of I' zeroed and each row renormalised; the layers before it do not change."""
    ids = tiny.encode(TEXTS[1]).input_ids.repeat(2, 1)
    keys = torch.zeros(2, ids.shape[1], dtype=torch.bool)
    keys[0, 2] = True
    keys[1, [1, 3, 4]] = True
    before = attentions(tiny, ids)
    _, module = attention_modules(tiny.model)[layer]
    state = model_state(tiny.model)
    with erased(module, keys):
        after = attentions(tiny, ids)
    assert_state_restored(tiny.model, state)
    kept = before[layer] * (~keys)[:, None, None, :]
    expected = kept / kept.sum(-1, keepdim=True)
    torch.testing.assert_close(after[layer], expected, rtol=1e-5, atol=1e-6)
    for earlier in range(layer):
        torch.testing.assert_close(after[earlier], before[earlier])
    # and the hook is gone: the next forward is the original one
    torch.testing.assert_close(attentions(tiny, ids)[layer], before[layer])


def test_erasure_keeps_the_models_own_mask(tiny):
    enc = tiny.encode(["w1 good", "bad w3 w4 w5"])
    ids, mask = enc.input_ids, enc.mask.long()
    keys = torch.zeros(ids.shape, dtype=torch.bool)
    keys[1, 1] = True
    _, module = attention_modules(tiny.model)[0]
    with erased(module, keys), torch.no_grad():
        maps = tiny.model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    assert torch.all(maps[0][0, :, :, 4:] == 0)  # padding of text 0 still masked
    assert torch.all(maps[0][1, :, :, 1] == 0)  # the erased key
    with pytest.raises(SettingError):
        with erased(module, keys[:1]), torch.no_grad():
            tiny.model(input_ids=ids)


def test_the_two_tests_follow_their_definitions():
    """Recompute the single-weight numbers of one text literally."""
    tiny = tiny_classifier(seed=3)
    with torch.no_grad():
        tiny.model.head.weight.mul_(100.0)  # confident outputs: JS well above float noise
    report = erasure_tests(tiny, TEXTS, layer=1, seed=4)
    one = report.single
    assert len(one.js_top) == len(TEXTS) and report.layer == 1
    ids = tiny.encode(TEXTS[0]).input_ids
    a = attentions(tiny, ids)[1][0].double()
    alpha = a.mean((0, 1))
    top = int(alpha.argmax())
    assert math.isclose(one.alpha_top[0], float(alpha[top]), rel_tol=1e-6)
    _, module = attention_modules(tiny.model)[1]
    with torch.no_grad():
        p = tiny.model(input_ids=ids).logits.double().softmax(-1)
        keys = torch.zeros(1, ids.shape[1], dtype=torch.bool)
        keys[0, top] = True
        with erased(module, keys):
            q = tiny.model(input_ids=ids).logits.double().softmax(-1)
    assert math.isclose(one.js_top[0], float(js_divergence(p, q)[0]), rel_tol=1e-5, abs_tol=1e-12)
    assert one.alpha_random[0] <= one.alpha_top[0]
    # sets: erasing the first k of the ranking flips the decision, k - 1 does not
    sets = report.sets
    for name, removed in sets.removed.items():
        fractions = sets.fractions(name)
        flipped = removed > 0
        assert np.all((fractions[flipped] > 0) & (fractions[flipped] < 1))
        assert np.all(np.isnan(fractions[~flipped]))


def test_tables_and_summaries():
    single = SingleWeightErasure(
        alpha_top=np.array([0.5, 0.6, 0.7, 0.4]),
        alpha_random=np.array([0.1, 0.2, 0.1, 0.3]),
        js_top=np.array([0.3, 0.0, 0.1, 0.2]),
        js_random=np.array([0.1, 0.1, 0.0, 0.0]),
        flip_top=np.array([True, False, True, False]),
        flip_random=np.array([True, False, False, False]),
    )
    assert single.table().tolist() == [[25.0, 25.0], [0.0, 50.0]]
    assert single.summary()["share_delta_js_positive"] == 0.75
    sets = SetErasure({"a": np.array([1, 0, 3]), "b": np.array([2, 2, 0])}, np.array([4, 4, 6]))
    summary = sets.summary()
    assert summary["a"]["share_flipped"] == pytest.approx(2 / 3)
    assert summary["a"]["median_fraction_removed"] == pytest.approx((0.25 + 0.5) / 2)
    assert summary["a"]["mean_fraction_never_flipped_as_1"] == pytest.approx((0.25 + 1 + 0.5) / 3)
    assert summary["pairwise"]["a_vs_b"]["a_fewer"] == pytest.approx(2 / 3)


def test_bad_layer_and_ranking(tiny):
    with pytest.raises(LayerError):
        erasure_tests(tiny, TEXTS, layer=5)
    with pytest.raises(SettingError):
        erasure_tests(tiny, TEXTS, rankings=("attention", "saliency"))

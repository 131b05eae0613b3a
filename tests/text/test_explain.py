"""Token attributions at the embeddings: every method unchanged, baselines, padding, peers."""

from __future__ import annotations

import functools

import pytest
import torch

from attrib.core.errors import SettingError, TargetError
from attrib.methods import GradientXInput, IntegratedGradients, Saliency
from attrib.methods.smoothing import SmoothGrad
from attrib.text import LeaveOneOut, explain_tokens, method_names
from attrib.text.baselines import baseline_embeddings
from tests.conftest import assert_state_restored, model_state

TEXTS = ["w1 good w2", "bad w3 w4 w5 w6 w7", "w8 w9 unwell", "w2 w2 good w4"]


def score(clf, ids: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target logit, from token ids (the model's own embedding path)."""
    with torch.no_grad():
        logits = clf.model(input_ids=ids).logits
    return logits.gather(1, target.view(-1, 1)).squeeze(1).double()


def baseline_ids(enc, i: int, token_id: int) -> torch.Tensor:
    n = int(enc.lengths[i])
    ids = enc.input_ids[i : i + 1, :n].clone()
    ids[0, ~enc.special[i, :n]] = token_id
    return ids


def test_saliency_is_the_gradient_at_the_embeddings(tiny):
    result = explain_tokens(tiny, TEXTS[:1], "saliency", target=1)
    ids = tiny.encode(TEXTS[:1]).input_ids
    embeds = tiny.embed(ids).requires_grad_(True)
    logit = tiny.model(inputs_embeds=embeds).logits[0, 1]
    (grad,) = torch.autograd.grad(logit, embeds)
    torch.testing.assert_close(result.values, grad, rtol=1e-5, atol=1e-7)
    gxi = explain_tokens(tiny, TEXTS[:1], "gradient_x_input", target=1)
    torch.testing.assert_close(gxi.values, grad * embeds.detach(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["pad", "mask", "unk", "zero"])
def test_ig_baselines_keep_special_tokens_and_are_complete(tiny, kind):
    result = explain_tokens(tiny, TEXTS, "integrated_gradients", baseline=kind, steps=64)
    enc = result.encoding
    # special tokens and padding get exactly nothing
    assert torch.all(result.values[enc.special | ~enc.mask] == 0)
    # completeness against f(x) - f(x') with x' built independently from token ids
    for i in range(len(TEXTS)):
        n = int(enc.lengths[i])
        x = enc.input_ids[i : i + 1, :n]
        t = result.target[i : i + 1]
        if kind == "zero":
            embeds = tiny.embed(x)
            embeds[0, ~enc.special[i, :n]] = 0
            with torch.no_grad():
                f_base = tiny.model(inputs_embeds=embeds).logits[0, t].double()
        else:
            token = getattr(tiny.tokenizer, f"{kind}_token_id")
            f_base = score(tiny, baseline_ids(enc, i, token), t)
        gap = score(tiny, x, t) - f_base
        total = result.values[i].sum().double()
        assert float((total - gap).abs()) < 1e-3 * max(1.0, float(gap.abs()))
        torch.testing.assert_close(result.delta[i], total - gap[0], rtol=0, atol=1e-5)


def test_baseline_embeddings():
    embeds = torch.arange(12.0).view(3, 4)
    special = torch.tensor([True, False, True])
    out = baseline_embeddings(embeds, special, torch.full((4,), -1.0))
    assert out[0].tolist() == embeds[0].tolist() and out[2].tolist() == embeds[2].tolist()
    assert out[1].tolist() == [-1.0] * 4


def test_unknown_baseline_and_method_names(tiny):
    with pytest.raises(SettingError, match="baseline"):
        explain_tokens(tiny, TEXTS, "integrated_gradients", baseline="blank")
    with pytest.raises(SettingError, match="Did you mean 'saliency'"):
        explain_tokens(tiny, TEXTS, "saliancy")
    assert "integratedgradients" in method_names()


@pytest.mark.parametrize(
    "method",
    ["saliency", "gradient_x_input", "integrated_gradients", "leave_one_out"],
)
def test_padding_changes_nothing(tiny, method):
    """The same text alone and in a batch of texts of other lengths: the same attributions."""
    together = explain_tokens(tiny, TEXTS, method, target=1)
    for i, text in enumerate(TEXTS):
        alone = explain_tokens(tiny, [text], method, target=1)
        n = int(together.encoding.lengths[i])
        torch.testing.assert_close(together.values[i, :n], alone.values[0], rtol=1e-5, atol=1e-7)
        assert torch.all(together.values[i, n:] == 0)


def test_padding_would_change_things_without_the_groups(tiny):
    """The property above is not vacuous: fed padded rows without a mask, the model changes."""
    enc = tiny.encode(TEXTS)
    embeds = tiny.embed(enc.input_ids)
    with torch.no_grad():
        padded = tiny.embedding_model(embeds)[0]
        alone = tiny.embedding_model(embeds[:1, : int(enc.lengths[0])])[0]
    assert not torch.allclose(padded, alone, atol=1e-4)


def test_leave_one_out_is_the_literal_definition(tiny):
    result = explain_tokens(tiny, TEXTS, "leave_one_out", baseline="mask", target=0)
    enc = result.encoding
    scores = result.scores("sum")
    for i in range(len(TEXTS)):
        n = int(enc.lengths[i])
        x = enc.input_ids[i : i + 1, :n]
        full = score(tiny, x, torch.tensor([0]))
        for t in range(n):
            if enc.special[i, t]:
                assert float(scores.scores[i, t]) == 0.0
                continue
            occluded = x.clone()
            occluded[0, t] = tiny.tokenizer.mask_token_id
            expected = full - score(tiny, occluded, torch.tensor([0]))
            assert abs(float(scores.scores[i, t]) - float(expected)) < 1e-5
    one = explain_tokens(tiny, TEXTS[1], "leave_one_out")
    assert one.params["evaluations"] == len(TEXTS[1].split())  # one forward per ordinary token


def test_leave_one_out_is_chunk_invariant(tiny):
    a = explain_tokens(tiny, TEXTS, "leave_one_out", batch_size=2)
    b = explain_tokens(tiny, TEXTS, "leave_one_out", batch_size=64)
    torch.testing.assert_close(a.values, b.values, rtol=1e-5, atol=1e-7)


def test_smoothgrad_on_embeddings(tiny):
    result = explain_tokens(tiny, TEXTS[:2], "smoothgrad", samples=6, sigma=0.1, seed=3)
    again = explain_tokens(tiny, TEXTS[:2], "smoothgrad", samples=6, sigma=0.1, seed=3)
    torch.testing.assert_close(result.values, again.values)
    plain = explain_tokens(tiny, TEXTS[:2], "saliency")
    assert not torch.allclose(result.values, plain.values)
    zero_noise = explain_tokens(tiny, TEXTS[:2], "smoothgrad", samples=2, sigma=0.0, seed=3)
    torch.testing.assert_close(zero_noise.values, plain.values, rtol=1e-5, atol=1e-7)


def test_methods_as_builders_and_instances(tiny):
    by_name = explain_tokens(tiny, TEXTS, "integrated_gradients", steps=16, target=1)
    by_partial = explain_tokens(
        tiny, TEXTS, functools.partial(IntegratedGradients, steps=16), target=1
    )
    torch.testing.assert_close(by_name.values, by_partial.values)
    wrapped = explain_tokens(
        tiny,
        TEXTS,
        lambda m, baseline: SmoothGrad(
            IntegratedGradients(m, steps=4, baseline=baseline), samples=2, sigma=0.05, seed=0
        ),
        target=1,
    )
    assert wrapped.delta is not None and wrapped.values.shape == by_name.values.shape
    instance = explain_tokens(tiny, TEXTS, Saliency(tiny.embedding_model), target=1)
    torch.testing.assert_close(
        instance.values, explain_tokens(tiny, TEXTS, "saliency", target=1).values
    )
    with pytest.raises(SettingError, match="embedding_model"):
        explain_tokens(tiny, TEXTS, GradientXInput(tiny.model))
    with pytest.raises(SettingError, match="no settings"):
        explain_tokens(tiny, TEXTS, Saliency(tiny.embedding_model), steps=3)
    occlusion = explain_tokens(tiny, TEXTS, lambda m, baseline: LeaveOneOut(m, baseline=baseline))
    torch.testing.assert_close(
        occlusion.values, explain_tokens(tiny, TEXTS, "leave_one_out").values
    )


def test_targets_per_text(tiny):
    result = explain_tokens(tiny, TEXTS, "saliency", target=[0, 1, 1, 0])
    assert result.target.tolist() == [0, 1, 1, 0]
    for i, c in enumerate([0, 1, 1, 0]):
        alone = explain_tokens(tiny, [TEXTS[i]], "saliency", target=c)
        n = int(result.encoding.lengths[i])
        torch.testing.assert_close(result.values[i, :n], alone.values[0], rtol=1e-5, atol=1e-7)
    predicted = explain_tokens(tiny, TEXTS, "saliency")
    assert predicted.target.tolist() == predicted.output.argmax(1).tolist()
    with pytest.raises(TargetError):
        explain_tokens(tiny, TEXTS, "saliency", target=[0, 1])


def test_scores_words_and_state(tiny):
    before = model_state(tiny.model)
    result = explain_tokens(tiny, TEXTS, "integrated_gradients", steps=8)
    assert_state_restored(tiny.model, before)
    words = result.words("sum")
    assert [w for w, _ in words[2]] == ["w8", "w9", "unwell"]
    scores = result.scores("sum")
    pieces = scores.tokens_and_scores(2, special=False)
    assert abs(words[2][2][1] - (pieces[2][1] + pieces[3][1])) < 1e-6
    assert scores.ranking(0)[0] in (1, 2, 3)


def test_ig_matches_captum_layer_integrated_gradients(tiny):
    captum_attr = pytest.importorskip("captum.attr")
    enc = tiny.encode(TEXTS[1])
    ids = enc.input_ids
    base = ids.clone()
    base[~enc.special] = tiny.tokenizer.pad_token_id
    layer = tiny.model.encoder.embeddings.word_embeddings

    def forward(input_ids):
        return tiny.model(input_ids=input_ids).logits

    lig = captum_attr.LayerIntegratedGradients(forward, layer)
    theirs = lig.attribute(ids, baselines=base, target=1, n_steps=32, method="gausslegendre")
    ours = explain_tokens(tiny, TEXTS[1], "integrated_gradients", steps=32, target=1)
    torch.testing.assert_close(ours.values, theirs.float(), rtol=1e-4, atol=1e-6)


# -- the real model ------------------------------------------------------------------------

REAL = [
    "A gripping, beautifully acted drama that never lets go.",
    "Tedious, overlong and not nearly as clever as it thinks it is.",
    "The film is fine.",
]


def test_ig_completeness_on_the_real_model(minilm):
    """Sum of IG over tokens within 1% of f(x) - f(x') at 64 steps, [PAD] baseline."""
    result = explain_tokens(minilm, REAL, "integrated_gradients", steps=64, baseline="pad")
    enc = result.encoding
    for i in range(len(REAL)):
        n = int(enc.lengths[i])
        x = enc.input_ids[i : i + 1, :n]
        t = result.target[i : i + 1]
        gap = score(minilm, x, t) - score(
            minilm, baseline_ids(enc, i, minilm.tokenizer.pad_token_id), t
        )
        total = result.values[i].sum().double()
        assert abs(float(total - gap)) <= 0.01 * abs(float(gap)), (i, float(total), float(gap))
        assert abs(float(result.delta[i])) <= 0.01 * abs(float(gap))

"""Each method's own token reduction (the catalogue's ``token_reduction``): saliency's word
scores are the norms of the embedding gradients, not their sum, which a layer norm after the
embeddings makes 0; additive methods keep the sum; wrappers take their wrapped method's."""

from __future__ import annotations

import pytest
import torch

from attrib.methods import catalogue
from attrib.text import explain_tokens
from attrib.text.aggregate import TOKEN_REDUCTIONS, default_token_reduction

TEXT = "w8 w9 unwell good"  # "unwell" is two pieces, "un" "##well"
EPS32 = torch.finfo(torch.float32).eps


def embedding_gradients(clf, text: str, target: int) -> torch.Tensor:
    """``d logit_target / d E`` at the input embeddings, ``(L, d)``, by autograd directly."""
    ids = clf.encode(text).input_ids
    embeds = clf.embed(ids).requires_grad_(True)
    logit = clf.model(inputs_embeds=embeds).logits[0, target]
    (grad,) = torch.autograd.grad(logit, embeds)
    return grad[0]


def test_saliency_word_scores_are_the_norms_of_the_embedding_gradients(tiny):
    grad = embedding_gradients(tiny, TEXT, 1)
    result = explain_tokens(tiny, TEXT, "saliency", target=1)
    scores = result.scores()
    assert result.reduction == "l2" and scores.params["reduce"] == "l2"
    norms = grad.pow(2).sum(-1).sqrt()
    torch.testing.assert_close(scores.of(0), norms, rtol=1e-5, atol=1e-7)
    # words: the pieces' norms summed, in the text's spelling
    enc = result.encoding
    by_word: dict[int, float] = {}
    for t, w in enumerate(enc.word_ids[0]):
        if w is not None:
            by_word[w] = by_word.get(w, 0.0) + float(norms[t])
    words = result.words()[0]
    assert [w for w, _ in words] == ["w8", "w9", "unwell", "good"]
    assert [s for _, s in words] == pytest.approx([by_word[w] for w in range(4)], rel=1e-5)
    assert all(s > 0 for _, s in words)
    # why the sum cannot be the default: the layer norm after the embeddings makes the
    # gradient orthogonal to (1, ..., 1), so its sum is float32 rounding (a few eps per
    # dimension) while its norm is not
    d = grad.shape[-1]
    assert torch.all(grad.sum(-1).abs() <= 8 * d * EPS32 * grad.abs().amax(-1))
    assert torch.all(result.scores("sum").of(0).abs() <= 8 * d * EPS32 * norms)


@pytest.mark.parametrize(
    ("method", "settings", "expected"),
    [
        ("saliency", {}, "l2"),
        ("gradient_x_input", {}, "sum"),
        ("integrated_gradients", {"steps": 4}, "sum"),
        ("leave_one_out", {}, "sum"),
        ("kernel_shap", {"samples": 8, "seed": 0}, "sum"),
        ("smoothgrad", {"samples": 2, "seed": 0}, "l2"),  # of saliency, the default inner
        ("smoothgrad", {"samples": 2, "seed": 0, "inner": "integrated_gradients"}, "sum"),
        ("vargrad", {"samples": 2, "seed": 0, "inner": "saliency"}, "l2"),
    ],
)
def test_each_method_gets_its_own_reduction(tiny, method, settings, expected):
    result = explain_tokens(tiny, TEXT, method, target=1, **settings)
    assert result.reduction == expected
    default = result.scores()
    assert default.params["reduce"] == expected and default.method.endswith(f"/ {expected}")
    assert torch.equal(default.scores, result.scores(expected).scores)
    assert result.words() == result.scores(expected).words()


def test_wrappers_take_their_wrapped_methods_reduction():
    assert default_token_reduction("Saliency") == "l2"
    assert default_token_reduction("SmoothGrad(Saliency)") == "l2"
    assert default_token_reduction("SmoothGradSquared(SmoothGrad(Saliency))") == "l2"
    assert default_token_reduction("SmoothGrad(IntegratedGradients)") == "sum"
    assert default_token_reduction("SmoothGrad") == "sum"  # the wrapped method unknown
    assert default_token_reduction("MyOwnMethod") == "sum"  # outside the catalogue


def test_the_catalogue_names_known_reductions():
    for info in catalogue.entries():
        if info.wrapper:
            assert info.token_reduction is None, info.name
        else:
            assert info.token_reduction in TOKEN_REDUCTIONS, info.name

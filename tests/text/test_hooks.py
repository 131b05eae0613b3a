"""Hook points for the perturbation engineer's methods: KernelSHAP over tokens, Anchors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from attrib.text import TokenKernelSHAP, explain_tokens
from attrib.text.shap import token_feature_mask


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_token_feature_mask():
    mask = token_feature_mask(3)
    assert mask.shape == (3, 1) and mask[:, 0].tolist() == [0, 1, 2]


@pytest.mark.skipif(
    not has("attrib.methods.perturbation"), reason="attrib.methods.perturbation not there yet"
)
def test_kernel_shap_over_tokens_is_efficient(tiny):
    """Shapley values over tokens sum to f(E) - f(E') (efficiency), and with every
    coalition enumerated (5 tokens: 32) they equal the exact Shapley values."""
    texts = ["w1 good w2", "bad w3"]
    result = explain_tokens(tiny, texts, "kernel_shap", samples=512, seed=0, target=1)
    occlusion = explain_tokens(tiny, texts, "leave_one_out", target=1)
    assert result.values.shape == occlusion.values.shape
    enc = result.encoding
    for i in range(len(texts)):
        n = int(enc.lengths[i])
        ids = enc.input_ids[i : i + 1, :n]
        base = ids.clone()
        base[0, ~enc.special[i, :n]] = tiny.tokenizer.pad_token_id
        with torch.no_grad():
            gap = tiny.model(input_ids=ids).logits[0, 1] - tiny.model(input_ids=base).logits[0, 1]
        assert abs(float(result.scores("sum").of(i).sum() - gap)) < 1e-3
    assert isinstance(TokenKernelSHAP(tiny.embedding_model), TokenKernelSHAP)
    from attrib.methods.perturbation import ExactShapley

    exact = explain_tokens(
        tiny,
        texts,
        lambda m, baseline: ExactShapley(
            m, baseline=baseline, feature_mask=lambda x: token_feature_mask(x.shape[1])
        ),
        target=1,
    )
    torch.testing.assert_close(result.values, exact.values, rtol=1e-4, atol=1e-6)

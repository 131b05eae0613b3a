"""Per-dimension scores to tokens and words."""

from __future__ import annotations

import pytest
import torch

from attrib.core.errors import SettingError
from attrib.text import merge_words, token_scores


def test_token_reductions():
    values = torch.tensor([[[3.0, -4.0, 0.0], [1.0, 1.0, -1.0]]])
    assert token_scores(values, "sum").tolist() == [[-1.0, 1.0]]
    assert token_scores(values, "abs_sum").tolist() == [[7.0, 3.0]]
    assert token_scores(values, "l2")[0, 0] == 5.0
    assert torch.allclose(token_scores(values, "l2")[0, 1], torch.tensor(3.0).sqrt())
    assert torch.allclose(token_scores(values, "mean"), torch.tensor([[-1 / 3, 1 / 3]]))
    assert token_scores(values, "max_abs").tolist() == [[4.0, 1.0]]
    with pytest.raises(SettingError, match="reduce"):
        token_scores(values, "median")


def test_merge_words():
    scores = torch.tensor([9.0, 1.0, 2.0, -5.0, 4.0, 9.0])
    words = [None, 0, 1, 1, 2, None]  # [CLS] w0 w1a w1b w2 [SEP]
    assert merge_words(scores, words, "sum").tolist() == [1.0, -3.0, 4.0]
    assert merge_words(scores, words, "mean").tolist() == [1.0, -1.5, 4.0]
    assert merge_words(scores, words, "max").tolist() == [1.0, -5.0, 4.0]  # keeps the sign
    assert merge_words(scores, [None] * 6).numel() == 0
    with pytest.raises(SettingError):
        merge_words(scores, words, "first")
    with pytest.raises(SettingError):
        merge_words(scores, words[:3])


def test_sum_keeps_completeness(tiny):
    """IG token scores under "sum" add up to the same total as the dimensions."""
    from attrib.text import explain_tokens

    result = explain_tokens(tiny, ["w1 unwell good"], "integrated_gradients", steps=16)
    per_token = result.scores("sum")
    torch.testing.assert_close(per_token.scores.sum(1), result.values.sum((1, 2)))
    words = result.words("sum", "sum")[0]
    assert [w for w, _ in words] == ["w1", "unwell", "good"]
    assert sum(v for _, v in words) == pytest.approx(float(result.values.sum()), abs=1e-5)

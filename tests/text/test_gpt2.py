"""A GPT-2-style classifier whose tokenizer has no pad token (GPT-2's has none): the default
baseline falls back to the unknown token, else to the zero embedding, and says which it used.

The model is built from a small ``GPT2Config`` and the tokenizer is a word-level
``tokenizers`` model wrapped in ``PreTrainedTokenizerFast``, both in code (no download)."""

from __future__ import annotations

import pytest
import torch

from attrib.core.errors import AttribError, SettingError
from attrib.text import TextClassifier, explain_tokens

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

EOS = "<|endoftext|>"
WORDS = ["[UNK]", EOS, "good", "bad", "film", "a", "the", "plot", "was", "dull"]
TEXTS = ["a good film", "the bad plot", "the plot was dull", "good"]


def tokenizer(unk: bool = True):
    """Words split at spaces; no pad token; ``[UNK]`` only where ``unk``."""
    vocab = {w: i for i, w in enumerate(WORDS)}
    model = tokenizers.models.WordLevel(vocab, unk_token="[UNK]" if unk else None)
    inner = tokenizers.Tokenizer(model)
    inner.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    extra = {"unk_token": "[UNK]"} if unk else {}
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=inner, eos_token=EOS, bos_token=EOS, **extra
    )


def gpt2(pad_token_id: int | None = 1):
    """GPT2ForSequenceClassification, 2 classes; ``pad_token_id`` as Hugging Face's docs
    advise for GPT-2 (the end-of-text id)."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(WORDS),
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=16,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=pad_token_id,
        num_labels=2,
    )
    return transformers.GPT2ForSequenceClassification(config).eval()


def logit(clf, ids: list[int], target: int) -> float:
    with torch.no_grad():
        return float(clf.model(input_ids=torch.tensor([ids])).logits[0, target].double())


def ids_of(clf, text: str) -> list[int]:
    return clf.tokenizer(text)["input_ids"]


@pytest.mark.parametrize("unk", [True, False])
def test_integrated_gradients_fall_back_to_unk_else_zero(unk):
    clf = TextClassifier(gpt2(), tokenizer(unk))
    assert clf.tokenizer.pad_token_id is None
    result = explain_tokens(clf, TEXTS, "integrated_gradients", steps=64)
    assert result.baseline == ("unk" if unk else "zero")
    # completeness against f(x) - f(x'), x' built independently: every token (GPT-2 adds no
    # special token) replaced by [UNK] through the model's own ids, or zero embeddings
    for i, text in enumerate(TEXTS):
        ids = ids_of(clf, text)
        t = int(result.target[i])
        if unk:
            f_base = logit(clf, [clf.tokenizer.unk_token_id] * len(ids), t)
        else:
            with torch.no_grad():
                zero = torch.zeros(1, len(ids), 16)
                f_base = float(clf.model(inputs_embeds=zero).logits[0, t].double())
        gap = logit(clf, ids, t) - f_base
        total = float(result.values[i].sum().double())
        # 64 Gauss-Legendre steps on a smooth 2-layer model: 1e-3 of the gap, as for BERT
        assert abs(total - gap) <= 1e-3 * max(1.0, abs(gap)), (text, total, gap)


def test_leave_one_out_erases_with_the_unknown_token():
    clf = TextClassifier(gpt2(), tokenizer())
    result = explain_tokens(clf, TEXTS, "leave_one_out")
    assert result.baseline == "unk"
    scores = result.scores()  # the sum returns R_t exactly (values hold R_t / d)
    for i, text in enumerate(TEXTS):
        ids = ids_of(clf, text)
        t = int(result.target[i])
        full = logit(clf, ids, t)
        for k in range(len(ids)):
            erased = [clf.tokenizer.unk_token_id if j == k else v for j, v in enumerate(ids)]
            expected = full - logit(clf, erased, t)
            assert float(scores.of(i)[k]) == pytest.approx(expected, abs=1e-5)


def test_an_explicit_pad_baseline_says_what_to_choose():
    clf = TextClassifier(gpt2(), tokenizer())
    with pytest.raises(SettingError, match="'auto'") as caught:
        explain_tokens(clf, TEXTS[:1], "integrated_gradients", baseline="pad")
    assert "pad_token_id is None" in str(caught.value)


def test_prediction_batches_pad_with_the_models_pad_id():
    # GPT-2 reads its last token, found as the last one that is not config.pad_token_id:
    # batches of several lengths must be padded with that id, not with 0 ([UNK] here)
    clf = TextClassifier(gpt2(), tokenizer())
    alone = torch.cat([clf.logits([text]) for text in TEXTS])
    torch.testing.assert_close(clf.logits(TEXTS), alone, rtol=1e-5, atol=1e-6)


def test_a_gpt2_without_pad_token_id_gets_an_error_that_says_the_fix():
    clf = TextClassifier(gpt2(pad_token_id=None), tokenizer())
    # one row per forward works (saliency of one text)
    assert explain_tokens(clf, "a good film", "saliency").values.shape == (1, 3, 16)
    with pytest.raises(AttribError, match="pad_token_id") as caught:
        explain_tokens(clf, "a good film", "integrated_gradients", steps=8)
    assert "eos_token_id" in str(caught.value)


def test_auto_is_the_pad_token_where_there_is_one(tiny):
    auto = explain_tokens(tiny, TEXTS[:2], "integrated_gradients", steps=8)
    pad = explain_tokens(tiny, TEXTS[:2], "integrated_gradients", steps=8, baseline="pad")
    assert auto.baseline == "pad" and torch.equal(auto.values, pad.values)

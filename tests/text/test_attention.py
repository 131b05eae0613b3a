"""Attention explanations: the weights themselves, the last layer, rollout, x gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib.text import (
    AttentionUnavailableError,
    TextClassifier,
    attention_rollout,
    attention_weights,
    attention_x_gradient,
    last_layer_attention,
    rollout,
)
from attrib.text.erasure import attention_modules, key_bias
from attrib.text.models import SentenceClassifier
from tests.text.conftest import tiny_encoder, tiny_tokenizer

TEXTS = ["w1 good w2", "bad w3 w4 w5 w6 w7", "w8 unwell"]


def test_weights_are_the_models_own(tiny):
    maps = attention_weights(tiny, TEXTS)
    for i, text in enumerate(TEXTS):
        ids = tiny.encode(text).input_ids
        with torch.no_grad():
            own = tiny.model(input_ids=ids, output_attentions=True).attentions
        assert maps[i].shape == (2, 2, ids.shape[1], ids.shape[1])  # layers, heads, L, L
        torch.testing.assert_close(maps[i], torch.stack(own, 1)[0])
        torch.testing.assert_close(maps[i].sum(-1), torch.ones(maps[i].shape[:-1]))


@pytest.mark.parametrize("query", ["mean", "cls", 2, None])
def test_last_layer_is_the_mean_over_heads(tiny, query):
    scores = last_layer_attention(tiny, TEXTS, query=query)
    for i, m in enumerate(attention_weights(tiny, TEXTS)):
        heads = m[-1].mean(0)
        q = query or tiny.pooling
        row = heads.mean(0) if q == "mean" else heads[0] if q == "cls" else heads[q]
        torch.testing.assert_close(scores.of(i), row)
    assert torch.all(scores.scores[~scores.encoding.mask] == 0)


def test_rollout_is_the_product_of_the_mixed_layers():
    torch.manual_seed(0)
    maps = torch.softmax(torch.randn(3, 4, 5, 5), -1)
    literal = torch.eye(5, dtype=torch.float64)
    for layer in range(3):
        mixed = 0.5 * maps[layer].double().mean(0) + 0.5 * torch.eye(5, dtype=torch.float64)
        literal = mixed @ literal
    torch.testing.assert_close(rollout(maps), literal)
    # one layer, no residual: the mean over heads itself
    torch.testing.assert_close(rollout(maps[:1], residual=0.0), maps[0].double().mean(0))
    torch.testing.assert_close(rollout(maps).sum(-1), torch.ones(5, dtype=torch.float64))


def test_rollout_of_the_model(tiny):
    scores = attention_rollout(tiny, TEXTS, query="cls")
    for i, m in enumerate(attention_weights(tiny, TEXTS)):
        torch.testing.assert_close(scores.of(i), rollout(m)[0].to(scores.scores.dtype))


def test_attention_x_gradient_by_finite_differences(tiny):
    """A bias b_k on the attention logits of key k (all heads and queries) moves F by
    dF/db_k = sum_{h,q} A_hqk G_hqk - sum_{h,q} A_hqk sum_j A_hqj G_hqj (softmax rule),
    with G = dF/dA: a check of the attention-gradient products against finite differences
    of the model itself."""
    from attrib.text.attention import attention_gradients

    text = TEXTS[1]
    ids = tiny.encode(text).input_ids
    layer = 1
    maps, grads, _, _ = attention_gradients(tiny, ids, layer, 1)
    a, g = maps[0].double(), grads[0].double()
    ag = a * g
    predicted = ag.sum((0, 1)) - (a * ag.sum(-1, keepdim=True)).sum((0, 1))
    _, module = attention_modules(tiny.model)[layer]
    eps = 1e-3
    length = ids.shape[1]
    for k in range(length):
        bias = torch.zeros(2, length)
        bias[0, k], bias[1, k] = eps, -eps
        with key_bias(module, bias), torch.no_grad():
            logits = tiny.model(input_ids=ids.repeat(2, 1)).logits.double()
        numeric = (logits[0, 1] - logits[1, 1]) / (2 * eps)
        assert abs(float(numeric - predicted[k])) < 1e-3 * max(1.0, float(predicted.abs().max()))
    scores = attention_x_gradient(tiny, text, target=1, layer=layer, query="mean")
    torch.testing.assert_close(scores.of(0), ag.mean(0).mean(0).float(), rtol=1e-5, atol=1e-8)


def test_sdpa_model_has_no_attention_to_give():
    encoder = tiny_encoder(attn="sdpa")
    clf = TextClassifier(SentenceClassifier(encoder, nn.Linear(32, 2)).eval(), tiny_tokenizer())
    with pytest.raises(AttentionUnavailableError, match="attn_implementation='eager'"):
        last_layer_attention(clf, TEXTS)


class NoAttention(nn.Module):
    """A bag of embeddings: a text classifier with no attention at all."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(40, 8)
        self.head = nn.Linear(8, 2)

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        embeds = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return self.head(embeds.mean(1))


def test_model_without_attention_outputs():
    clf = TextClassifier(NoAttention().eval(), tiny_tokenizer())
    for explain in (attention_weights, attention_rollout, attention_x_gradient):
        with pytest.raises(AttentionUnavailableError, match="output_attentions"):
            explain(clf, TEXTS)
    # the gradient methods still work on it
    from attrib.text import explain_tokens

    assert explain_tokens(clf, TEXTS, "saliency").values.shape[0] == 3


def test_padding_changes_nothing_for_attention(tiny):
    together = attention_rollout(tiny, TEXTS)
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(together.of(i), attention_rollout(tiny, text).of(0))


def test_real_model_attention(minilm):
    texts = ["An utterly charming film.", "Dull."]
    maps = attention_weights(minilm, texts)
    assert maps[0].shape[:2] == (6, 12)
    scores = last_layer_attention(minilm, texts)
    torch.testing.assert_close(scores.scores.sum(1), torch.ones(2))  # mean of rows: sums to 1


def test_hugging_face_sequence_classifier(tiny):
    """An AutoModelForSequenceClassification-style model works as is, read at [CLS]."""
    import transformers

    config = tiny.model.encoder.config
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    clf = TextClassifier(model, tiny_tokenizer())
    assert clf.pooling == "cls"
    scores = last_layer_attention(clf, TEXTS)
    maps = attention_weights(clf, TEXTS)
    torch.testing.assert_close(scores.of(0), maps[0][-1].mean(0)[0])
    from attrib.text import explain_tokens

    result = explain_tokens(clf, TEXTS, "integrated_gradients", steps=32)
    assert float(result.delta.abs().max()) < 1e-3

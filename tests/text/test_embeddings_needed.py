"""Models that offer no input embeddings get an ``AttribError`` saying what a model needs,
never a raw ``TypeError`` or ``NotImplementedError`` (small fake models of each kind)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib.core.errors import AttribError
from attrib.text import (
    AnchorsText,
    EmbeddingsUnavailableError,
    TextClassifier,
    attention_x_gradient,
    explain_tokens,
)
from tests.text.conftest import VOCAB, tiny_tokenizer


class Bag(nn.Module):
    """A bag of embeddings and a linear head, called with token ids (or embeddings)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = nn.Embedding(len(VOCAB), 4)
        self.head = nn.Linear(4, 2)

    def classify(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.head(embeds.mean(1))


class NoEmbeddings(Bag):
    """``get_input_embeddings()`` returns ``None`` (a model that does not expose them)."""

    def get_input_embeddings(self):
        return None

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        return self.classify(self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds)


class RaisingEmbeddings(NoEmbeddings):
    """``get_input_embeddings()`` raises, as ``PreTrainedModel``'s default does."""

    def get_input_embeddings(self):
        raise NotImplementedError("not implemented for this model")


class IdsOnly(Bag):
    """Input embeddings, but a forward that takes token ids only."""

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None):
        return self.classify(self.embeddings(input_ids))


class KeywordsPassedOn(IdsOnly):
    """A forward with ``**kwargs`` that hands them to one without ``inputs_embeds``."""

    def forward(self, input_ids=None, **kwargs):
        return super().forward(input_ids, **kwargs)


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (NoEmbeddings, "returned NoneType"),
        (RaisingEmbeddings, "raised NotImplementedError"),
        (IdsOnly, "has no inputs_embeds"),
        (KeywordsPassedOn, "inputs_embeds"),
    ],
)
def test_a_model_without_usable_embeddings_gets_an_attrib_error(model, said):
    clf = TextClassifier(model().eval(), tiny_tokenizer())
    for method in ("saliency", "integrated_gradients"):
        with pytest.raises(EmbeddingsUnavailableError, match=said) as caught:
            explain_tokens(clf, "w1 good w2", method)
        message = str(caught.value)
        assert isinstance(caught.value, AttribError)
        assert "get_input_embeddings()" in message and "inputs_embeds=" in message
    if model in (IdsOnly, KeywordsPassedOn):
        with pytest.raises(EmbeddingsUnavailableError, match=said):
            attention_x_gradient(clf, "w1 good w2")


@pytest.mark.parametrize("model", [NoEmbeddings, RaisingEmbeddings, IdsOnly])
def test_predictions_and_anchors_need_no_embeddings(model):
    clf = TextClassifier(model().eval(), tiny_tokenizer())
    assert clf.predict(["w1 good w2", "bad w3"]).shape == (2,)
    anchor = AnchorsText(clf.predict, seed=0, max_samples=200)("w1 good w2")
    assert anchor.prediction == int(clf.predict(["w1 good w2"])[0])

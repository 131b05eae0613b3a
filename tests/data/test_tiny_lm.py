"""The shipped tiny language model (``attrib.data.tiny_lm``): it loads offline, it predicts the
held-out text better than the training tokens' unigram frequencies do, and it writes text.

The perplexities are computed here from the data (the held-out tenth of every help topic of
``pydoc_data.topics``), not copied from the training record."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from attrib.data import tiny_lm  # noqa: E402


@pytest.fixture(scope="module")
def loaded():
    return tiny_lm.load()


def test_it_loads_offline_as_a_gpt2_lm(loaded, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = tiny_lm.load()  # again, with the hub switched off
    record = tiny_lm.training_record()
    assert isinstance(model, transformers.GPT2LMHeadModel) and not model.training
    assert model.config.n_layer == record["config"]["n_layer"]
    assert next(model.parameters()).dtype == torch.float32
    assert len(tokenizer) == model.config.vocab_size == record["config"]["vocab_size"]
    # tied embeddings: the head is the input embedding matrix
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert tiny_lm.WEIGHTS.stat().st_size < 6 * 2**20


def test_held_out_perplexity_is_below_the_unigram_baseline(loaded):
    model, tokenizer = loaded
    train, held = tiny_lm.corpus()
    train_ids = tokenizer(train)["input_ids"]
    held_ids = tokenizer(held)["input_ids"][:4096]  # 16 blocks: enough, and fast
    ours = tiny_lm.perplexity(model, held_ids)
    unigram = tiny_lm.unigram_perplexity(train_ids, held_ids, len(tokenizer))
    assert ours < unigram
    assert ours > 1.0


def test_perplexity_and_unigram_baseline_follow_their_formulas():
    # a uniform model over V words has perplexity V whatever the text; the unigram baseline
    # of a text of one word repeated is (N + V) / (N + 1) on that word
    class Uniform(torch.nn.Module):
        config = transformers.GPT2Config(n_positions=4)

        def forward(self, ids):
            return transformers.modeling_outputs.CausalLMOutput(logits=torch.zeros(*ids.shape, 7))

    assert tiny_lm.perplexity(Uniform(), [1, 2, 3, 4, 5, 6, 0, 1, 2]) == pytest.approx(7.0)
    assert tiny_lm.unigram_perplexity([3] * 10, [3, 3], vocab=5) == pytest.approx(15 / 11)


def test_it_writes_text(loaded):
    model, tokenizer = loaded
    ids = tokenizer("The return statement", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
    text = tokenizer.decode(out[0, ids.shape[1] :])
    assert out.shape[1] > ids.shape[1]
    assert any(c.isalpha() for c in text)

"""The wrapper at the embeddings, encoding checks, and the black-box predict function."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from attrib.core.errors import AttribError, AttribWarning, InputError, SettingError
from attrib.text import EmptyTextError, TextTooLongError
from attrib.text.models import EmbeddingModel
from tests.text.conftest import tiny_classifier


def logits_from_ids(clf, ids, mask=None):
    with torch.no_grad():
        return clf.model(input_ids=ids, attention_mask=mask).logits


def test_embeddings_path_equals_ids_path(tiny):
    enc = tiny.encode(["w1 w2 good w3", "bad w4 w5 w6"])
    ids = enc.input_ids
    embeds = tiny.embed(ids)
    with torch.no_grad():
        via_embeddings = tiny.embedding_model(embeds)
    # position and token-type embeddings are added by the model to inputs_embeds: the two
    # paths agree exactly, and the order of the tokens matters
    torch.testing.assert_close(via_embeddings, logits_from_ids(tiny, ids), rtol=0, atol=1e-6)
    with torch.no_grad():
        swapped = tiny.embedding_model(embeds[:, [0, 2, 1, 3, 4, 5]])
    assert not torch.allclose(swapped, via_embeddings, atol=1e-4)


def test_bound_mask_serves_its_rows_or_one_row_for_all(tiny):
    enc = tiny.encode(["w1 good", "w1 w2 w3 bad w4"])
    embeds = tiny.embed(enc.input_ids)
    wrapped = tiny.embedding_model.bind(enc.mask.long())
    with torch.no_grad():
        padded = wrapped(embeds)
        alone = tiny.embedding_model(embeds[:1, : int(enc.lengths[0])])
    torch.testing.assert_close(padded[:1], alone, rtol=1e-5, atol=1e-6)
    one_row = tiny.embedding_model.bind(torch.ones(1, embeds.shape[1], dtype=torch.long))
    with torch.no_grad():
        assert one_row(embeds.repeat(3, 1, 1)).shape == (6, 2)
    with pytest.raises(SettingError, match="cannot follow the rows"):
        wrapped(embeds.repeat(2, 1, 1))


def test_wrapper_reads_as_eval_when_the_model_is(tiny):
    assert isinstance(tiny.embedding_model, EmbeddingModel)
    assert not any(m.training for m in tiny.embedding_model.modules())


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_an_error(tiny, text):
    with pytest.raises(EmptyTextError, match=r"texts\[1\]: expected a text with at least one"):
        tiny.encode(["w1", text])
    assert issubclass(EmptyTextError, AttribError)


@pytest.mark.parametrize("texts", [[], None, 3, ["w1", 2], b"w1"])
def test_texts_must_be_strings(tiny, texts):
    with pytest.raises(InputError):
        tiny.encode(texts)


def test_too_long_is_an_error_unless_truncated(tiny):
    long_text = " ".join(["w1"] * (tiny.max_length + 5))
    with pytest.raises(TextTooLongError, match="truncate=True") as info:
        tiny.encode(["w2", long_text])
    assert f"at most {tiny.max_length} tokens" in str(info.value)
    with pytest.warns(AttribWarning, match="cut to the model's maximum"):
        enc = tiny.encode(["w2", long_text], truncate=True)
    assert enc.truncated == [False, True]
    assert int(enc.lengths[1]) == tiny.max_length
    assert enc.tokens[1][-1] == "[SEP]"  # the special tokens stay


def test_max_length_defaults_to_the_position_table(tiny):
    # the tokenizer declares no limit; the model has 24 positions
    assert tiny.max_length == 24


def test_words_and_special_tokens(tiny):
    enc = tiny.encode("w1 unwell, good")
    assert enc.tokens[0] == ["[CLS]", "w1", "un", "##well", "[UNK]", "good", "[SEP]"]
    assert enc.word_ids[0] == [None, 0, 1, 1, 2, 3, None]
    assert enc.special[0].tolist() == [True, False, False, False, False, False, True]


def test_predict_is_the_black_box_function(tiny):
    texts = ["w1 good", "bad w2 w3", "", "w4 w5 w6 w7 w8"]
    labels = tiny.predict(texts)
    assert isinstance(labels, np.ndarray) and labels.dtype.kind == "i"
    expected = [
        int(logits_from_ids(tiny, tiny.encode(t, allow_empty=True).input_ids).argmax())
        for t in texts
    ]
    assert labels.tolist() == expected
    probs = tiny.predict_proba(texts)
    torch.testing.assert_close(probs.sum(1), torch.ones(4, dtype=torch.float64))


def test_logits_do_not_depend_on_batching(tiny):
    texts = [" ".join(f"w{(i * 7 + k) % 24}" for k in range(1 + i % 9)) for i in range(20)]
    one_by_one = torch.cat([tiny.logits(t) for t in texts])
    tiny_small = type(tiny)(tiny.model, tiny.tokenizer, batch_size=3)
    torch.testing.assert_close(tiny_small.logits(texts), one_by_one, rtol=1e-5, atol=1e-6)


def test_constructor_checks_and_does_not_touch_the_model():
    clf = tiny_classifier()
    clf.model.train()
    from attrib.text import TextClassifier

    TextClassifier(clf.model, clf.tokenizer)
    assert clf.model.training
    with pytest.raises(SettingError):
        TextClassifier(torch.nn.Linear(2, 2), clf.tokenizer)
    with pytest.raises(SettingError):
        TextClassifier(clf.model, clf.tokenizer, pooling="max")
    # a model in training mode is explained in eval mode, with the library's warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.logits("w1 good")
    assert any(issubclass(w.category, AttribWarning) for w in caught)
    assert clf.model.training


def test_transformers_is_imported_lazily():
    import subprocess
    import sys

    code = (
        "import sys, attrib, attrib.text; "
        "assert 'transformers' not in sys.modules, 'imported at import time'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

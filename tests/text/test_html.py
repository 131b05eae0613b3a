"""HTML highlighting: self-contained, with a legend, escaped, in notebooks."""

from __future__ import annotations

import re

import torch

from attrib.text import TokenScores, explain_tokens, highlight


def test_html_is_self_contained_with_a_legend(tiny):
    result = explain_tokens(tiny, ["w1 unwell <b>good</b> & w2", "bad w3"], "saliency")
    page = result.html(reduce="l2", words=False)
    assert page == result.scores("l2").html(words=False)
    assert "<script" not in page and "<link" not in page and "http" not in page
    assert "linear-gradient" in page  # the colour legend
    assert "&lt;" in page and "&gt;" in page and "<b>" not in page  # text is escaped
    assert "&amp;" in page
    assert result._repr_html_() == result.html()
    assert result.scores()._repr_html_() == result.scores().html()
    # one span per ordinary token, with its score in the tooltip
    spans = re.findall(r'<span title="([^"]*)"', page)
    assert len(spans) == int((result.encoding.mask & ~result.encoding.special).sum())
    assert spans[1].startswith("un:")


def test_words_merge_pieces_and_keep_the_original_text(tiny):
    result = explain_tokens(tiny, ["W1  unwell, good"], "saliency")
    page = highlight(result.scores("l2"), words=True)
    assert ">unwell<" in page and ">W1<" in page
    assert "W1  " in re.sub(r"<[^>]+>", "", page)  # spacing and case from the text itself


def test_colours_follow_sign_and_scale():
    from attrib.text.encoding import Encoding

    enc = Encoding(
        texts=["a b"],
        input_ids=torch.tensor([[1, 2, 3, 4]]),
        mask=torch.ones(1, 4, dtype=torch.bool),
        special=torch.tensor([[True, False, False, True]]),
        tokens=[["[CLS]", "a", "b", "[SEP]"]],
        word_ids=[[None, 0, 1, None]],
        offsets=[[(0, 0), (0, 1), (2, 3), (0, 0)]],
        truncated=[False],
        pad_id=0,
    )
    page = highlight(TokenScores(enc, torch.tensor([[0.0, 2.0, -1.0, 0.0]])))
    assert "rgba(214,39,40,1.000)" in page  # the largest positive: full red
    assert "rgba(31,119,180,0.500)" in page  # half as large, negative: half blue
    with_special = highlight(TokenScores(enc, torch.tensor([[0.0, 2.0, -1.0, 0.0]])), special=True)
    assert "[CLS]" in with_special and "[SEP]" in with_special

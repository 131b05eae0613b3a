"""One word merge for every output: the words of the figure and of the HTML are those that
``TokenScores.words`` gives (and the command line prints), sub-word pieces merged."""

from __future__ import annotations

import html
import re

import pytest

from attrib.text import explain_tokens, highlight

pytest.importorskip("matplotlib")

TEXTS = ["w8 w9 unwell good", "un w1"]  # "unwell" is two pieces, "un" "##well"


def figure_words(figure) -> list[str]:
    """The texts of the coloured boxes (the title has no box)."""
    (ax,) = figure.axes
    return [t.get_text() for t in ax.texts if t.get_bbox_patch() is not None]


def html_words(page: str) -> list[str]:
    """The texts of the highlighted spans (the ones with a score in their tooltip)."""
    found = re.findall(r'<span title="[^"]*" style="[^"]*">([^<]*)</span>', page)
    return [html.unescape(w) for w in found]


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_figure_and_html_show_the_words_of_the_text_output(tiny, method):
    from attrib import viz

    result = explain_tokens(tiny, TEXTS, method)
    scores = result.scores()
    assert result.encoding.tokens[0][3:5] == ["un", "##well"]
    terminal = [[w for w, _ in words] for words in scores.words()]
    assert terminal == [["w8", "w9", "unwell", "good"], ["un", "w1"]]
    for i, words in enumerate(terminal):
        assert figure_words(viz.token_figure(scores, index=i)) == words
        assert figure_words(viz.token_figure(result, index=i)) == words
    assert html_words(highlight(scores)) == [w for words in terminal for w in words]
    assert html_words(scores.html()) == html_words(viz.token_html(result))
    assert html_words(result.html()) == [w for words in terminal for w in words]
    # tokens on request
    assert figure_words(viz.token_figure(scores, index=0, words=False)) == [
        "w8",
        "w9",
        "un",
        "##well",
        "good",
    ]


def test_the_figure_colours_words_by_their_merged_scores(tiny):
    from attrib import viz

    scores = explain_tokens(tiny, TEXTS[:1], "gradient_x_input", target=1).scores()
    words = scores.words_of(0)
    figure = viz.token_figure(scores, index=0)
    (ax,) = figure.axes
    boxes = [t for t in ax.texts if t.get_bbox_patch() is not None]
    # the strongest word gets the full colour of its sign (colours scale by max |score|)
    strongest = max(range(len(words)), key=lambda k: abs(words[k][1]))
    faces = [b.get_bbox_patch().get_facecolor() for b in boxes]
    expected = viz.colors.colorize(
        [words[strongest][1] / abs(words[strongest][1])], viz.colors.DIVERGING, signed=True
    )[0]
    assert tuple(faces[strongest][:3]) == pytest.approx(tuple(expected[:3]), abs=1e-6)

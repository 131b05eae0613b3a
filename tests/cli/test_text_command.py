"""``attrib explain-text`` in-process on the real MiniLM classifier: the terminal, the page
and the figures show the same words, scored by the method's own token reduction."""

from __future__ import annotations

import html
import re

import pytest

from attrib.cli.main import build_parser
from attrib.core.errors import SettingError

pytest.importorskip("matplotlib")

TEXTS = ["Not bad at all.", "The film drags on forever."]


def run_text(monkeypatch, capsys, model, argv: list[str]):
    """Run the command with ``model`` as its classifier; the printed lines and the figures."""
    import attrib.cli.text
    import attrib.viz

    monkeypatch.setattr(attrib.cli.text, "load_text_model", lambda *a, **k: model)
    figures = []
    monkeypatch.setattr(attrib.viz, "save_png", lambda fig, path: figures.append(fig))
    args = build_parser().parse_args(["explain-text", *argv])
    assert attrib.cli.text.run(args) == 0
    return capsys.readouterr().out.splitlines(), figures


def printed_words(line: str) -> list[tuple[str, float]]:
    return [(w, float(s)) for w, s in re.findall(r"(\S+?)\(([+-]\d+\.\d\d)\)", line)]


def figure_words(figure) -> list[str]:
    (ax,) = figure.axes
    return [t.get_text() for t in ax.texts if t.get_bbox_patch() is not None]


def page_words(page: str) -> list[str]:
    found = re.findall(r'<span title="[^"]*" style="[^"]*">([^<]*)</span>', page)
    return [html.unescape(w) for w in found]


def test_saliency_words_are_gradient_norms_everywhere_the_same(
    minilm, monkeypatch, capsys, tmp_path
):
    from attrib.text import explain_tokens

    lines, figures = run_text(
        monkeypatch, capsys, minilm, [*TEXTS, "--method", "saliency", "--out", str(tmp_path)]
    )
    expected = explain_tokens(minilm, TEXTS, "saliency").scores("l2")
    assert "drag" in expected.encoding.tokens[1] and "##s" in expected.encoding.tokens[1]
    shown = [printed_words(line) for line in lines[: len(TEXTS)]]
    for words, wanted in zip(shown, expected.words(), strict=True):
        assert [w for w, _ in words] == [w for w, _ in wanted]
        assert [s for _, s in words] == pytest.approx([s for _, s in wanted], abs=0.005)
        assert all(s > 0.005 for _, s in words)  # not "+0.00" for every word
    assert "drags" in [w for w, _ in shown[1]]
    assert [figure_words(f) for f in figures] == [[w for w, _ in words] for words in shown]
    page = (tmp_path / "text.html").read_text(encoding="utf-8")
    assert page_words(page) == [w for words in shown for w, _ in words]
    assert "L2 norm" in lines[len(TEXTS)]


def test_reduce_chooses_the_token_reduction(minilm, monkeypatch, capsys, tmp_path):
    from attrib.text import explain_tokens

    argv = [TEXTS[0], "--method", "saliency", "--reduce", "max_abs", "--out", str(tmp_path)]
    lines, _ = run_text(monkeypatch, capsys, minilm, argv)
    wanted = explain_tokens(minilm, TEXTS[0], "saliency").scores("max_abs").words()[0]
    assert [s for _, s in printed_words(lines[0])] == pytest.approx(
        [s for _, s in wanted], abs=0.005
    )
    with pytest.raises(SettingError, match="--reduce"):
        run_text(monkeypatch, capsys, minilm, [TEXTS[0], "--reduce", "norm"])

"""The demo's pieces (``attrib.cli.demo``; the whole demo runs in test_workflows.py).

Its choices (``settings``) name methods of the catalogue and settings those methods take: a
method renamed or a setting dropped breaks this test, not the demo a user runs."""

from __future__ import annotations

import pytest

from attrib.cli.demo import settings as demo
from attrib.methods import catalogue

NAMED = {
    "settings()": list(demo.settings()),
    "CURVE_METHODS": list(demo.CURVE_METHODS or ()),
    "SANITY_METHODS": list(demo.SANITY_METHODS),
    "TEXT_METHODS": [name for name, _ in demo.TEXT_METHODS],
}


@pytest.mark.parametrize("where", list(NAMED))
def test_every_name_is_a_method_of_the_catalogue(where):
    unknown = [name for name in NAMED[where] if catalogue.get(name) is None]
    assert not unknown, f"{where}: not in the catalogue: {unknown}"


def test_every_setting_is_one_the_method_takes_with_a_value_it_accepts():
    given = {**demo.settings(), **dict(demo.TEXT_METHODS)}
    for name, settings in given.items():
        info = catalogue.get(name)
        assert info is not None, name
        for key, value in settings.items():
            assert info.takes(key), f"{name} takes no setting {key!r}"
            info.setting(key).bind(value)  # raises SettingError for a value it refuses


def test_the_image_settings_are_keyed_by_class_name():
    """``run_demo`` looks settings up by the catalogue's class names: another spelling
    (an alias, snake case) would be found by ``catalogue.get`` but never used."""
    for name in demo.settings():
        assert catalogue.get(name).name == name
    for name in (*NAMED["CURVE_METHODS"], *NAMED["SANITY_METHODS"]):
        assert catalogue.get(name).name == name


def test_text_sections_on_the_real_model(minilm, monkeypatch):
    """The report's text part: one section per method (highlighted words, a token figure),
    then the attention heat map; the model comes from ``attrib.text.load_text_model``."""
    pytest.importorskip("matplotlib")
    import attrib.text
    from attrib.cli.demo.text import text_sections

    asked = []
    monkeypatch.setattr(attrib.text, "load_text_model", lambda name: asked.append(name) or minilm)
    steps = []
    sections = text_sections(
        demo.TEXTS[:2], [("gradient_x_input", {})], on_step=lambda label, _: steps.append(label)
    )
    assert asked == ["minilm-sentiment"]
    assert [s.title for s in sections] == ["gradient_x_input (defaults)", "Attention"]
    assert "<span" in sections[0].html
    assert all(len(s.pictures) == 1 and s.pictures[0].png[:4] == b"\x89PNG" for s in sections)
    assert steps == ["text model loaded", "text gradient_x_input", "text attention"]


def test_text_sections_show_the_words_of_the_text_output(minilm, monkeypatch):
    """The report's page and figure show the merged words (``drags``, not ``drag ##s``),
    scored by the method's own reduction (saliency: the L2 norm, not a sum that is 0)."""
    pytest.importorskip("matplotlib")
    import html
    import re

    import attrib.text
    import attrib.viz
    from attrib.cli.demo.text import text_sections

    monkeypatch.setattr(attrib.text, "load_text_model", lambda name: minilm)
    figures = []
    real_png = attrib.viz.png_bytes
    monkeypatch.setattr(attrib.viz, "png_bytes", lambda fig: figures.append(fig) or real_png(fig))
    text = demo.TEXTS[2]
    expected = attrib.text.explain_tokens(minilm, text, "saliency").scores("l2").words_of(0)
    words = [w for w, _ in expected]
    assert "drags" in words and "##s" in minilm.encode(text).tokens[0]
    (section, _) = text_sections([text], [("saliency", {})])
    spans = re.findall(r'<span title="([^"]*)" style="[^"]*">([^<]*)</span>', section.html)
    assert [html.unescape(w) for _, w in spans] == words
    scores = [float(html.unescape(tip).rsplit(": ", 1)[1]) for tip, _ in spans]
    assert scores == pytest.approx([s for _, s in expected], rel=1e-3)
    assert "L2 norm" in section.html
    (ax,) = figures[0].axes
    assert [t.get_text() for t in ax.texts if t.get_bbox_patch() is not None] == words


def test_the_generation_section_explains_the_tiny_lm():
    pytest.importorskip("transformers")
    from attrib.cli.demo.text import generation_section

    section = generation_section("The for statement", 3)
    assert section.title.startswith("Generation")
    assert section.pictures and section.pictures[0].png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "statement" in section.html and section.html.count("border:1px solid") == 3

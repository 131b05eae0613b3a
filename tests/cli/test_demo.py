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

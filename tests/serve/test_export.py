"""``attrib explore RUN --out site/``: the files of a static site, and runs too large for one.
(The site opening from ``file://`` in a browser is ``test_browser.py``'s.)"""

from __future__ import annotations

import json

from attrib.cli.main import main
from tests.serve.synthetic import SCRIPT_CLASS


def _data(site) -> dict:
    text = (site / "data.js").read_text()
    start = text.index("window.ATTRIB_DATA = ") + len("window.ATTRIB_DATA = ")
    return json.loads(text[start:].rstrip().rstrip(";"))


def test_explore_writes_the_page_its_data_and_every_picture(image_run, tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["explore", str(image_run), "--out", str(site)]) == 0
    assert "index.html" in capsys.readouterr().out
    for name in ("index.html", "app.js", "charts.js", "style.css", "favicon.png", "data.js"):
        assert (site / name).is_file()
    data = _data(site)
    rows = data["rows"]["run"]
    assert len(rows) == 24 and SCRIPT_CLASS in data["info"]["runs"][0]["classes"]
    files = data["files"]["run"]
    for row in rows:
        entry = files[row["id"]]
        assert (site / entry["thumb"]).is_file() and (site / entry["input"]).is_file()
        expected = 2 if row["status"] == "ok" else 0
        assert len(entry["maps"]) == expected
        for modes in entry["maps"].values():
            assert all((site / path).is_file() for path in modes.values())


def test_explore_refuses_a_run_too_large_for_a_static_site(image_run, tmp_path, capsys):
    assert (
        main(["explore", str(image_run), "--out", str(tmp_path / "s"), "--max-samples", "5"]) == 1
    )
    error = capsys.readouterr().err
    assert "at most 5 samples" in error and "attrib serve" in error
    assert not (tmp_path / "s").exists()

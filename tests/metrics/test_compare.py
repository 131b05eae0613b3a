"""compare(): the table holds the mean and standard error of the metric functions' numbers."""

from __future__ import annotations

import math

import pytest
import torch

from attrib import GradientXInput, Saliency
from attrib.core.errors import SettingError
from attrib.metrics import compare, deletion, relevance_rank_accuracy
from tests.metrics.helpers import linear


def _setup():
    torch.manual_seed(0)
    model = linear(torch.randn(3, 16, dtype=torch.float64))
    x = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    masks = torch.zeros(5, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    return model, x, masks


def test_table_holds_means_and_standard_errors_of_the_metrics():
    model, x, masks = _setup()
    methods = {"saliency": Saliency(model), "gxi": GradientXInput(model)}
    table = compare(model, x, methods, ["deletion", "relevance_rank"], target=1, masks=masks)
    assert table.methods == ("saliency", "gxi")
    assert table.metrics == ("deletion", "relevance_rank")
    assert table.directions == ("lower", "higher")
    for i, (name, method) in enumerate(methods.items()):
        maps = method(x, target=1).saliency()
        area = deletion(model, x, maps, 1).area()
        rank = relevance_rank_accuracy(maps, masks)
        for j, values in enumerate([area, rank]):
            assert float(table.mean[i, j]) == pytest.approx(float(values.mean()))
            sem = float(values.std() / math.sqrt(5))
            assert float(table.sem[i, j]) == pytest.approx(sem)
            assert torch.allclose(table.scores[(name, table.metrics[j])], values)
    assert "± " in table.to_markdown() and "deletion ↓" in str(table)
    best = table.best("relevance_rank")
    assert table.value(best, "relevance_rank")[0] == float(table.mean[:, 1].max())


def test_custom_metrics_and_batching():
    model, x, _ = _setup()

    def total(evaluation):  # sum of the attribution per sample
        return evaluation.attribution.values.flatten(1).sum(1)

    whole = compare(model, x, [Saliency(model)], [("total", total, "higher")], target=0)
    chunked = compare(
        model, x, [Saliency(model)], [("total", total, "higher")], target=0, batch_size=2
    )
    assert torch.allclose(whole.mean, chunked.mean)
    expected = model.linear.weight[0].detach().sum()
    assert float(whole.mean[0, 0]) == pytest.approx(float(expected))


def test_bad_metrics_are_setting_errors():
    model, x, _ = _setup()
    with pytest.raises(SettingError, match="metrics"):
        compare(model, x, [Saliency(model)], ["accuracy_of_vibes"], target=0)
    with pytest.raises(SettingError, match="masks"):
        compare(model, x, [Saliency(model)], ["pointing_game"], target=0)

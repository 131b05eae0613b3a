"""Figures of metric results and of the attention erasure tests, drawn from real results."""

from __future__ import annotations

import numpy as np
import pytest

from attrib import GradientXInput, Saliency, viz
from attrib.metrics import compare, deletion, model_randomization
from tests.metrics.helpers import linear, mnist_digits, mnist_model

pytest.importorskip("matplotlib")


def test_randomization_figures_draw():
    model = mnist_model()
    x, _ = mnist_digits(4)
    result = model_randomization(Saliency(model), x, "predicted", keep_maps=1)
    figure = viz.randomization_figure({"Saliency": result})
    assert len(figure.axes) == 4
    grid = viz.sanity_figure([result])
    assert len(grid.axes) == 5


def test_table_and_curves_draw():
    import torch

    torch.manual_seed(0)
    model = linear(torch.randn(3, 16, dtype=torch.float64))
    x = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    table = compare(model, x, [Saliency(model), GradientXInput(model)], ["deletion"], target=1)
    assert len(viz.comparison_figure(table).axes) == 1
    maps = Saliency(model)(x, target=1).saliency()
    figure = viz.curves_figure({"saliency": deletion(model, x, maps, 1, steps=4)})
    assert len(figure.axes) == 1


def test_curves_drawn_into_given_axes():
    import torch

    from attrib.metrics import Curve
    from attrib.viz._deps import figure

    curve = Curve(
        fractions=torch.linspace(0, 1, 3),
        scores=torch.tensor([[1.0, 0.5, 0.0]]),
        clean=torch.tensor([1.0]),
        kind="deletion",
        order="morf",
    )
    fig = figure(8, 3)
    left, right = fig.subplots(1, 2)
    assert viz.curves_figure(curve, ax=right, title="right") is fig
    assert right.get_title() == "right" and not left.lines and len(right.lines) == 1


def test_erasure_figures_draw():
    from attrib.text.erasure import SetErasure, SingleWeightErasure

    single = SingleWeightErasure(
        alpha_top=np.array([0.5, 0.6, 0.7]),
        alpha_random=np.array([0.1, 0.2, 0.1]),
        js_top=np.array([0.3, 0.0, 0.1]),
        js_random=np.array([0.1, 0.1, 0.0]),
        flip_top=np.array([True, False, True]),
        flip_random=np.array([True, False, False]),
    )
    fig = viz.single_weight_figure(single)
    ax = fig.axes[0]
    assert ax.get_title() == "Single attention weight erasure (3 texts)"
    same, flipped = ax.collections  # one removal flips text 2 only
    assert len(same.get_offsets()) == 2 and len(flipped.get_offsets()) == 1
    sets = SetErasure({"attention": np.array([1, 0]), "random": np.array([2, 2])}, np.array([4, 4]))
    fig = viz.set_fractions_figure(sets)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["attention\n(flips: 50%)", "random\n(flips: 100%)"]

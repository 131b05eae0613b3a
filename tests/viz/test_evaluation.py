"""Figures of metric results and of the attention erasure tests, drawn from real results."""

from __future__ import annotations

import itertools

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


def _result(method: str, steps: tuple[str, ...], constant_from: int | None = None):
    import torch

    from attrib.metrics import RandomizationResult

    torch.manual_seed(0)
    n = len(steps)
    maps = torch.randn(n, 1, 12, 12)
    constant = torch.zeros(n, 2, dtype=torch.bool)
    similarity = {"spearman_abs": torch.rand(n, 2) * 2 - 1, "ssim": torch.rand(n, 2)}
    if constant_from is not None:
        maps[constant_from:] = 0
        constant[constant_from:] = True
        similarity["spearman_abs"][constant_from:] = 0
    return RandomizationResult(method, "cascading", steps, similarity, maps, constant)


LONG_STEPS = (
    "original",
    "…classifier",
    "…features.denseblock4.denselayer16.conv2",
    "…features.denseblock3.denselayer24.conv1",
    "…features.transition1.conv",
    "…features.conv0",
)


def _extents(fig, artists):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    return [a.get_window_extent(renderer) for a in artists if a.get_text()]


def test_long_layer_names_are_neither_cut_nor_squash_the_plots():
    """Rotated labels of DenseNet-sized names overlapped each other in the maps figure and
    squashed the similarity plots to a strip."""
    results = {"Saliency": _result("Saliency", LONG_STEPS)}
    maps = viz.sanity_figure(results)
    titles = _extents(maps, [ax.title for ax in maps.axes])
    assert len(titles) == len(LONG_STEPS)
    for left, right in itertools.pairwise(titles):
        assert left.x1 <= right.x0, "column titles overlap"
    width, height = maps.bbox.width, maps.bbox.height
    assert all(0 <= t.x0 and t.x1 <= width and 0 <= t.y0 and t.y1 <= height for t in titles)

    curves = viz.randomization_figure(results)
    labels = _extents(curves, [t for ax in curves.axes for t in ax.get_xticklabels()])
    width, height = curves.bbox.width, curves.bbox.height
    assert all(0 <= t.x0 and t.x1 <= width and 0 <= t.y0 for t in labels), "labels cut"
    for ax in curves.axes:  # the plots keep two inches of height whatever the labels
        assert ax.get_position().height * curves.get_figheight() >= 2.0


def test_constant_maps_are_drawn_and_labelled():
    results = {"GradCAM": _result("GradCAM", LONG_STEPS, constant_from=2)}
    maps = viz.sanity_figure(results)
    marked = [ax for ax in maps.axes if any(t.get_text() == "constant map" for t in ax.texts)]
    assert len(marked) == len(LONG_STEPS) - 2
    curves = viz.randomization_figure(results)
    ax = curves.axes[0]
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [2, 3, 4, 5]
    legend = [t.get_text() for t in curves.axes[-1].get_legend().get_texts()]
    assert legend == ["GradCAM", "constant map (no rank order: 0)"]


def test_many_curves_are_drawn_one_panel_per_group_each_with_the_random_map():
    import torch

    from attrib.metrics import Curve

    def curve(end: float) -> Curve:
        scores = torch.tensor([[1.0, 0.5, end]])
        return Curve(torch.linspace(0, 1, 3), scores, torch.tensor([1.0]), "deletion", "morf")

    curves = {f"M{k}": curve(k / 10) for k in range(5)}
    curves["random map"] = curve(0.9)
    fig = viz.curves_figure(curves, groups=[("first", ["M0", "M1", "M2"]), ("rest", ["M3", "M4"])])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["first", "rest"]
    for ax, members in zip(visible, (["M0", "M1", "M2"], ["M3", "M4"]), strict=True):
        labels = [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()]
        assert labels == [*members, "random map"]
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [1.0, 0.5, 0.9]

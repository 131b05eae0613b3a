"""Overlays, figures, text and evaluation figures, and PNG export."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch

from attrib import Attribution, viz
from attrib.core.errors import SettingError

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


def _image(h: int = 16, w: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (h, w, 3))


def _result(n: int = 2, h: int = 16, w: int = 20) -> Attribution:
    torch.manual_seed(0)
    values = torch.randn(n, 3, h, w)
    logits = torch.tensor([[0.1, 2.0, -1.0]] * n)
    return Attribution(
        values=values, target=torch.tensor([1] * n), method="GradientXInput", output=logits
    )


def test_to_image_accepts_tensors_arrays_and_pillow_images():
    picture = _image()
    tensor = torch.from_numpy(picture).permute(2, 0, 1)
    np.testing.assert_allclose(viz.to_image(tensor), picture)
    np.testing.assert_allclose(viz.to_image(tensor[None]), picture)
    as_uint8 = (picture * 255).round().astype(np.uint8)
    np.testing.assert_allclose(viz.to_image(as_uint8), as_uint8 / 255.0)
    np.testing.assert_allclose(viz.to_image(Image.fromarray(as_uint8)), as_uint8 / 255.0)
    assert viz.to_image(picture[..., 0]).shape == (16, 20, 3)  # grey
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    normalised = (tensor - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    np.testing.assert_allclose(viz.to_image(normalised, mean=mean, std=std), picture, atol=1e-6)


def test_overlay_shows_the_image_where_the_map_is_zero():
    picture = _image()
    saliency = np.zeros((16, 20))
    saliency[4:8, 4:8] = 1.0
    out = viz.overlay(picture, saliency, background="color")
    assert out.shape == picture.shape and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[0, 0], picture[0, 0])  # untouched
    assert not np.allclose(out[5, 5], picture[5, 5])  # coloured
    uniform = viz.overlay(picture, saliency, weighted=False, alpha=0.5)
    assert not np.allclose(uniform[0, 0], picture[0, 0])
    grey = viz.overlay(picture, np.zeros((16, 20)))
    assert np.allclose(grey[..., 0], grey[..., 1])  # grey background, no colour
    small = viz.overlay(picture, np.ones((4, 5)))  # a layer map is upsampled
    assert small.shape == picture.shape
    with pytest.raises(SettingError, match="alpha"):
        viz.overlay(picture, saliency, alpha=2)


def test_signed_maps_use_a_diverging_map_centred_at_zero():
    assert viz.colormap_for(True) == viz.DIVERGING
    assert viz.colormap_for(False) == viz.SEQUENTIAL
    colours = viz.colorize(np.array([[-1.0, 0.0, 1.0]]), signed=True)
    red, white, blue = colours[0, 2], colours[0, 1], colours[0, 0]
    assert white.min() > 0.9  # 0 is white
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    dark, bright = viz.colorize(np.array([0.0, 1.0]))
    assert dark.sum() < bright.sum()  # sequential: lightness grows with the value


def test_show_and_grid_title_method_class_and_score():
    result = _result()
    fig = viz.show(result, _image(), index=1, class_names=["a", "bee", "c"])
    title = fig._suptitle.get_text()
    p = torch.tensor([0.1, 2.0, -1.0]).softmax(0)[1]
    assert title == f"GradientXInput: bee (p={float(p):.2f})"
    assert len(fig.axes) == 4  # image, map, colour bar, overlay
    images = torch.from_numpy(np.stack([_image(), _image()])).permute(0, 3, 1, 2)
    cam = Attribution(
        values=torch.rand(2, 4, 5), target=result.target, method="GradCAM", channel_dim=None
    )
    fig = viz.grid(images, {"GxI": result, "Grad-CAM": cam}, class_names=["a", "bee", "c"])
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 2 * 3
    assert f"Grad-CAM\nbee (p={float(p):.2f})" not in titles  # no output: no score
    assert "Grad-CAM\nbee" in titles and f"GxI\nbee (p={float(p):.2f})" in titles
    assert viz.map_title(Attribution(values=torch.ones(1, 2, 2), method="X")) == "X"


def test_png_export_in_one_call(tmp_path):
    fig = viz.show(_result(), _image())
    path = viz.save_png(fig, tmp_path / "sub" / "map.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    data = viz.png_bytes(viz.overlay(_image(), np.ones((16, 20))))
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (20, 16)
    assert viz.data_uri(data).startswith("data:image/png;base64,")
    with pytest.raises(SettingError):
        viz.png_bytes(np.zeros((2, 2, 7)))


def test_figures_are_not_tracked_by_pyplot():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    viz.show(_result(), _image())
    assert len(plt.get_fignums()) == before


def _every_figure() -> dict:
    """One call of each figure function of ``attrib.viz``, on small made-up results."""
    from attrib.metrics import ComparisonTable, Curve, RandomizationResult
    from attrib.text.erasure import SetErasure, SingleWeightErasure
    from attrib.text.generation_result import GenerationAttribution

    curve = Curve(
        fractions=torch.linspace(0, 1, 3),
        scores=torch.tensor([[1.0, 0.5, 0.0], [0.8, 0.4, 0.1]]),
        clean=torch.tensor([1.0, 0.8]),
        kind="deletion",
        order="morf",
    )
    randomized = RandomizationResult(
        method="Saliency",
        mode="cascading",
        steps=("original", "fc"),
        similarity={"spearman_abs": torch.tensor([[1.0, 1.0], [0.5, 0.4]])},
        maps=torch.randn(2, 1, 4, 4),
    )
    table = ComparisonTable(
        methods=("a", "b"),
        metrics=("deletion",),
        directions=("lower",),
        mean=torch.tensor([[0.2], [0.3]]),
        sem=torch.tensor([[0.01], [float("nan")]]),
        scores={},
    )
    flips = np.array([True, False])
    single = SingleWeightErasure(*([np.array([0.5, 0.1])] * 4), flips, ~flips)
    sets = SetErasure({"attention": np.array([1, 0])}, np.array([4, 4]))
    generated = GenerationAttribution(
        tokens=["a", "b", "c"],
        token_ids=torch.tensor([0, 1, 2]),
        prompt_length=1,
        matrix=torch.tensor([[0.5, float("nan"), float("nan")], [-0.2, 0.1, float("nan")]]),
        method="gradient_x_input",
    )
    return {
        "show": lambda: viz.show(_result(), _image()),
        "grid": lambda: viz.grid([_image()], {"GxI": _result(1)}),
        "token_figure": lambda: viz.token_figure([0.5, -1.0], tokens=["good", "bad"]),
        "attention_figure": lambda: viz.attention_figure(torch.eye(2), ["a", "b"]),
        "generation_figure": lambda: viz.generation_figure(generated),
        "curves_figure": lambda: viz.curves_figure(curve, title="deletion"),
        "sanity_figure": lambda: viz.sanity_figure(randomized),
        "randomization_figure": lambda: viz.randomization_figure(randomized),
        "comparison_figure": lambda: viz.comparison_figure(table),
        "single_weight_figure": lambda: viz.single_weight_figure(single),
        "set_fractions_figure": lambda: viz.set_fractions_figure(sets),
    }


def test_no_figure_goes_through_pyplot():
    """Every figure of ``attrib.viz`` is a plain ``Figure``: pyplot holds none of them (so
    none is shown by ``plt.show()`` or kept alive after its last reference)."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    drawers = _every_figure()
    public = {name for name in viz.__all__ if name.endswith("_figure")} | {"show", "grid"}
    assert public <= set(drawers), f"draw these here too: {sorted(public - set(drawers))}"
    plt.close("all")
    for name, draw in drawers.items():
        fig = draw()
        assert isinstance(fig, Figure), name
        assert plt.get_fignums() == [], f"{name} made a pyplot figure"


def test_token_figure_and_attention_heat_map():
    fig = viz.token_figure([0.5, -1.0, 0.0], tokens=["good", "bad", "film"], title="t")
    words = [t.get_text() for t in fig.axes[0].texts]
    assert words[:3] == ["good", "bad", "film"] and "t" in words
    weights = torch.softmax(torch.randn(2, 4, 3, 3), -1)
    fig = viz.attention_figure(weights[None].expand(6, 2, 4, 3, 3)[:, 0], ["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(SettingError):
        viz.attention_figure(torch.ones(3, 3), ["a", "b"])
    with pytest.raises(SettingError):
        viz.token_figure([1.0], tokens=["a", "b"])


def test_curves_and_sanity_figures_draw_metric_results():
    metrics = pytest.importorskip("attrib.metrics")
    curve = metrics.Curve(
        fractions=torch.linspace(0, 1, 5),
        scores=torch.tensor([[1.0, 0.6, 0.3, 0.1, 0.0], [0.9, 0.5, 0.2, 0.1, 0.0]]),
        clean=torch.tensor([1.0, 0.9]),
        kind="deletion",
        order="morf",
    )
    fig = viz.curves_figure({"Saliency": curve}, title="deletion")
    assert fig.axes[0].get_title() == "deletion"
    assert "Saliency (area" in fig.axes[0].get_legend().get_texts()[0].get_text()
    result = metrics.RandomizationResult(
        method="Saliency",
        mode="cascading",
        steps=("original", "fc", "conv"),
        similarity={"spearman_abs": torch.tensor([[1.0, 1.0], [0.5, 0.4], [0.1, 0.0]])},
        maps=torch.randn(3, 1, 4, 4),
    )
    fig = viz.sanity_figure({"Saliency": result})
    assert len(fig.axes) == 3
    fig = viz.randomization_figure(result)
    assert fig.axes[0].get_title() == "spearman_abs"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_import_attrib_viz_does_not_import_matplotlib_or_pillow():
    import subprocess

    code = (
        "import sys, attrib, attrib.viz, attrib.report; "
        "print('matplotlib' in sys.modules, 'PIL' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

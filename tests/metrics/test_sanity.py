"""Sanity checks: randomization goes through params_overridden and leaves the model as it was;
numbers derived on a linear model; the paper's finding on the real trained MNIST CNN."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from attrib import Saliency
from attrib.core.errors import SettingError, TargetError
from attrib.core.result import Attribution
from attrib.metrics import (
    draw_parameters,
    model_randomization,
    random_logit,
    randomizable_layers,
    randomization_similarity,
    spearman,
)
from attrib.metrics._random import row_seed
from tests.conftest import assert_state_restored, model_state
from tests.metrics.helpers import linear, mnist_digits, mnist_model, optional_method


def test_randomizable_layers_top_first():
    model = mnist_model()
    assert randomizable_layers(model) == [
        "classifier.2",
        "classifier.0",
        "features.3",
        "features.0",
    ]


def test_draw_parameters_is_the_layer_initialisation_seeded_and_leaves_model_and_rng_alone():
    model = mnist_model()
    before = model_state(model)
    rng = torch.get_rng_state()
    drawn = draw_parameters(model, ["classifier.2", "features.0"], seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    assert_state_restored(model, before)
    assert set(drawn[0]) == {"classifier.2.weight", "classifier.2.bias"}
    # the same draw as the layer's own reset_parameters under the documented seed
    layer = copy.deepcopy(model.classifier[2])
    torch.manual_seed(row_seed(5, 0))
    layer.reset_parameters()
    assert torch.equal(drawn[0]["classifier.2.weight"], layer.weight)
    again = draw_parameters(model, ["classifier.2", "features.0"], seed=5)
    assert torch.equal(again[1]["features.0.weight"], drawn[1]["features.0.weight"])
    other = draw_parameters(model, ["classifier.2"], seed=6)
    assert not torch.equal(other[0]["classifier.2.weight"], drawn[0]["classifier.2.weight"])
    normal = draw_parameters(model, ["features.0"], seed=5, init="normal")[0]["features.0.weight"]
    std = float(model.features[0].weight.detach().std())
    assert float(normal.abs().max()) <= 2 * std + 1e-6


def test_randomization_of_a_linear_model_by_hand():
    # saliency of a linear model is its weight row: randomizing it to w' gives exactly the
    # Spearman correlation of w and w'
    torch.manual_seed(0)
    w = torch.randn(2, 30, dtype=torch.float64)
    model = linear(w)
    x = torch.randn(3, 30, dtype=torch.float64)
    new = torch.randn(2, 30, dtype=torch.float64)
    result = randomization_similarity(
        Saliency(model), x, 1, [("linear", {"linear.weight": new})], measures=["spearman"]
    )
    assert result.steps == ("original", "linear")
    assert result.similarity["spearman"][0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    expected = float(spearman(w[1:2], new[1:2]))
    assert result.similarity["spearman"][1].tolist() == pytest.approx([expected] * 3)
    assert torch.equal(model.linear.weight, w)


def test_cascading_accumulates_and_independent_does_not():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    cascading = model_randomization(Saliency(model), x, 0, seed=1)
    independent = model_randomization(Saliency(model), x, 0, seed=1, mode="independent")
    assert cascading.steps == independent.steps == ("original", "2", "0")
    # the first step randomizes the same single layer in both modes
    first = cascading.similarity["spearman"][1]
    assert torch.allclose(first, independent.similarity["spearman"][1])
    # the last step differs: both layers (cascading) against only the bottom one
    assert not torch.allclose(
        cascading.similarity["spearman"][2], independent.similarity["spearman"][2]
    )
    assert set(cascading.similarity) == {"spearman_abs", "spearman"}  # no 2-D maps here


def test_an_explainer_that_ignores_the_model_passes_as_unchanged():
    # an edge detector does not look at the model: randomization cannot change it, which is
    # exactly what the test exposes (similarity 1 at every step)
    class Edges:
        def __init__(self, model):
            self.model = model

        def __call__(self, x, target=None):
            return Attribution(values=(x[..., 1:, :] - x[..., :-1, :]).abs())

    model = mnist_model()
    x, _ = mnist_digits(4)
    result = model_randomization(Edges(model), x, 0, keep_maps=1)
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        assert torch.allclose(result.mean(measure), torch.ones(5, dtype=torch.float64))
    assert result.maps.shape == (5, 1, 27, 28)


def test_the_model_is_restored_even_when_the_method_raises():
    model = mnist_model()
    before = model_state(model)
    x, _ = mnist_digits(4)
    calls = []

    class Fails:
        def __init__(self, model):
            self.model = model

        def __call__(self, x, target=None):
            calls.append(1)
            if len(calls) == 4:  # during the second randomization step (cascading)
                raise RuntimeError("boom")
            return Saliency(self.model)(x, target=target)

    with pytest.raises(RuntimeError, match="boom"):
        model_randomization(Fails(model), x, "predicted")
    assert_state_restored(model, before)
    model_randomization(Saliency(model), x, "predicted", measures=["spearman"])
    assert_state_restored(model, before)


def test_a_method_bound_to_another_model_is_refused():
    with pytest.raises(SettingError, match="model"):
        model_randomization(Saliency(linear([[1.0]])), torch.ones(1, 1), model=mnist_model())


# The paper's result (Adebayo et al. 2018, Fig. 2 and 4), on a real trained CNN: gradients and
# Grad-CAM decorrelate as layers are randomized from the top; guided backpropagation barely
# changes when the top layers are randomized. The bounds are the paper's qualitative claims
# (near-zero correlation after full randomization; near-one for guided backprop after the
# logits), not numbers taken from a run.
SANITY_METHODS = {
    "Saliency": (lambda m: Saliency(m)),
    "GradCAM": (lambda m: optional_method("attrib.methods.cam", "GradCAM")(m, layer="features.4")),
    "GuidedBackprop": (
        lambda m: optional_method("attrib.methods.propagation", "GuidedBackprop")(m)
    ),
}


@functools.cache
def _result(name: str):
    model = mnist_model()
    x, _ = mnist_digits(20)
    return model_randomization(SANITY_METHODS[name](model), x, "predicted", keep_maps=0)


def _sanity(name: str):
    module = {"GradCAM": "attrib.methods.cam", "GuidedBackprop": "attrib.methods.propagation"}
    if name in module and optional_method(module[name], name) is None:
        pytest.skip(f"{name} has not landed yet")
    return _result(name)


@pytest.mark.parametrize("name", ["Saliency", "GradCAM"])
def test_gradient_and_gradcam_decorrelate_under_cascading_randomization(name):
    result = _sanity(name)
    assert float(result.mean("spearman_abs")[0]) == pytest.approx(1.0)  # deterministic
    # after the convolutions are randomized too (the last two steps): near-zero similarity
    assert float(result.mean("spearman_abs")[-2:].mean()) < 0.35
    assert float(result.mean("ssim")[-2:].mean()) < 0.35


def test_guided_backprop_barely_changes_when_the_top_layers_are_randomized():
    guided = _sanity("GuidedBackprop")
    gradient = _sanity("Saliency")
    after_logits = 1  # the step that randomized the logit layer
    assert float(guided.mean("spearman")[after_logits]) > 0.7
    assert float(gradient.mean("spearman")[after_logits]) < 0.3
    # over the whole cascade guided backprop stays far more similar to its original map
    gap = guided.mean("spearman")[1:].mean() - gradient.mean("spearman")[1:].mean()
    assert float(gap) > 0.3


def test_random_logit_by_hand_and_seeded():
    # saliency of a linear model for class c is W[c]: the similarity to a random other class
    # c' is the Spearman correlation of W[c] and W[c'], for the classes drawn with the seed
    torch.manual_seed(0)
    w = torch.randn(4, 20, dtype=torch.float64)
    x = torch.randn(3, 20, dtype=torch.float64)
    model = linear(w)
    target = torch.tensor([0, 1, 2])
    other = torch.tensor([3, 3, 0])
    got = random_logit(Saliency(model), x, target, other=other, similarity="spearman")
    expected = [
        float(spearman(w[c : c + 1], w[o : o + 1])) for c, o in zip(target, other, strict=True)
    ]
    assert got.tolist() == pytest.approx(expected)
    drawn = random_logit(Saliency(model), x, target, similarity="spearman", seed=1)
    assert torch.equal(
        drawn, random_logit(Saliency(model), x, target, similarity="spearman", seed=1)
    )
    with pytest.raises(TargetError):
        random_logit(Saliency(model), x, target, other=target)


def test_a_map_made_constant_by_randomization_scores_zero_and_is_marked():
    """Saliency of a linear model is its weight row W[c]: drawing the weights as ones makes
    the map constant, which has no rank order left (0, not NaN), and the result says so."""
    weight = torch.arange(32.0, dtype=torch.float64).view(2, 16) - 7.5  # |W[0]| has an order
    model = linear(weight)
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)

    def ones(name: str, value: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return torch.ones_like(value)

    result = model_randomization(Saliency(model), x, 0, init=ones)
    assert result.steps == ("original", "linear")
    assert result.similarity["spearman_abs"][1].tolist() == [0.0, 0.0, 0.0]
    assert result.similarity["spearman"][1].tolist() == [0.0, 0.0, 0.0]
    assert result.constant.tolist() == [[False] * 3, [True] * 3]
    assert result.mean("spearman_abs").tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("side", "measures"),
    [
        (6, ("spearman_abs", "spearman")),
        (7, ("spearman_abs", "spearman", "ssim")),  # SSIM's 7 x 7 window fits
        (23, ("spearman_abs", "spearman", "ssim")),  # HOG crashed here: 2 cells of 8 < 3
        (24, ("spearman_abs", "spearman", "ssim", "hog")),  # one block of 3 x 3 cells of 8
    ],
)
def test_default_measures_are_those_the_maps_fit(side, measures):
    torch.manual_seed(0)
    model = linear(torch.randn(2, side * side, dtype=torch.float64))
    x = torch.randn(2, 1, side, side, dtype=torch.float64)
    result = model_randomization(Saliency(model), x, 0, keep_maps=0)
    assert tuple(result.similarity) == measures
    if "hog" not in measures:
        with pytest.raises(SettingError, match=r"'hog' only for 2-D maps of at least 24 x 24"):
            model_randomization(Saliency(model), x, 0, measures=["hog"])

"""Axiom checks on the seeds' examples and on models built to pass or to fail them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib import GradientXInput, IntegratedGradients, Saliency
from attrib.core.errors import InputError, SettingError
from attrib.core.result import Attribution
from attrib.metrics import (
    completeness,
    implementation_invariance,
    sensitivity,
    symmetry_preservation,
)
from tests.metrics.helpers import linear


class OneMinusReLU(nn.Module):
    """The seeds' ``f(x) = 1 - ReLU(1 - x)``: f(0) = 0, f(2) = 1, f'(2) = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - torch.relu(1 - x).sum(1)


class LogisticSum(nn.Module):
    """Seed 004's ``sigmoid(x1 + x2)``, symmetric in its two inputs; ``scale`` breaks that."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x[:, 0] + self.scale * x[:, 1])


def test_completeness_of_integrated_gradients_and_the_gap_of_saliency_on_a_linear_model():
    torch.manual_seed(0)
    w = torch.randn(2, 5, dtype=torch.float64)
    model = linear(w)
    x = torch.randn(3, 5, dtype=torch.float64)
    ig = completeness(IntegratedGradients(model, steps=4), x, target=1)
    assert torch.allclose(ig.gap, torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert bool(ig.holds().all())
    # saliency sums to sum(w_1) where f(x) - f(0) = w_1 . x: the gap is their difference
    got = completeness(Saliency(model), x, target=1)
    assert torch.allclose(got.total, w[1].sum().expand(3))
    assert torch.allclose(got.gap, w[1].sum() - x @ w[1])
    assert not bool(got.holds().all())
    # gradient x input of a linear model is complete (its implicit baseline is 0)
    assert bool(completeness(GradientXInput(model), x, target=1).holds(rtol=0, atol=1e-12).all())


def test_sensitivity_the_seeds_example():
    model = OneMinusReLU().eval()
    x = torch.tensor([[2.0]], dtype=torch.float64)
    gxi = sensitivity(GradientXInput(model), x, baseline=0.0)
    assert gxi.output_change.tolist() == [1.0]
    assert gxi.attribution.tolist() == [0.0]  # 0 * 2: the gradient at x = 2 is 0
    assert gxi.violated.tolist() == [True]
    ig = sensitivity(IntegratedGradients(model, steps=64, baseline=0.0), x, baseline=0.0)
    assert float(ig.attribution) == pytest.approx(1.0, abs=0.02)
    assert ig.violated.tolist() == [False]


def test_symmetry_preservation_holds_for_the_straight_path_and_not_for_a_bent_one():
    model = LogisticSum().eval()
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    ig = symmetry_preservation(IntegratedGradients(model, steps=32), x, [(0, 1)])
    assert ig.applies.tolist() == [[True]]
    assert float(ig.model_asymmetry[0]) < 1e-12  # the premise: f is symmetric
    assert bool(ig.holds().all())

    def bent(x: torch.Tensor, baseline: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        # x1 moves along alpha^2, x2 along alpha: a path method, but not the straight line
        a = alpha.view(-1, 1)
        return baseline + (x - baseline) * torch.cat([a * a, a], dim=1)

    curved = symmetry_preservation(IntegratedGradients(model, steps=32, path=bent), x, [(0, 1)])
    assert float(curved.difference[0, 0]) > 1e-3
    assert not bool(curved.holds().all())


def test_symmetry_premise_is_measured():
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    asymmetric = symmetry_preservation(
        Saliency(LogisticSum(scale=2.0).eval()), x, [(0, 1)], probes=8
    )
    assert float(asymmetric.model_asymmetry[0]) > 1e-3
    # index tuples of one sample's shape are accepted
    images = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    model = linear(torch.ones(1, 4, dtype=torch.float64))
    got = symmetry_preservation(Saliency(model), images, [((0, 0, 0), (0, 1, 1))])
    assert got.pairs.tolist() == [[0, 3]] and bool(got.holds().all())


class Redundant(nn.Module):
    """``x1 + x2`` computed as ``relu(x1) - relu(-x1) + x2``: the same function."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(2, 3, bias=False).double()
        with torch.no_grad():
            self.first.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.first(x))
        return (h[:, 0] - h[:, 1] + self.first(x)[:, 2]).unsqueeze(1)


class FirstLayerTimesInput:
    """A toy explainer that reads the implementation: the first weight column times x."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor, target=None) -> Attribution:
        weight = next(self.model.parameters())
        return Attribution(values=x * weight.sum(0).detach())


def test_implementation_invariance_of_gradients_and_a_toy_that_breaks_it():
    simple = linear([[1.0, 1.0]])
    redundant = Redundant().eval()
    x = torch.tensor([[0.5, -2.0], [-1.5, 3.0]], dtype=torch.float64)

    got = implementation_invariance(Saliency, simple, redundant, x, target=0)
    assert float(got.output_difference.max()) < 1e-12
    assert bool(got.holds().all())
    toy = implementation_invariance(FirstLayerTimesInput, simple, redundant, x, target=None)
    # the toy gives (x1, x2) on the simple model and (0 x1, x2) on the redundant one
    assert toy.difference.tolist() == pytest.approx([0.5, 1.5])
    assert not bool(toy.holds().any())


def test_implementation_invariance_measures_the_premise():
    x = torch.tensor([[0.5, -2.0]], dtype=torch.float64)
    got = implementation_invariance(
        Saliency, linear([[1.0, 1.0]]), linear([[1.0, 1.5]]), x, target=0, probes=4
    )
    assert float(got.output_difference[0]) > 0.1


def test_bad_arguments():
    model = linear([[1.0, 2.0]])
    x = torch.ones(1, 2, dtype=torch.float64)
    with pytest.raises(InputError, match="baseline"):
        sensitivity(Saliency(model), x, baseline=torch.ones(3))
    with pytest.raises(SettingError, match="pairs"):
        symmetry_preservation(Saliency(model), x, [(0, 5)])
    with pytest.raises(InputError):
        completeness(Saliency(model), torch.ones(0, 2))

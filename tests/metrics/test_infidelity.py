"""Infidelity and max-sensitivity (Yeh et al. 2019) where the answer follows from the formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attrib import GradientXInput, Saliency
from attrib.core.errors import InputError, SettingError
from attrib.core.result import Attribution
from attrib.metrics import infidelity, max_sensitivity
from tests.metrics.helpers import Counting, linear


def test_infidelity_by_hand_with_given_perturbations():
    # f(x) = x1 + 2 x2; perturbations I1 = (1, 0), I2 = (0, 1): f(x) - f(x - I) = (1, 2)
    model = linear([[1.0, 2.0]])
    x = torch.tensor([[3.0, -1.0]], dtype=torch.float64)
    draws = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    # Phi = 2 w: I . Phi = (2, 4); mean of squared errors ((2 - 1)^2 + (4 - 2)^2) / 2
    phi = torch.tensor([[2.0, 4.0]], dtype=torch.float64)
    got = infidelity(model, x, phi, None, perturbation=draws)
    assert float(got) == pytest.approx(2.5)
    # the optimal scale beta = mean(dot * drop) / mean(dot^2) = 5 / 10 makes it exact
    assert float(infidelity(model, x, phi, None, perturbation=draws, normalize=True)) == (
        pytest.approx(0.0, abs=1e-24)
    )


def test_the_gradient_of_a_linear_model_has_zero_infidelity_for_any_perturbation():
    torch.manual_seed(0)
    w = torch.randn(3, 10, dtype=torch.float64)
    model = linear(w)
    x = torch.randn(4, 10, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 0])
    saliency = Saliency(model)(x, target=target)
    for perturbation in ("gaussian", lambda rows, sample, draw: rows * (draw.view(-1, 1) + 1)):
        got = infidelity(model, x, saliency, target, perturbation=perturbation, samples=6)
        assert torch.allclose(got, torch.zeros(4, dtype=torch.float64), atol=1e-20)
    # a wrong attribution is caught: Phi = 0 scores E[(w . I)^2] = sigma^2 |w_c|^2
    zero = infidelity(model, x, torch.zeros_like(x), target, sigma=0.1, samples=4000, seed=3)
    expected = 0.01 * w[target].pow(2).sum(1)
    assert torch.allclose(zero, expected, rtol=0.1)


def test_square_removal_perturbs_one_square_of_the_image():
    # f = sum of all pixels, Phi = 1: I . Phi = sum of the removed square = f(x) - f(x - I)
    model = linear(torch.ones(1, 1 * 8 * 8, dtype=torch.float64))
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    ones = torch.ones_like(x)
    assert torch.allclose(
        infidelity(model, x, ones, None, perturbation="square", patch=3, samples=5),
        torch.zeros(2, dtype=torch.float64),
        atol=1e-24,
    )
    # Phi = 0: the error is the removed square's sum; it is positive for every draw
    assert bool((infidelity(model, x, 0 * ones, None, perturbation="square", patch=3) > 0).all())


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_infidelity_forwards_and_seed(batch_size):
    torch.manual_seed(1)
    counting = Counting(linear(torch.randn(2, 6, dtype=torch.float64)))
    x = torch.randn(3, 6, dtype=torch.float64)
    phi = torch.randn(3, 6, dtype=torch.float64)
    got = infidelity(counting, x, phi, "predicted", samples=7, batch_size=batch_size, seed=9)
    assert counting.calls == math.ceil(3 * (7 + 1) / batch_size)
    reference = infidelity(counting, x, phi, "predicted", samples=7, seed=9)
    assert torch.allclose(got, reference, rtol=1e-12)
    assert not torch.allclose(got, infidelity(counting, x, phi, "predicted", samples=7, seed=10))


def test_max_sensitivity_of_half_the_squared_norm():
    # f(x) = |x|^2 / 2 has gradient x: Phi(x + delta) - Phi(x) = delta, so the sensitivity is
    # the largest |delta| drawn; relative divides by |x|
    class HalfSquare(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x.pow(2).sum(1)

    model = HalfSquare().eval()
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    draws = torch.tensor(
        [[[0.1, 0.0], [0.0, -0.2], [0.05, 0.05]], [[0.0, 0.3], [0.1, 0.1], [0.0, 0.0]]],
        dtype=torch.float64,
    )
    got = max_sensitivity(Saliency(model), x, None, perturbation=draws)
    assert got.tolist() == pytest.approx([0.2, 0.3])
    relative = max_sensitivity(Saliency(model), x, None, perturbation=draws, relative=True)
    assert relative.tolist() == pytest.approx([0.2 / 5, 0.3 / 1])
    # uniform draws in the L-inf ball of radius r: every |delta| is at most r sqrt(d)
    drawn = max_sensitivity(Saliency(model), x, None, radius=0.1, samples=20)
    assert bool((drawn > 0).all()) and bool((drawn <= 0.1 * math.sqrt(2) + 1e-12).all())


def test_max_sensitivity_calls_the_method_once_per_chunk_of_rows():
    calls = []

    class Counted:
        def __init__(self, method):
            self.method = method
            self.model = method.model

        def __call__(self, x, target=None):
            calls.append(x.shape[0])
            return self.method(x, target=target)

    torch.manual_seed(0)
    model = linear(torch.randn(3, 5, dtype=torch.float64))
    x = torch.randn(4, 5, dtype=torch.float64)
    method = Counted(GradientXInput(model))
    got = max_sensitivity(method, x, "predicted", samples=5, batch_size=7, seed=2)
    assert len(calls) == math.ceil(4 * (5 + 1) / 7) and sum(calls) == 24
    again = max_sensitivity(GradientXInput(model), x, "predicted", samples=5, seed=2)
    assert torch.allclose(got, again, rtol=1e-12)


def test_bad_inputs():
    model = linear([[1.0, 2.0]])
    x = torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(InputError, match="attributions"):
        infidelity(model, x, torch.ones(2, 3), None)
    with pytest.raises(InputError, match="attributions"):
        infidelity(model, x, Attribution(values=torch.ones(3, 2)), None)
    with pytest.raises(InputError):
        infidelity(model, torch.ones(0, 2), torch.ones(0, 2), None)
    with pytest.raises(InputError, match="perturbation"):
        infidelity(model, x, x, None, perturbation=torch.ones(2, 3, 5))
    with pytest.raises(SettingError):
        infidelity(model, x, x, None, perturbation="salt")
    with pytest.raises(SettingError):
        max_sensitivity(Saliency(model), x, None, radius=-1.0)

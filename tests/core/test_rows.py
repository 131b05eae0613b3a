"""Per-sample data that is not explained follows its sample into every row a method builds
(``attrib.bind``, ``attrib.core.rows``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrib
from attrib import bind
from attrib.core.errors import InputError
from attrib.core.rows import row_origin, rows_from

TOL = 1e-12  # float64 throughout: sums of a few terms of magnitude ~1


class ScaledLinear(nn.Module):
    """``f(x, scale) = (x @ W.T + b) * scale``: a linear model whose every output is scaled
    by a per-sample number passed beside the input. Its attributions are known exactly:
    gradient ``W[c] * s``, integrated gradients and removal values ``(x - x') * W[c] * s``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(6, 3).double()

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * scale.view(-1, 1)


@pytest.fixture
def case():
    model = ScaledLinear().eval()
    torch.manual_seed(1)
    x = torch.randn(4, 6, dtype=torch.float64)
    scale = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    weight = model.linear.weight.detach()[1]  # the target class 1
    return model, x, scale, weight


def test_the_origin_composes_through_nested_row_sets():
    assert row_origin() is None
    with rows_from(torch.tensor([2, 0, 1])):  # rows of a wrapper: samples 2, 0, 1
        with rows_from(torch.tensor([1, 1, 2, 0])):  # an inner method's rows of those rows
            assert row_origin().tolist() == [0, 0, 1, 2]
        assert row_origin().tolist() == [2, 0, 1]
    assert row_origin() is None


def test_path_noise_and_pair_rows_carry_their_samples_extra_input(case):
    model, x, scale, w = case
    bound = bind(model, scale=scale)
    expected = x * w * scale.view(-1, 1)  # (x - 0) * W[c] * s
    # IG: path points in chunks of 3 rows, and the baseline's forward (one shared row for
    # every sample without bind) scored per sample
    ig = attrib.IntegratedGradients(bound, steps=4, batch_size=3)(x, target=1)
    torch.testing.assert_close(ig.values, expected, rtol=0, atol=TOL)
    assert float(ig.delta.abs().max()) < TOL
    # DeepLIFT runs [x; x'] as one batch: both halves get their sample's scale
    deeplift = attrib.DeepLIFT(bound, batch_size=2)(x, target=1)
    torch.testing.assert_close(deeplift.values, expected, rtol=0, atol=TOL)
    # SmoothGrad's noisy rows, then Saliency's chunks of them: W[c] * s whatever the noise
    smooth = attrib.SmoothGrad(attrib.Saliency(bound, batch_size=2), samples=3, seed=0)
    grads = smooth(x, target=1)
    torch.testing.assert_close(grads.values, (w * scale.view(-1, 1)), rtol=0, atol=TOL)


def test_references_and_removals_carry_their_samples_extra_input(case):
    model, x, scale, w = case
    bound = bind(model, scale=scale)
    expected = x * w * scale.view(-1, 1)
    refs = torch.randn(5, 6, dtype=torch.float64)
    eg = attrib.ExpectedGradients(bound, refs, samples=6, seed=0, batch_size=5)(x, target=1)
    assert float(eg.delta.abs().max()) < TOL  # f(x) - mean f(x'), each x' with its sample
    # every coalition of 6 players: exact Shapley values, (x_j - 0) W[c, j] s
    shap = attrib.KernelSHAP(bound, samples=64, batch_size=7)(x, target=1)
    torch.testing.assert_close(shap.values, expected, rtol=0, atol=1e-10)
    occlusion = attrib.Occlusion(bound, window=1, strides=1, batch_size=5)(x, target=1)
    torch.testing.assert_close(occlusion.values, expected, rtol=0, atol=TOL)


def test_a_per_sample_input_of_the_wrong_length_is_refused(case):
    model, x, scale, _ = case
    with pytest.raises(InputError, match="scale: expected one row per sample"):
        attrib.Saliency(bind(model, scale=scale[:2]))(x, target=1)
    with pytest.raises(InputError, match=r"functools\.partial"):
        bind(model, scale=2.0)


def test_bind_leaves_the_model_as_it_was(case):
    model, x, scale, _ = case
    model.train()
    with pytest.warns(attrib.AttribWarning, match="training mode"):
        attrib.Saliency(bind(model, scale=scale))(x, target=1)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())

"""KernelSHAP and LIME: exactness with every coalition, convergence, literal regressions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attrib.core.errors import SettingError
from attrib.methods.perturbation import (
    LIME,
    BernoulliSampler,
    ExactShapley,
    KernelSHAP,
    LinearSurrogate,
    ShapleyKernel,
    grid,
)
from attrib.methods.perturbation.coalitions import kernel_sample
from attrib.methods.perturbation.kernel import fit_surrogate
from tests.models import MLP, GapCNN, LinearModel


def game_rows(model, x, table, baseline=0.0):
    """``f(x_S, baseline_-S)`` for one sample ``x`` (features are players) and every row of
    ``table``, literally."""
    z = table.to(x.dtype)
    rows = x * z + baseline * (1 - z)
    with torch.no_grad():
        return model(rows)


def test_kernel_shap_with_every_coalition_is_exact_shapley():
    model = MLP(n_in=5).double().eval()
    x = torch.randn(3, 5, dtype=torch.float64)
    exact = ExactShapley(model)(x, target=[0, 1, 2])
    got = KernelSHAP(model, samples=2**5 - 2, seed=0)(x, target=[0, 1, 2])
    assert got.params["enumerated"] is True
    torch.testing.assert_close(got.values, exact.values, rtol=0, atol=1e-10)
    assert float(got.delta.abs().max()) < 1e-10
    # one coalition fewer: sampled, no longer exact
    fewer = KernelSHAP(model, samples=2**5 - 3, seed=0)(x, target=[0, 1, 2])
    assert fewer.params["enumerated"] is False
    assert not torch.allclose(fewer.values, exact.values, atol=1e-6)


def test_kernel_shap_on_a_cnn_grid_with_every_coalition():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    exact = ExactShapley(model, feature_mask=grid(6))(x, target=1)
    got = KernelSHAP(model, feature_mask=grid(6), samples=100, seed=0)(x, target=1)
    torch.testing.assert_close(got.values, exact.values, rtol=0, atol=1e-10)


def test_kernel_shap_converges_to_exact_shapley():
    model = MLP(n_in=10).double().eval()
    x = torch.randn(1, 10, dtype=torch.float64)
    exact = ExactShapley(model)(x, target=3).values
    errors = []
    for samples in (24, 96, 384):  # all below 2^10 - 2 = 1022: sampled
        runs = [KernelSHAP(model, samples=samples, seed=s)(x, target=3) for s in range(6)]
        assert all(r.params["enumerated"] is False for r in runs)
        errors.append(float(torch.stack([(r.values - exact).pow(2).mean() for r in runs]).mean()))
    assert errors[0] > errors[1] > errors[2]
    # mean squared error of a regression estimator falls about like 1 / samples: 16x the
    # samples must give at least a 4x smaller error
    assert errors[2] < errors[0] / 4


def test_kernel_shap_on_a_linear_model_is_w_times_x_from_any_samples():
    model = LinearModel(n_in=8, n_out=2).double().eval()
    x = torch.randn(3, 8, dtype=torch.float64)
    got = KernelSHAP(model, samples=40, seed=1)(x, target=1)
    assert got.params["enumerated"] is False
    w = model.linear.weight.detach()[1]
    torch.testing.assert_close(got.values, w * x, rtol=0, atol=1e-10)


def test_kernel_shap_is_reproducible_and_seeded():
    model = MLP(n_in=8).double().eval()
    x = torch.randn(2, 8, dtype=torch.float64)
    a = KernelSHAP(model, samples=50, seed=7)(x, target=0)
    b = KernelSHAP(model, samples=50, seed=7, batch_size=9)(x, target=0)
    c = KernelSHAP(model, samples=50, seed=8)(x, target=0)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=1e-12)
    assert not torch.allclose(a.values, c.values)
    torch.manual_seed(5)
    d = KernelSHAP(model, samples=50)(x, target=0)
    torch.manual_seed(5)
    e = KernelSHAP(model, samples=50)(x, target=0)
    torch.testing.assert_close(d.values, e.values, rtol=0, atol=0)


def test_kernel_sampler_draws_complementary_pairs_by_the_kernel():
    players, count = 7, 40000
    table = kernel_sample(count, players, torch.Generator().manual_seed(0), paired=True)
    assert table.shape == (count, players)
    assert bool((table[0::2] == ~table[1::2]).all())
    sizes = table.sum(1)
    assert bool(((sizes > 0) & (sizes < players)).all())
    # p(s) = (P - 1) / (s (P - s)) normalised over s = 1 .. P-1
    s = torch.arange(1, players, dtype=torch.float64)
    expected = (1 / (s * (players - s))) / (1 / (s * (players - s))).sum()
    observed = torch.bincount(sizes, minlength=players)[1:].double() / count
    # binomial standard error of each frequency over 20000 independent pairs, 5 sigmas
    se = (expected * (1 - expected) / (count / 2)).sqrt()
    assert bool(((observed - expected).abs() < 5 * se).all())


def test_constrained_fit_equals_the_eliminated_regression():
    """The KKT solution equals shap's way: substitute ``phi_P = delta - sum_{j<P} phi_j``
    and solve the unconstrained weighted least squares for the rest."""
    g = torch.Generator().manual_seed(0)
    m, p, n = 50, 6, 3
    z = torch.rand(m, p, generator=g) < 0.5
    w = torch.rand(m, generator=g, dtype=torch.float64) + 0.1
    y = torch.randn(n, m, generator=g, dtype=torch.float64)
    empty = torch.randn(n, generator=g, dtype=torch.float64)
    full = torch.randn(n, generator=g, dtype=torch.float64)
    phi, intercept = fit_surrogate(z, w, y, efficiency=(empty, full))
    zf = z.double().numpy()
    for i in range(n):
        target = y[i].numpy() - float(empty[i]) - zf[:, -1] * float(full[i] - empty[i])
        design = zf[:, :-1] - zf[:, -1:]
        sw = np.sqrt(w.numpy())
        head = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)[0]
        expected = np.append(head, float(full[i] - empty[i]) - head.sum())
        np.testing.assert_allclose(phi[i].numpy(), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(intercept, empty)


def test_lime_equals_a_literal_weighted_ridge():
    from sklearn.linear_model import Ridge

    model = MLP(n_in=8).double().eval()
    x = torch.randn(2, 8, dtype=torch.float64)
    lime = LIME(model, samples=80, kernel_width=0.4, alpha=0.7, seed=3)
    got = lime(x, target=2)
    table, enumerated = lime.coalitions(8, torch.Generator().manual_seed(3))
    assert not enumerated
    size = table.sum(1).double()
    distance = 1 - (size / 8).sqrt()  # cosine distance between z and the all-ones vector
    weights = torch.exp(-(distance**2) / 0.4**2).numpy()
    for i in range(2):
        y = game_rows(model, x[i], table)[:, 2].numpy()
        ridge = Ridge(alpha=0.7).fit(table.double().numpy(), y, sample_weight=weights)
        np.testing.assert_allclose(got.params["player_values"][i].numpy(), ridge.coef_, atol=1e-9)
        assert math.isclose(float(got.params["intercept"][i]), ridge.intercept_, abs_tol=1e-9)
    assert got.delta is None
    assert got.method == "LIME"


def test_lime_with_every_coalition_is_the_ridge_over_all_of_them():
    from sklearn.linear_model import Ridge

    model = MLP(n_in=4).double().eval()
    x = torch.randn(1, 4, dtype=torch.float64)
    got = LIME(model, samples=16, seed=0, alpha=0.0)(x, target=0)
    assert got.params["enumerated"] is True
    table = torch.tensor([[(i >> j) & 1 for j in range(4)] for i in range(16)], dtype=torch.bool)
    distance = 1 - (table.sum(1).double() / 4).sqrt()
    weights = torch.exp(-(distance**2) / 0.25**2).numpy()
    y = game_rows(model, x[0], table)[:, 0].numpy()
    ridge = Ridge(alpha=0.0).fit(table.double().numpy(), y, sample_weight=weights)
    np.testing.assert_allclose(got.params["player_values"][0].numpy(), ridge.coef_, atol=1e-9)


def test_lime_on_a_linear_model_without_ridge_is_w_times_x():
    model = LinearModel(n_in=5, n_out=2).double().eval()
    x = torch.randn(2, 5, dtype=torch.float64)
    got = LIME(model, samples=64, alpha=0.0, seed=0)(x, target=0)
    w = model.linear.weight.detach()[0]
    torch.testing.assert_close(got.values, w * x, rtol=0, atol=1e-10)
    torch.testing.assert_close(got.params["fit"], torch.ones(2, dtype=torch.float64))


def test_a_surrogate_is_a_configuration():
    model = MLP(n_in=5).double().eval()
    x = torch.randn(1, 5, dtype=torch.float64)
    # the Shapley kernel on uniformly drawn coalitions is still KernelSHAP's objective: with
    # every coalition it gives the Shapley values too
    uniform = LinearSurrogate(
        model,
        samples=32,
        sampler=BernoulliSampler(),
        kernel=ShapleyKernel(),
        efficiency=True,
        seed=0,
    )
    exact = ExactShapley(model)(x, target=0)
    torch.testing.assert_close(uniform(x, target=0).values, exact.values, rtol=0, atol=1e-10)
    broken = LinearSurrogate(
        model, samples=10, sampler=BernoulliSampler(), kernel=ShapleyKernel(), efficiency=False
    )
    with pytest.raises(SettingError, match="finite weights"):
        broken(torch.randn(1, 5, dtype=torch.float64), target=0)


@pytest.mark.parametrize(
    ("method", "settings", "argument"),
    [
        (KernelSHAP, {"samples": 0}, "samples"),
        (KernelSHAP, {"seed": 0.5}, "seed"),
        (LIME, {"kernel_width": 0}, "kernel_width"),
        (LIME, {"alpha": -1.0}, "alpha"),
        (LIME, {"alpha": float("inf")}, "alpha"),
    ],
)
def test_bad_surrogate_settings(method, settings, argument):
    with pytest.raises(SettingError, match=argument):
        method(MLP().eval(), **settings)


def test_too_many_players_for_a_surrogate():
    model = GapCNN().eval()
    with pytest.raises(SettingError, match="at most 4096 players"):
        KernelSHAP(model, samples=10)(torch.randn(1, 3, 40, 40), target=0)


@pytest.mark.parametrize("surrogate", ["linear", "cubic"])
def test_a_player_missing_from_one_sample_gets_zero_and_the_pixels_stay_efficient(surrogate):
    """Per-sample masks where sample 1 has no feature of player 3 (as superpixels of two
    images): player 3 is a dummy there, so its value is 0 and the features of sample 1 sum
    to ``f(x) - f(baseline)`` from a sampled draw; with every coalition both samples get
    their exact Shapley values. (Before, the dummy took a share of the sampling noise that
    no feature showed, and sample 1's features missed efficiency by it.)"""
    model = MLP(n_in=8).double().eval()
    x = torch.randn(2, 8, dtype=torch.float64)
    mask = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 0, 1, 1, 2, 2, 2]])
    got = KernelSHAP(model, feature_mask=mask, samples=10, seed=0, surrogate=surrogate)(x, target=0)
    assert got.params["enumerated"] is False
    assert float(got.params["player_values"][1, 3]) == 0.0
    with torch.no_grad():
        gap = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(got.values.sum(1), gap, rtol=0, atol=1e-10)
    # with every coalition: each sample's exact Shapley values (the dummy's exactly 0)
    exact = ExactShapley(model, feature_mask=mask)(x, target=0)
    full = KernelSHAP(model, feature_mask=mask, samples=14, seed=0)(x, target=0)
    torch.testing.assert_close(full.values, exact.values, rtol=0, atol=1e-10)

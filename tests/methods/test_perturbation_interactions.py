"""KernelSHAP with interaction terms: the cubic surrogate and its exact Shapley readout.

Every expected value here is derived: a polynomial game's Shapley values are its Harsanyi
dividends shared equally (checked against enumeration), a fit that contains the game
reproduces it exactly, and with every coalition any order gives the exact Shapley values.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from attrib.core.errors import SettingError
from attrib.methods.perturbation import KernelSHAP, LeverageSampler, shapley_values
from attrib.methods.perturbation.coalitions import shapley_kernel
from attrib.methods.perturbation.interactions import (
    CUBIC_OVER_COEFFICIENTS,
    choose_order,
    coefficients,
    interaction_design,
    shapley_readout,
)
from attrib.methods.perturbation.kernel import LinearSurrogate, ShapleyKernel, fit_surrogate
from tests.methods.test_perturbation_leverage import explain, interaction_game, relative_error


def every_coalition(players: int) -> torch.Tensor:
    index = torch.arange(2**players)
    return ((index.view(-1, 1) >> torch.arange(players)) & 1).bool()


def polynomial_game(players: int, order: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``v`` over every coalition (bit order) of a random polynomial with monomials of up to
    ``order`` players (no constant), and its coefficients in ``interaction_design`` order."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(coefficients(players, order), generator=g, dtype=torch.float64)
    design = interaction_design(every_coalition(players), order)
    return design @ theta, theta


def test_the_design_holds_each_monomial_once():
    z = torch.tensor([[1, 1, 0, 1]], dtype=torch.bool)
    x = interaction_design(z, 3)[0]
    assert x.shape[0] == 4 + 6 + 4
    pairs = list(itertools.combinations(range(4), 2))
    triples = list(itertools.combinations(range(4), 3))
    expected = [1.0, 1.0, 0.0, 1.0]
    expected += [float(z[0, i] & z[0, j]) for i, j in pairs]
    expected += [float(z[0, i] & z[0, j] & z[0, k]) for i, j, k in triples]
    assert x.tolist() == expected


def test_the_readout_is_the_shapley_value_of_a_polynomial():
    """phi(q) = R theta equals the Shapley values of q computed by enumeration."""
    game, theta = polynomial_game(6, 3, seed=0)
    torch.testing.assert_close(
        shapley_readout(6, 3) @ theta, shapley_values(game), rtol=0, atol=1e-12
    )


def test_with_every_coalition_the_cubic_fit_gives_the_exact_shapley_values():
    """The residual of the kernel-weighted cubic fit is orthogonal to the additive functions
    KernelSHAP's regression solves for, so its readout is exact on any game (here one with a
    majority threshold, which no polynomial of order 3 fits)."""
    players = 7
    game = interaction_game(players, seed=2)
    z = every_coalition(players)[1:-1]
    weights = shapley_kernel(players, z.sum(1))
    design = interaction_design(z, 3)
    theta, _ = fit_surrogate(
        z, weights, game[1:-1].view(1, -1), efficiency=(game[:1], game[-1:]), design=design
    )
    phi = theta[0] @ shapley_readout(players, 3).T
    torch.testing.assert_close(phi, shapley_values(game), rtol=0, atol=1e-9)


def test_a_sampled_cubic_fit_is_exact_on_a_cubic_game_and_the_linear_one_is_not():
    """A draw of 5 / 8 of the coalitions of a cubic game: the cubic surrogate reproduces the
    game, so its Shapley values are exact and its standard error 0; KernelSHAP's additive
    model is not exact on it (order-3 terms are not cancelled by the pairs)."""
    players = 10
    game, _ = polynomial_game(players, 3, seed=1)
    exact = shapley_values(game)
    samples = 640  # 2 * 175 coefficients < 640 < 1022 coalitions
    cubic = explain(game, KernelSHAP, samples=samples, seed=3, surrogate="cubic")
    assert cubic.params["surrogate_order"] == 3
    torch.testing.assert_close(cubic.values[0], exact, rtol=0, atol=1e-9)
    assert float(cubic.params["player_standard_error"].max()) < 1e-8
    linear = explain(game, KernelSHAP, samples=samples, seed=3, surrogate="linear")
    assert linear.params["surrogate_order"] == 1
    assert relative_error(linear.values[0], exact) > 1e-3


def test_paired_additive_fit_is_exact_on_games_of_order_two():
    """Why the surrogate skips order 2: with complementary pairs the additive fit already
    recovers a pairwise game's Shapley values from a partial draw."""
    players = 10
    game, _ = polynomial_game(players, 2, seed=4)
    got = explain(game, KernelSHAP, samples=300, seed=0, surrogate="linear")
    torch.testing.assert_close(got.values[0], shapley_values(game), rtol=0, atol=1e-9)


def test_auto_takes_the_cubic_fit_with_twice_its_coefficients():
    k = coefficients(13, 3)
    assert k == 13 + 78 + 286
    assert choose_order("auto", 13, int(CUBIC_OVER_COEFFICIENTS * k), False) == 3
    assert choose_order("auto", 13, int(CUBIC_OVER_COEFFICIENTS * k) - 1, False) == 1
    assert choose_order("auto", 13, 8190, True) == 1  # every coalition: exact already
    assert choose_order("cubic", 13, 10, False) == 3
    assert choose_order("linear", 13, 10**6, False) == 1
    assert choose_order("auto", 29, 10**6, False) == 3  # 3,654 + 406 + 29 <= 4,096
    assert choose_order("auto", 30, 10**6, False) == 1  # 4,060 + 435 + 30 > 4,096


def mlp_game(players: int, seed: int) -> torch.Tensor:
    """``v(z) = sum_h c_h tanh(w_h . z + b_h)``: a smooth model of its features, as the
    tabular models of the ``shapley-curves`` report (interactions of every order)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(players, 16, generator=g, dtype=torch.float64) / players**0.5
    b = torch.randn(16, generator=g, dtype=torch.float64)
    c = torch.randn(16, generator=g, dtype=torch.float64)
    return torch.tanh(every_coalition(players).to(torch.float64) @ w + b) @ c


def test_auto_is_more_accurate_than_the_additive_fit_past_its_threshold():
    """On a smooth game that no polynomial fits exactly, averaged over seeds, at about three
    times the cubic's coefficients: the auto (cubic) estimate is closer to the exact values
    than the additive one from the same coalitions."""
    players = 10  # 175 coefficients; 540 of 1022 coalitions
    game = mlp_game(players, seed=5)
    exact = shapley_values(game)
    errors = {"auto": 0.0, "linear": 0.0}
    for seed in range(5):
        for surrogate in errors:
            got = explain(game, KernelSHAP, samples=540, seed=seed, surrogate=surrogate)
            errors[surrogate] += relative_error(got.values[0], exact)
    assert errors["auto"] < 0.3 * errors["linear"]


def test_the_cubic_standard_error_predicts_its_error():
    """Over 40 seeds, the spread of the cubic estimates around the exact values and the
    mean standard error it reports agree within a factor of 2 (first-order estimate)."""
    players = 11  # 231 coefficients; 700 of 2046 coalitions
    game = mlp_game(players, seed=6)
    exact = shapley_values(game)
    squared, reported = [], []
    for seed in range(40):
        got = explain(game, KernelSHAP, samples=700, seed=seed)
        assert got.params["surrogate_order"] == 3
        squared.append((got.values[0] - exact) ** 2)
        reported.append(got.params["player_standard_error"][0])
    spread = torch.stack(squared).mean(0).sqrt().mean()
    se = torch.stack(reported).mean(0).mean()
    assert 0.5 < float(se / spread) < 2.0


def test_a_cubic_surrogate_needs_the_efficiency_constraint():
    with pytest.raises(SettingError, match="surrogate"):
        LinearSurrogate(
            torch.nn.Identity(),
            samples=64,
            sampler=LeverageSampler(),
            kernel=ShapleyKernel(),
            efficiency=False,
            surrogate="cubic",
        )

"""Leverage SHAP sampling, standard errors of sampled Shapley estimates, tolerance stops.

The games are tables of ``v`` over every coalition (``TableGame``), whose Shapley values are
computed here by enumeration (``shapley_values``, itself checked against the mean over all
orders in ``test_perturbation_shapley``).
"""

from __future__ import annotations

import math

import pytest
import torch

from attrib.core.errors import SettingError
from attrib.methods.perturbation import KernelSHAP, LeverageSampler, ShapleySampling, shapley_values
from attrib.methods.perturbation.coalitions import shapley_kernel
from attrib.methods.perturbation.kernel import fit_surrogate
from attrib.methods.perturbation.leverage import _turns, leverage_strata
from attrib.methods.perturbation.surrogate_error import surrogate_standard_error
from tests.methods.test_perturbation_shapley import TableGame

SAMPLINGS = ("leverage", "kernel")


def interaction_game(players: int, seed: int) -> torch.Tensor:
    """``v(S) = sum_j a_j + sum_{j<k} b_jk + c [|S| >= P/2]`` over ``S`` (bit order): additive,
    pairwise and a majority threshold, so that no linear surrogate fits it."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(players, generator=g, dtype=torch.float64)
    b = 0.3 * torch.randn(players, players, generator=g, dtype=torch.float64).triu(1)
    index = torch.arange(2**players)
    z = ((index.view(-1, 1) >> torch.arange(players)) & 1).to(torch.float64)
    majority = (z.sum(1) >= players / 2).to(torch.float64)
    return z @ a + ((z @ b) * z).sum(1) + 1.5 * majority


def explain(game: torch.Tensor, method: type, **settings):
    players = game.shape[0].bit_length() - 1
    model = TableGame(game)  # one score per sample: no target
    return method(model, **settings)(torch.ones(1, players, dtype=torch.float64))


def relative_error(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    return float((estimate - exact).norm() / exact.norm())


# ---- the sampler ---------------------------------------------------------------------------


@pytest.mark.parametrize(("players", "paired"), [(6, True), (7, True), (6, False)])
def test_a_full_leverage_draw_is_every_coalition_once_and_gives_exact_shapley(players, paired):
    """Drawing every unit of every stratum through the sampler's own path (not the
    enumeration shortcut of the method): each non-trivial coalition once, expansion 1, so
    the constrained regression is the exact one, Shapley values to rounding, and the
    standard error is 0 (every stratum drawn whole)."""
    draw = LeverageSampler().draw(2**players - 2, players, torch.Generator().manual_seed(0), paired)
    bits = (draw.table.long() * 2 ** torch.arange(players)).sum(1)
    assert sorted(bits.tolist()) == list(range(1, 2**players - 1))
    torch.testing.assert_close(draw.expansion(), torch.ones(2**players - 2, dtype=torch.float64))
    torch.testing.assert_close(draw.fractions(), torch.ones_like(draw.fractions()))
    game = interaction_game(players, seed=1)
    y = game[bits].view(1, -1)
    empty, full = game[:1], game[-1:]
    weights = shapley_kernel(players, draw.table.sum(1)) * draw.expansion()
    phi, _ = fit_surrogate(draw.table, weights, y, efficiency=(empty, full))
    torch.testing.assert_close(phi[0], shapley_values(game), rtol=0, atol=1e-10)
    se = surrogate_standard_error(draw, weights, y, empty, phi)
    assert float(se.max()) < 1e-8


def test_leverage_allocation_is_uniform_over_sizes_and_fills_small_strata_first():
    players, units = 9, 60  # strata: sizes (1,8) 9 pairs, (2,7) 36, (3,6) 84, (4,5) 126
    draw = LeverageSampler().draw(2 * units, players, torch.Generator().manual_seed(3), True)
    counts = draw.counts().tolist()
    assert counts[0] == 9  # size 1 is used up: every pair of it, then the others share
    assert sum(counts) == units and max(counts[1:]) - min(counts[1:]) <= 1
    # complementary pairs; no coalition twice (without replacement)
    assert bool((draw.table[0::2] == ~draw.table[1::2]).all())
    bits = (draw.table.long() * 2 ** torch.arange(players)).sum(1)
    assert len(set(bits.tolist())) == 2 * units
    # the middle stratum of an even P has half the share: one pair per two of the others
    even = _turns(leverage_strata(8, True), 70)  # (1,7) 8, (2,6) 28, (3,5) 56, (4,4) 35
    got = torch.bincount(even, minlength=4).tolist()
    assert got[0] == 8 and abs(got[1] - got[2]) <= 1 and abs(got[3] - got[1] / 2) <= 1


def test_a_prefix_of_a_leverage_draw_is_the_draw_of_a_smaller_budget():
    players = 10
    draw = LeverageSampler().draw(400, players, torch.Generator().manual_seed(0), True)
    strata = leverage_strata(players, True)
    for units in (13, 50, 120):
        part = draw.prefix(units)
        assert part.units == units and part.table.shape[0] == 2 * units
        expected = torch.bincount(_turns(strata, units), minlength=len(strata))
        torch.testing.assert_close(part.counts(), expected.to(torch.float64))
        torch.testing.assert_close(part.table, draw.table[: 2 * units])


def test_the_rejection_path_draws_distinct_subsets_of_the_size():
    players = 40  # C(40, k) is far above what the draw takes: rejection sampling
    draw = LeverageSampler().draw(300, players, torch.Generator().manual_seed(0), True)
    sizes = draw.table[0::2].sum(1)
    assert bool(((sizes >= 1) & (sizes <= 20)).all())
    rows = {bytes(r.numpy().tobytes()) for r in draw.table}
    assert len(rows) == 300
    expected = torch.bincount(_turns(leverage_strata(players, True), 150), minlength=20)
    torch.testing.assert_close(draw.counts(), expected.to(torch.float64))
    middle = draw.table[0::2][draw.stratum == 19]  # pairs of size 20 hold player 0
    assert bool(middle[:, 0].all())


# ---- the estimate --------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_sampled_kernel_shap_converges_and_keeps_efficiency(sampling):
    players = 10
    game = interaction_game(players, seed=2)
    exact = shapley_values(game)
    errors = []
    for samples in (40, 160, 640):  # all below 2^10 - 2 = 1022: sampled
        runs = [
            explain(game, KernelSHAP, samples=samples, sampling=sampling, seed=s) for s in range(8)
        ]
        assert all(r.params["enumerated"] is False for r in runs)
        for r in runs:  # efficiency is a constraint: exact for any draw
            assert abs(float(r.params["player_values"].sum()) - float(game[-1] - game[0])) < 1e-9
            assert float(r.delta.abs().max()) < 1e-9
        errors.append(sum(relative_error(r.params["player_values"][0], exact) for r in runs))
    assert errors[0] > errors[1] > errors[2]
    # a regression estimator's error falls like 1 / sqrt(samples) or faster: 16x the samples
    # at least halves it (sampling without replacement does better still)
    assert errors[2] < errors[0] / 2


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_paired_draws_are_exact_on_games_of_order_two(sampling):
    """``v(S) = sum_j a_j + sum_{j<k} b_jk``: each pairwise term is
    ``z_j z_k = (z_j + z_k) / 2 + h(z)`` with ``h`` equal at a coalition and at its
    complement and 0 at both ends. A pair's rows add ``w h(z) (z + (1 - z)) = w h(z) 1`` to
    the normal equations, a constant vector the efficiency constraint absorbs, so ``h`` is
    estimated 0, its Shapley value (1/2 - 1/2); the linear part is exact from any draw. So
    paired draws are exact on this game whatever they are; unpaired ones are not."""
    players = 10
    g = torch.Generator().manual_seed(8)
    a = torch.randn(players, generator=g, dtype=torch.float64)
    b = torch.randn(players, players, generator=g, dtype=torch.float64).triu(1)
    index = torch.arange(2**players)
    z = ((index.view(-1, 1) >> torch.arange(players)) & 1).to(torch.float64)
    game = z @ a + ((z @ b) * z).sum(1)
    exact = shapley_values(game)
    paired = explain(game, KernelSHAP, samples=60, sampling=sampling, seed=0)
    torch.testing.assert_close(paired.params["player_values"][0], exact, rtol=0, atol=1e-10)
    alone = explain(game, KernelSHAP, samples=60, sampling=sampling, paired=False, seed=0)
    assert relative_error(alone.params["player_values"][0], exact) > 1e-3


def test_leverage_with_every_coalition_is_exact_shapley():
    game = interaction_game(8, seed=4)
    got = explain(game, KernelSHAP, samples=2**8 - 2, sampling="leverage", seed=0)
    assert got.params["enumerated"] is True
    torch.testing.assert_close(
        got.params["player_values"][0], shapley_values(game), atol=1e-10, rtol=0
    )
    assert float(got.params["player_standard_error"].abs().max()) == 0.0


# ---- standard errors -----------------------------------------------------------------------


def _coverage(
    estimates: list[torch.Tensor], errors: list[torch.Tensor], exact: torch.Tensor
) -> torch.Tensor:
    """``|estimate - exact| / SE`` of every player of every run."""
    pairs = zip(estimates, errors, strict=True)
    return torch.cat([((e - exact).abs() / s).flatten() for e, s in pairs])


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_kernel_shap_standard_error_is_calibrated(sampling):
    """Over 20 seeds x 10 players, ``|error| / SE`` behaves like ``|N(0, 1)|``: were the
    standard error right, 99.7% would lie within 3 (binomially, below 90% of 200 has
    probability < 1e-30), about 68% within 1 (a standard error 3x too large puts ~99% there,
    3x too small ~26%), and the mean of ``z^2`` is 1 (2 or 0.5 would mean 1.4x off)."""
    players = 10
    game = interaction_game(players, seed=5)
    exact = shapley_values(game)
    runs = [explain(game, KernelSHAP, samples=300, sampling=sampling, seed=s) for s in range(20)]
    z = _coverage(
        [r.params["player_values"][0] for r in runs],
        [r.params["player_standard_error"][0] for r in runs],
        exact,
    )
    assert float((z <= 3).double().mean()) >= 0.9
    assert 0.45 <= float((z <= 1).double().mean()) <= 0.9
    assert 0.5 <= float(z.pow(2).mean()) <= 2.0


def test_kernel_shap_standard_error_is_spread_like_the_values():
    got = explain(interaction_game(6, seed=0), KernelSHAP, samples=40, seed=0)
    assert got.params["standard_error"].shape == got.values.shape
    # spread="divide" on one-feature players: the same numbers
    torch.testing.assert_close(got.params["standard_error"], got.params["player_standard_error"])


# ---- stopping at a tolerance ---------------------------------------------------------------


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_kernel_shap_stops_at_the_tolerance(sampling):
    players = 12
    game = interaction_game(players, seed=6)
    capped = explain(game, KernelSHAP, samples=4000, sampling=sampling, seed=0)
    # what a quarter of the cap reaches (with some room: another draw's error varies)
    quarter = explain(game, KernelSHAP, samples=1000, sampling=sampling, seed=1)
    tolerance = 1.5 * float(quarter.params["player_standard_error"].max())
    got = explain(game, KernelSHAP, samples=4000, sampling=sampling, seed=0, tolerance=tolerance)
    se = got.params["player_standard_error"]
    assert float(se.max()) <= tolerance
    rows = got.params["perturbations"]
    # rounds of 32 units (pairs), doubling, plus v(empty): it stopped before the cap
    assert rows < capped.params["perturbations"]
    assert rows in {1 + 2 * units for units in (32, 64, 128, 256, 512, 1024)}
    assert relative_error(got.params["player_values"][0], shapley_values(game)) < 0.5
    # a tolerance no draw reaches runs every sample, and is the plain estimate
    never = explain(game, KernelSHAP, samples=400, sampling=sampling, seed=0, tolerance=1e-12)
    plain = explain(game, KernelSHAP, samples=400, sampling=sampling, seed=0)
    torch.testing.assert_close(never.values, plain.values, rtol=0, atol=1e-12)
    assert never.params["perturbations"] == plain.params["perturbations"]


def test_shapley_sampling_stops_at_the_tolerance_with_the_values_of_its_orders():
    players = 8
    game = interaction_game(players, seed=7)
    capped = explain(game, ShapleySampling, samples=256, seed=0)
    tolerance = 2.5 * float(capped.params["player_standard_error"].max())
    got = explain(game, ShapleySampling, samples=256, seed=0, tolerance=tolerance)
    orders = got.params["orders"]
    assert orders < 256 and orders in {8, 16, 32, 64, 128}
    assert float(got.params["player_standard_error"].max()) <= tolerance
    assert got.params["perturbations"] == 1 + orders * (players - 1)
    # the orders of a round are the first ones of the full draw: the same values as asking
    # for that many orders
    same = explain(game, ShapleySampling, samples=orders, seed=0)
    torch.testing.assert_close(got.values, same.values, rtol=0, atol=1e-12)
    assert abs(float(got.delta[0])) < 1e-9


def test_tolerance_settings():
    model = TableGame(interaction_game(4, seed=0))
    for method in (KernelSHAP, ShapleySampling):
        for bad in (0, -1.0, math.inf, "1"):
            with pytest.raises(SettingError, match="tolerance"):
                method(model, tolerance=bad)
    with pytest.raises(SettingError, match="sampling"):
        KernelSHAP(model, sampling="uniform")


def test_leverage_weights_stay_finite_where_binomials_overflow():
    """``C(1040, 520) ~ 1e311`` is beyond float64: the weight ``pi(z) N_k / n_k`` is taken
    as ``(P - 1) / (k (P - k)) * (N_k / C(P, k)) / n_k``, which never forms it."""
    players = 1040
    draw = LeverageSampler().draw(4 * players, players, torch.Generator().manual_seed(0), True)
    method = KernelSHAP(TableGame(torch.zeros(2)), samples=4 * players)
    sizes = draw.table.sum(1)
    weights = method.weights(draw, sizes)
    assert bool(torch.isfinite(weights).all()) and bool((weights > 0).all())
    small = torch.minimum(sizes, players - sizes).double()
    n = draw.counts()[draw.stratum[draw.unit]]
    share = torch.where(small == players / 2, 0.5, 1.0)
    expected = (players - 1) / (small * (players - small)) * share / n
    torch.testing.assert_close(weights, expected, rtol=1e-12, atol=0)

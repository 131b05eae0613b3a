"""Shapley values: seed 003's example, the four axioms, a literal reference, ExactShapley and
ShapleySampling on models with known answers."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from attrib.core.errors import AttribError, SettingError
from attrib.methods.perturbation import ExactShapley, ShapleySampling, grid, shapley_values
from attrib.methods.perturbation.coalitions import from_bits, shapley_weights
from tests.models import MLP, GapCNN, LinearModel


class TableGame(nn.Module):
    """A cooperative game as a model: on a 0/1 input ``x`` of ``P`` features it returns
    ``v(S)`` for ``S = {j : x_j = 1}``, read from ``table`` (bit ``j`` of the index is player
    ``j``). With ``x = 1`` and baseline 0, the removal game of the model is ``v`` itself."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.to(torch.float64))
        self.players = table.shape[-1].bit_length() - 1
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = 2 ** torch.arange(self.players, device=x.device)
        index = (x.round().long() * bits).sum(1)
        return self.table[index]


def literal_shapley(table: torch.Tensor) -> torch.Tensor:
    """The mean marginal contribution over all P! orders (a formula independent of the
    subset sum the library implements)."""
    players = table.shape[0].bit_length() - 1
    phi = torch.zeros(players, dtype=torch.float64)
    orders = list(itertools.permutations(range(players)))
    for order in orders:
        coalition = 0
        for j in order:
            phi[j] += table[coalition | (1 << j)] - table[coalition]
            coalition |= 1 << j
    return phi / len(orders)


def random_game(players: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2**players, generator=g, dtype=torch.float64)


# ---- the game ------------------------------------------------------------------------------


def test_seed_003_worked_example():
    # v(empty) = 0, v({1}) = 1, v({2}) = 2, v({1, 2}) = 4 (bit order: {}, {1}, {2}, {1, 2})
    table = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
    # the seed's derivation: phi_1 = 1/2 (v(1) - v()) + 1/2 (v(12) - v(2)) = 1.5; phi_2 = 2.5
    expected = torch.tensor([0.5 * 1 + 0.5 * (4 - 2), 0.5 * 2 + 0.5 * (4 - 1)], dtype=torch.float64)
    assert expected.tolist() == [1.5, 2.5]
    assert shapley_values(table).tolist() == expected.tolist()
    got = ExactShapley(TableGame(table))(torch.ones(1, 2, dtype=torch.float64))
    assert got.params["player_values"][0].tolist() == expected.tolist()
    assert got.values[0].tolist() == expected.tolist()  # one feature per player
    assert got.delta.abs().max() == 0


@pytest.mark.parametrize("players", [1, 2, 3, 5])
def test_subset_formula_equals_mean_over_orders(players):
    table = random_game(players, seed=players)
    torch.testing.assert_close(shapley_values(table), literal_shapley(table), rtol=0, atol=1e-12)


def test_shapley_weights_sum_to_one_over_coalitions_without_a_player():
    for players in range(1, 10):
        w = shapley_weights(players)
        total = sum(math.comb(players - 1, s) * float(w[s]) for s in range(players))
        assert math.isclose(total, 1.0, rel_tol=1e-12)


def test_efficiency():
    table = random_game(6, seed=1)
    phi = shapley_values(table)
    assert math.isclose(float(phi.sum()), float(table[-1] - table[0]), abs_tol=1e-12)


def test_symmetry():
    table = random_game(5, seed=2)
    index = torch.arange(32)
    swapped = (index & ~0b11) | ((index & 1) << 1) | ((index >> 1) & 1)  # exchange players 0, 1
    symmetric = (table + table[swapped]) / 2  # v(S + 0) = v(S + 1) for S without 0 and 1
    phi = shapley_values(symmetric)
    assert math.isclose(float(phi[0]), float(phi[1]), abs_tol=1e-12)
    assert not math.isclose(float(shapley_values(table)[0]), float(shapley_values(table)[1]))


def test_linearity():
    v, w = random_game(5, seed=3), random_game(5, seed=4)
    torch.testing.assert_close(
        shapley_values(v + w), shapley_values(v) + shapley_values(w), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(shapley_values(3.5 * v), 3.5 * shapley_values(v), rtol=0, atol=1e-12)


def test_null_player():
    u = random_game(5, seed=5)
    index = torch.arange(32)
    null = u[index & ~(1 << 3)]  # v(S + 3) = v(S): player 3 brings nothing
    phi = shapley_values(null)
    assert float(phi[3]) == 0.0
    assert float(shapley_values(u)[3]) != 0.0


def test_values_must_cover_every_coalition():
    with pytest.raises(SettingError, match="2\\^P values"):
        shapley_values(torch.zeros(6))


# ---- ExactShapley on models ----------------------------------------------------------------


def test_exact_shapley_of_a_model_is_the_game_of_its_table():
    table = random_game(4, seed=6)
    got = ExactShapley(TableGame(table), batch_size=5)(torch.ones(1, 4, dtype=torch.float64))
    torch.testing.assert_close(got.values[0], literal_shapley(table), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "sampling"])
def test_linear_model_with_zero_baseline_gives_w_times_x(method):
    model = LinearModel(n_in=6, n_out=3).double().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    if method == "exact":
        explainer = ExactShapley(model)
    else:  # every marginal contribution of a linear model is w_j x_j: exact from one order
        explainer = ShapleySampling(model, samples=2, seed=0)
    got = explainer(x, target=[0, 1, 2, 0])
    w = model.linear.weight.detach()[[0, 1, 2, 0]]
    torch.testing.assert_close(got.values, w * x, rtol=0, atol=1e-12)


def test_linear_model_with_a_baseline_and_a_background_set():
    model = LinearModel(n_in=5, n_out=2).double().eval()
    x = torch.randn(3, 5, dtype=torch.float64)
    background = torch.randn(7, 5, dtype=torch.float64)
    w = model.linear.weight.detach()[1]
    got = ExactShapley(model, background=background)(x, target=1)
    torch.testing.assert_close(got.values, w * (x - background.mean(0)), rtol=0, atol=1e-12)
    baseline = torch.randn(5, dtype=torch.float64)
    got = ExactShapley(model, baseline=baseline)(x, target=1)
    torch.testing.assert_close(got.values, w * (x - baseline), rtol=0, atol=1e-12)


def test_background_average_is_the_mean_of_single_baselines():
    model = MLP(n_in=4).double().eval()
    x = torch.randn(2, 4, dtype=torch.float64)
    background = torch.randn(3, 4, dtype=torch.float64)
    together = ExactShapley(model, background=background)(x, target=2)
    each = [ExactShapley(model, baseline=b)(x, target=2).values for b in background]
    torch.testing.assert_close(together.values, torch.stack(each).mean(0), rtol=0, atol=1e-12)
    listed = ExactShapley(model, baseline=list(background))(x, target=2)
    torch.testing.assert_close(listed.values, together.values, rtol=0, atol=1e-12)


def test_exact_shapley_on_a_cnn_grid_matches_the_literal_game():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    got = ExactShapley(model, feature_mask=grid(6), batch_size=7)(x, target="predicted")
    assert got.params["players"] == 4
    cells = grid(6)(x)  # (12, 12) labels 0..3
    coalitions = from_bits(torch.arange(16), 4)[:, cells]  # (16, 12, 12) present pixels
    for i in range(2):
        with torch.no_grad():
            table = model(x[i] * coalitions[:, None])[:, got.target[i]]
        phi = literal_shapley(table)
        torch.testing.assert_close(got.params["player_values"][i], phi, rtol=0, atol=1e-10)
        # "divide": each of the 3 x 6 x 6 features of a cell carries 1/108 of its value
        torch.testing.assert_close(got.values[i, :, :6, :6], (phi[0] / 108).expand(3, 6, 6))
        assert math.isclose(float(got.values[i].sum()), float(phi.sum()), abs_tol=1e-10)
        assert abs(float(got.delta[i])) < 1e-10


def test_too_many_players_for_exact_shapley():
    model = MLP(n_in=8).eval()
    with pytest.raises(SettingError, match="at most 6 players") as caught:
        ExactShapley(model, max_players=6)(torch.randn(2, 8), target=0)
    assert "ShapleySampling or KernelSHAP" in str(caught.value)
    with pytest.raises(AttribError, match="at most 16 players"):
        ExactShapley(GapCNN().eval(), feature_mask=grid(2))(torch.randn(1, 3, 12, 12), target=0)


# ---- ShapleySampling -----------------------------------------------------------------------


def test_sampling_is_efficient_and_reproducible():
    model = MLP(n_in=6).double().eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    a = ShapleySampling(model, samples=8, seed=3)(x, target=1)
    b = ShapleySampling(model, samples=8, seed=3, batch_size=5)(x, target=1)
    c = ShapleySampling(model, samples=8, seed=4)(x, target=1)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=1e-12)
    assert not torch.allclose(a.values, c.values)
    assert a.params["seed"] == 3
    assert float(a.delta.abs().max()) < 1e-12  # marginal contributions telescope


def test_sampling_without_seed_follows_torch_manual_seed():
    model = MLP(n_in=6).double().eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    torch.manual_seed(11)
    a = ShapleySampling(model, samples=4)(x, target=0)
    torch.manual_seed(11)
    b = ShapleySampling(model, samples=4)(x, target=0)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    again = ShapleySampling(model, samples=4, seed=a.params["seed"])(x, target=0)
    torch.testing.assert_close(again.values, a.values, rtol=0, atol=0)


def test_sample_values_do_not_depend_on_the_batch():
    model = MLP(n_in=6).double().eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    batch = ShapleySampling(model, samples=6, seed=0)(x, target=2)
    alone = ShapleySampling(model, samples=6, seed=0)(x[1:2], target=2)
    torch.testing.assert_close(batch.values[1:2], alone.values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("antithetic", [True, False])
def test_standard_error_describes_the_actual_error(antithetic):
    """Over many seeds, the exact value lies within 2 reported standard errors about as often
    as a t-distribution with (draws - 1) degrees of freedom says (91% for 8 draws); and the
    standard error shrinks like 1 / sqrt(samples)."""
    model = MLP(n_in=5).double().eval()
    x = torch.randn(1, 5, dtype=torch.float64)
    exact = ExactShapley(model)(x, target=0).params["player_values"][0]
    covered = []
    samples = 16 if antithetic else 8  # 8 independent draws either way
    for seed in range(40):
        got = ShapleySampling(model, samples=samples, antithetic=antithetic, seed=seed)(x, target=0)
        error = (got.params["player_values"][0] - exact).abs()
        se = got.params["player_standard_error"][0]
        covered.append((error <= 2 * se) | (error < 1e-12))
    coverage = float(torch.stack(covered).double().mean())
    assert 0.75 <= coverage <= 0.99, coverage  # too low: se too small; too high: too large
    small = ShapleySampling(model, samples=8, antithetic=antithetic, seed=0)(x, target=0)
    large = ShapleySampling(model, samples=128, antithetic=antithetic, seed=0)(x, target=0)
    ratio = small.params["player_standard_error"] / large.params["player_standard_error"]
    assert 2.0 < float(ratio.median()) < 8.0  # sqrt(128 / 8) = 4
    assert small.params["standard_error"].shape == x.shape


def test_antithetic_orders_reduce_the_error_on_a_nearly_additive_model():
    model = LinearModel(n_in=6, n_out=2).double().eval()

    class AlmostLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.eval()

        def forward(self, x):
            return model(x) + 0.1 * torch.tanh(x[:, :3].prod(1, keepdim=True))

    x = torch.randn(1, 6, dtype=torch.float64)
    exact = ExactShapley(AlmostLinear())(x, target=0).params["player_values"]
    errors = {}
    for antithetic in (True, False):
        runs = [
            ShapleySampling(AlmostLinear(), samples=4, antithetic=antithetic, seed=s)(x, target=0)
            for s in range(20)
        ]
        errors[antithetic] = torch.stack(
            [(r.params["player_values"] - exact).pow(2).mean() for r in runs]
        ).mean()
    assert errors[True] < errors[False]


def test_sampling_converges_to_exact():
    model = MLP(n_in=6).double().eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    exact = ExactShapley(model)(x, target=1).values
    err = [
        float((ShapleySampling(model, samples=s, seed=0)(x, target=1).values - exact).abs().max())
        for s in (4, 64, 1024)
    ]
    assert err[0] > err[1] > err[2]


@pytest.mark.parametrize(
    ("settings", "argument", "allowed"),
    [
        ({"samples": 0}, "samples", "int >= 1"),
        ({"samples": 3}, "samples", "even int with antithetic=True"),
        ({"samples": 2.0}, "samples", "int >= 1"),
        ({"seed": "1"}, "seed", "an int"),
        ({"spread": "sum"}, "spread", "divide"),
    ],
)
def test_bad_sampling_settings(settings, argument, allowed):
    with pytest.raises(SettingError, match=argument) as caught:
        ShapleySampling(MLP().eval(), **settings)
    assert allowed in str(caught.value)


def test_single_player_gets_the_whole_difference():
    model = MLP(n_in=4).double().eval()
    x = torch.randn(2, 4, dtype=torch.float64)
    mask = torch.zeros(4, dtype=torch.long)
    for method in (
        ExactShapley(model, feature_mask=mask),
        ShapleySampling(model, feature_mask=mask, samples=2, seed=0),
    ):
        got = method(x, target=0)
        with torch.no_grad():
            expected = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
        torch.testing.assert_close(got.params["player_values"][:, 0], expected)

"""The library's contract for every removal method: forward counts, targets, state, results,
masks and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import attrib
from attrib.core.errors import AttribError, InputError, SettingError, TargetError
from attrib.methods.base import Method
from attrib.methods.perturbation import (
    LIME,
    ExactShapley,
    FeatureAblation,
    KernelSHAP,
    Occlusion,
    ShapleySampling,
    grid,
    superpixels,
)
from tests.conftest import assert_state_restored, model_state
from tests.models import MLP, Counting, GapCNN, RaisingNet, ResidualNet, TwoInputNet

# (factory, perturbations per sample and reference), derived from each method's definition
# on 12 x 12 images: windows of 4 every 3 give ceil((12 - 4) / 3) + 1 = 4 positions per side;
# grid(4) has 9 players and grid(6) 4.
METHODS = {
    "occlusion": (lambda m, **k: Occlusion(m, window=4, strides=3, **k), 4 * 4),
    "ablation": (lambda m, **k: FeatureAblation(m, feature_mask=grid(4), **k), 9),
    "exact": (lambda m, **k: ExactShapley(m, feature_mask=grid(6), **k), 2**4 - 1),
    "sampling": (
        lambda m, **k: ShapleySampling(m, feature_mask=grid(6), samples=4, seed=0, **k),
        1 + 4 * (4 - 1),  # v(empty) once, then P - 1 prefixes per order
    ),
    "kernel_shap": (
        lambda m, **k: KernelSHAP(m, feature_mask=grid(4), samples=20, seed=0, **k),
        20 + 1,  # the coalitions and v(empty), the constraint's intercept
    ),
    "lime": (lambda m, **k: LIME(m, feature_mask=grid(4), samples=20, seed=0, **k), 20),
}


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize(("n", "batch_size", "references"), [(2, 7, 1), (3, 16, 2), (1, 1, 1)])
def test_forward_calls_are_ceil_of_rows_over_batch_size(name, n, batch_size, references):
    factory, per_sample = METHODS[name]
    model = Counting(GapCNN())
    x = torch.randn(n, 3, 12, 12)
    settings = {"batch_size": batch_size}
    if references > 1:
        settings["background"] = torch.randn(references, 3, 12, 12)
    got = factory(model, **settings)(x, target="predicted")
    rows = n * per_sample * references
    # one forward at the clean input (ceil(n / batch_size) calls), then the perturbations
    assert len(model.rows) == math.ceil(n / batch_size) + math.ceil(rows / batch_size)
    assert max(model.rows) <= batch_size
    assert sum(model.rows) == n + rows
    if name != "occlusion":
        assert got.params["perturbations"] == per_sample * references


@pytest.mark.parametrize("name", sorted(METHODS))
def test_results_do_not_depend_on_batch_size(name):
    factory, _ = METHODS[name]
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    a = factory(model, batch_size=3)(x, target=1)
    b = factory(model, batch_size=64)(x, target=1)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_predicted_is_decided_once_at_the_clean_input(name):
    """A model whose arg-max flips on every perturbed copy: the explained class must stay the
    one predicted for x."""

    class Flips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.eval()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean = x.flatten(1).mean(1, keepdim=True)
            clean = (x.flatten(1) == 1).all(1, keepdim=True).double()
            return torch.cat([mean + 10 * clean, mean + 5 * (1 - clean)], dim=1)

    factory, _ = METHODS[name]
    x = torch.ones(2, 3, 12, 12, dtype=torch.float64)
    got = factory(Flips())(x, target="predicted")
    assert got.target.tolist() == [0, 0]
    with torch.no_grad():
        torch.testing.assert_close(got.output, Flips()(x))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_result_fields(name):
    factory, _ = METHODS[name]
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    got = factory(model)(x, target=[1, 2])
    assert got.values.shape == x.shape and got.values.dtype == x.dtype
    assert got.target.tolist() == [1, 2]
    assert got.method == type(factory(model)).__name__
    assert got.params["batch_size"] is None
    assert got.baseline is not None
    shapley = name in ("exact", "sampling", "kernel_shap")
    assert (got.delta is not None) == shapley
    if shapley:  # the efficiency gap sum(phi) - (v(all) - v(none))
        assert float(got.delta.abs().max()) < 1e-4
    if name != "occlusion":
        assert got.params["player_values"].shape == (2, got.params["players"])
        # "divide": a sample's values sum to its players' total
        torch.testing.assert_close(
            got.values.double().flatten(1).sum(1),
            got.params["player_values"].sum(1),
            rtol=1e-5,
            atol=1e-6,
        )


@pytest.mark.parametrize("name", sorted(METHODS))
def test_callable_and_single_score_targets(name):
    factory, _ = METHODS[name]
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    by_index = factory(model)(x, target=3)
    by_callable = factory(model)(x, target=lambda out: out[:, 3])

    class OneScore(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.eval()

        def forward(self, x):
            return model(x)[:, 3]

    single = factory(OneScore())(x)
    torch.testing.assert_close(by_callable.values, by_index.values, rtol=0, atol=1e-12)
    torch.testing.assert_close(single.values, by_index.values, rtol=0, atol=1e-12)
    assert callable(by_callable.target) and single.target is None


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_state_left_on_the_model(name):
    factory, _ = METHODS[name]
    model = ResidualNet().eval()
    before = model_state(model)
    factory(model, batch_size=5)(torch.randn(2, 3, 12, 12), target=1)
    assert_state_restored(model, before)


def test_no_state_left_when_the_model_raises():
    model = RaisingNet(where="forward").eval()
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom in forward"):
        ExactShapley(model)(torch.randn(2, 4), target=0)
    assert_state_restored(model, before)


def test_constructors_do_not_touch_the_model():
    class Untouchable(nn.Module):
        def __getattr__(self, name):
            raise AssertionError("constructor touched the model")

    for name, (factory, _) in METHODS.items():
        assert isinstance(factory(Untouchable()), Method), name


def test_a_bad_target_fails_before_any_perturbation():
    model = Counting(GapCNN())
    with pytest.raises(TargetError, match="class indices in \\[0, 5\\)"):
        KernelSHAP(model, feature_mask=grid(4), samples=8, seed=0)(torch.randn(2, 3, 12, 12), 7)
    assert model.rows == [2]  # only the clean forward that found the error


class Recording(nn.Module):
    """Keeps every row it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[torch.Tensor] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.clone())
        return x.flatten(1)[:, :3]


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("huge", [False, True])
def test_masked_rows_hold_exactly_the_input_or_the_baseline(name, huge):
    factory, _ = METHODS[name]
    model = Recording()
    x = torch.randn(2, 3, 12, 12)
    baseline = torch.randn(3, 12, 12)
    if huge:  # x - baseline overflows float32: the rows must still be exact
        x[0, 0, 0, 0], baseline[0, 0, 0] = 3e38, -3e38
    factory(model, baseline=baseline, batch_size=5)(x, target=0)
    rows = torch.cat(model.rows[1:])  # after the clean forward
    from_x = (rows == x[0]) | (rows == x[1])
    assert bool((from_x | (rows == baseline)).all())
    assert bool((rows != baseline).any()) and bool((rows == baseline).any())


# ---- masks ---------------------------------------------------------------------------------


def test_grid_cells_and_their_sizes():
    x = torch.randn(2, 3, 10, 7)
    cells = grid((4, 3))(x)
    # ceil(10 / 4) = 3 rows and ceil(7 / 3) = 3 columns of cells, cut at the far edges
    assert cells.shape == (10, 7) and int(cells.max()) == 8
    assert cells[0, 0] == 0 and cells[0, 3] == 1 and cells[4, 0] == 3 and cells[9, 6] == 8
    got = FeatureAblation(GapCNN(channels=3).eval(), feature_mask=grid((4, 3)))
    result = got(torch.randn(1, 3, 12, 12), target=0)
    assert result.params["players"] == 3 * 4  # 12 / 4 rows times 12 / 3 columns
    assert grid(2)(torch.randn(1, 5)).tolist() == [0, 0, 1, 1, 2]


def test_every_mask_shape_that_broadcasts_is_accepted():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    cells = grid(6)(x)
    reference = ExactShapley(model, feature_mask=cells)(x, target=0).values
    for mask in (
        cells.view(1, 12, 12),
        cells.view(1, 1, 12, 12),
        cells.expand(3, 12, 12),
        cells.expand(2, 3, 12, 12),
        cells.expand(2, 1, 12, 12) * 10 + 5,  # any labels: renumbered in increasing order
    ):
        got = ExactShapley(model, feature_mask=mask)(x, target=0).values
        torch.testing.assert_close(got, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "mask",
    [
        torch.zeros(12, 11, dtype=torch.long),
        torch.zeros(2, 12, 12, dtype=torch.long),
        torch.zeros(3, 1, 12, 12, dtype=torch.long),
        torch.zeros(1, 1, 1, 12, 12, dtype=torch.long),
        torch.zeros(12, 12),
        torch.zeros(12, 12, dtype=torch.bool),
        "cells",
    ],
)
def test_a_feature_mask_of_the_wrong_shape_says_what_is_allowed(mask):
    model = GapCNN().eval()
    with pytest.raises(SettingError, match="feature_mask") as caught:
        FeatureAblation(model, feature_mask=mask)(torch.randn(2, 3, 12, 12), target=0)
    message = str(caught.value)
    assert "the input's shape (2, 3, 12, 12)" in message or "integer tensor" in message
    assert isinstance(caught.value, AttribError)


def test_superpixels_follow_the_image():
    pytest.importorskip("skimage")
    x = torch.zeros(2, 3, 24, 24)
    x[0, 0, :12, :12] = 1  # four quadrants of four colours
    x[0, 1, :12, 12:] = 1
    x[0, 2, 12:, :12] = 1
    x[1] = x[0].flip(-1)  # each image is segmented on its own
    masks = superpixels(n_segments=4, compactness=0.1, sigma=0.0)(x)
    assert masks.shape == (2, 1, 24, 24)
    for i in range(2):
        quadrants = [masks[i, 0, :12, :12], masks[i, 0, :12, 12:], masks[i, 0, 12:, :12]]
        quadrants.append(masks[i, 0, 12:, 12:])
        labels = [q.unique().tolist() for q in quadrants]
        assert all(len(one) == 1 for one in labels)  # a quadrant is one superpixel
        assert len({one[0] for one in labels}) == 4  # and the four differ
    method = FeatureAblation(
        GapCNN().eval(), feature_mask=superpixels(4, compactness=0.1, sigma=0.0)
    )
    assert method(x, target=0).params["players"] == 4


def test_superpixels_refuse_non_images():
    with pytest.raises(SettingError, match="images"):
        FeatureAblation(MLP().eval(), feature_mask=superpixels(4))(torch.randn(2, 8), target=0)


def test_dict_inputs_with_the_default_mask():
    model = TwoInputNet().double().eval()
    x = {
        "image": torch.randn(2, 6, dtype=torch.float64),
        "extra": torch.randn(2, 3, dtype=torch.float64),
    }
    got = ExactShapley(model)(x, target=1)  # 6 + 3 = 9 players, one per feature
    assert got.params["players"] == 9
    assert set(got.values) == {"image", "extra"}
    with torch.no_grad():
        gap = model(**x)[:, 1] - model(**{k: torch.zeros_like(v) for k, v in x.items()})[:, 1]
    total = got.values["image"].sum(1) + got.values["extra"].sum(1)
    torch.testing.assert_close(total, gap, rtol=0, atol=1e-12)


def test_a_background_of_the_wrong_shape_is_refused():
    with pytest.raises(SettingError, match="background"):
        KernelSHAP(MLP().eval(), background=torch.randn(4, 7))(torch.randn(2, 8), target=0)


# ---- spread: how a player's value is put on its features ----------------------------------

PLAYER_METHODS = [name for name in METHODS if name != "occlusion"]  # occlusion has no players


@pytest.mark.parametrize("name", PLAYER_METHODS)
def test_spread_defaults_to_divide(name):
    """Decision: ``spread="divide"`` is the default of every player method. A player's value
    is split evenly over its features, so the map sums to the players' total (for Shapley
    methods: to ``f(x) - f(baseline)``, the efficiency the map can then be checked by);
    ``"copy"`` (Captum's and shap's picture) puts the whole value on every feature."""
    factory, _ = METHODS[name]
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    got = factory(model)(x, target=1)
    assert got.params["spread"] == "divide"
    players = got.params["player_values"]  # (N, P)
    torch.testing.assert_close(got.values.sum((1, 2, 3)), players.sum(1))
    mask = got.params["feature_mask"].view(-1, 12, 12)[0]  # grid: one mask for all samples
    sizes = torch.bincount(mask.reshape(-1)).double() * 3  # features per player, 3 channels
    copied = factory(model, spread="copy")(x, target=1)
    torch.testing.assert_close(copied.params["player_values"], players)
    for j in range(players.shape[1]):
        where = (mask == j).expand(3, 12, 12)
        count = int(where.sum())
        torch.testing.assert_close(
            got.values[:, where], (players[:, j] / sizes[j]).view(-1, 1).expand(2, count)
        )
        torch.testing.assert_close(
            copied.values[:, where], players[:, j].view(-1, 1).expand(2, count)
        )


class _AdditiveCodes(torch.nn.Module):
    """A tabular model over categorical codes: ``f_c(x) = sum_j T_j[x_j, c]``. Additive, so
    every removal method's value of column ``j`` against baseline codes ``b`` is exactly
    ``T_j[x_j, c] - T_j[b_j, c]`` (a leave-one-out drop, and each Shapley marginal)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tables = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(k, 3, dtype=torch.float64)) for k in (4, 5, 3)]
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return sum(t[codes[:, j]] for j, t in enumerate(self.tables))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: attrib.FeatureAblation(m),
        lambda m: attrib.Occlusion(m, window=1),
        lambda m: attrib.ExactShapley(m),
        lambda m: attrib.ShapleySampling(m, samples=4, seed=0),
        lambda m: attrib.KernelSHAP(m, samples=16, seed=0),
    ],
    ids=["ablation", "occlusion", "exact", "sampling", "kernel"],
)
def test_removal_methods_take_integer_codes(make):
    model = _AdditiveCodes().eval()
    codes = torch.tensor([[3, 0, 2], [1, 4, 0]])
    baseline = torch.tensor([0, 2, 1])  # one sample's codes, shared
    result = make(model)(codes, target=2, baseline=baseline)
    tables = [t.detach()[:, 2] for t in model.tables]
    expected = torch.stack(
        [tables[j][codes[:, j]] - tables[j][baseline[j]] for j in range(3)], dim=1
    )
    assert result.values.is_floating_point()  # scores, not codes
    torch.testing.assert_close(result.values.double(), expected, rtol=0, atol=1e-6)


def test_integer_inputs_refuse_what_they_cannot_hold():
    model = _AdditiveCodes().eval()
    codes = torch.tensor([[3, 0, 2]])
    with pytest.raises(SettingError, match="whole number"):
        attrib.FeatureAblation(model, baseline=0.5)(codes, target=0)
    with pytest.raises(SettingError, match="whole number"):
        attrib.FeatureAblation(model, baseline="black")(codes, target=0)
    with pytest.raises(InputError, match="removal method"):  # gradients need real inputs
        attrib.Saliency(model)(codes, target=0)
    with pytest.raises(InputError, match="dict"):  # Captum's habit: a tuple of inputs
        attrib.FeatureAblation(model)((codes, codes), target=0)

"""SmoothGrad, SmoothGrad² and VarGrad: identities, analytic cases, noise, batching, Captum."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attrib.core.errors import SettingError, TargetError
from attrib.core.inputs import Inputs, map_inputs
from attrib.core.result import Attribution
from attrib.core.target import Target
from attrib.methods.base import Method
from attrib.methods.gradient import GradientXInput, Saliency
from attrib.methods.smoothing import SmoothGrad, SmoothGradSquared, VarGrad
from tests.conftest import assert_state_restored, model_state
from tests.models import (
    SMALL_MODELS,
    Counting,
    LinearModel,
    RaisingNet,
    ResidualNet,
    TwoInputNet,
    torchvision_model,
)

WRAPPERS = [SmoothGrad, SmoothGradSquared, VarGrad]


def reduce_draws(per_draw: torch.Tensor, wrapper: type) -> torch.Tensor:
    """The three definitions, literally, over dim 1 (the draws)."""
    if wrapper is SmoothGrad:
        return per_draw.mean(1)
    if wrapper is SmoothGradSquared:
        return (per_draw**2).mean(1)
    return per_draw.var(1, unbiased=False)


class Echo(Method):
    """A method whose attribution is the (noisy) input itself; records every call it gets."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.rows: list[Inputs] = []
        self.targets: list[Target] = []

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        self.rows.append(map_inputs(torch.clone, inputs))
        self.targets.append(target)
        return Attribution(values=map_inputs(torch.clone, inputs), method=self.name)

    def noise(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """The noise of every call so far, ``(N, samples, ...)``, rows in the engine's order."""
        rows = torch.cat(self.rows)
        return (rows - x.repeat_interleave(samples, 0)).view(x.shape[0], samples, *x.shape[1:])


class HalfSquaredNorm(nn.Module):
    """``f(x) = sum(x^2) / 2``, one score per sample: its gradient is ``x`` itself."""

    def __init__(self) -> None:
        super().__init__()
        self.eval()  # like every model in tests/models.py (training mode would warn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).flatten(1).sum(1)


def drawn_noise(x: torch.Tensor, samples: int, **settings) -> torch.Tensor:
    """The noise a wrapper with these settings adds to ``x``, read back through ``Echo``.

    The Gaussian noise depends on the seed, the row and the value range of ``x`` only, not
    on the model, so a one-score model stands in for any.
    """
    echo = Echo(HalfSquaredNorm())
    SmoothGrad(echo, samples=samples, **settings)(x)
    return echo.noise(x, samples)


# --- identities -----------------------------------------------------------------------------


@pytest.mark.parametrize("inner_class", [Saliency, GradientXInput])
@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_one_draw_without_noise_is_the_wrapped_method(name, inner_class):
    factory, make_input = SMALL_MODELS[name]
    model, x = factory(), make_input(3)
    inner = inner_class(model)
    plain = inner(x, target="predicted")
    sg = SmoothGrad(inner, samples=1, sigma=0.0, seed=0)(x, target="predicted")
    sq = SmoothGradSquared(inner, samples=1, sigma=0.0, seed=0)(x, target="predicted")
    var = VarGrad(inner, samples=1, sigma=0.0, seed=0)(x, target="predicted")
    assert torch.equal(sg.values, plain.values)
    assert torch.equal(sq.values, plain.values**2)
    assert torch.equal(var.values, torch.zeros_like(plain.values))
    assert torch.equal(sg.target, plain.target)


def test_linear_model_smoothgrad_is_the_weight_row_and_vargrad_is_zero():
    # the gradient of x @ W.T + b is W[c] wherever it is taken, so noise changes nothing
    model = LinearModel().eval()
    x = torch.randn(4, 6)
    target = [0, 2, 1, 2]
    weight_rows = model.linear.weight.detach()[target]
    settings = {"samples": 9, "sigma": 0.5, "seed": 3, "batch_size": 5}
    sg = SmoothGrad(Saliency(model), **settings)(x, target=target)
    sq = SmoothGradSquared(Saliency(model), **settings)(x, target=target)
    var = VarGrad(Saliency(model), **settings)(x, target=target)
    torch.testing.assert_close(sg.values, weight_rows, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(sq.values, weight_rows**2, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(var.values, torch.zeros_like(x), rtol=0, atol=1e-7)


# --- analytic noisy case: f(x) = |x|^2 / 2 has gradient x -----------------------------------


def test_quadratic_equals_the_reconstructed_noise():
    # the gradient at x + eps_j is x + eps_j, so SG = x + mean_j eps_j, SG2 = mean (x + eps)^2
    # and VG = var_j eps_j, with the very noise the same seed gives (read back through Echo)
    model = HalfSquaredNorm()
    x = torch.randn(3, 2, 5, dtype=torch.float64)
    settings = {"samples": 6, "sigma": 0.3, "absolute_sigma": True, "seed": 11, "batch_size": 4}
    eps = drawn_noise(x, **settings)
    assert eps.abs().min() > 0  # there is noise on every feature
    noisy = x.unsqueeze(1) + eps
    for wrapper in WRAPPERS:
        got = wrapper(Saliency(model), **settings)(x)
        torch.testing.assert_close(got.values, reduce_draws(noisy, wrapper), rtol=1e-12, atol=0)


def test_quadratic_statistics_match_the_gaussian_moments():
    # eps ~ N(0, s^2): E[SG] = x with standard error s / sqrt(n); E[VG] = s^2 (1 - 1/n) with
    # standard deviation about s^2 sqrt(2 / n); E[SG2] = x^2 + s^2 with standard deviation
    # sqrt((4 x^2 s^2 + 2 s^4) / n). Every feature must fall within 5 standard errors.
    model = HalfSquaredNorm()
    n, s = 4000, 0.3
    x = torch.randn(2, 10, dtype=torch.float64)
    settings = {"samples": n, "sigma": s, "absolute_sigma": True, "seed": 0}
    sg = SmoothGrad(Saliency(model), **settings)(x).values
    sq = SmoothGradSquared(Saliency(model), **settings)(x).values
    var = VarGrad(Saliency(model), **settings)(x).values
    assert ((sg - x).abs() < 5 * s / math.sqrt(n)).all()
    assert ((var - s**2 * (1 - 1 / n)).abs() < 5 * s**2 * math.sqrt(2 / n)).all()
    sq_se = torch.sqrt((4 * x**2 * s**2 + 2 * s**4) / n)
    assert ((sq - (x**2 + s**2)).abs() < 5 * sq_se).all()


def test_relative_sigma_is_a_fraction_of_each_samples_range():
    # sample 0 spans 1, sample 1 spans 10: their noise standard deviations are 0.15 and 1.5
    n, d = 2000, 50
    x = torch.stack([torch.linspace(0, 1, d), torch.linspace(-5, 5, d)]).double()
    eps = drawn_noise(x, samples=n, sigma=0.15, seed=1)
    for i, spread in enumerate([1.0, 10.0]):
        s = 0.15 * spread
        var = eps[i].var(0, unbiased=False)  # per feature, over the draws
        # the mean over d independent features has standard deviation s^2 sqrt(2 / (n d))
        assert abs(float(var.mean()) - s**2) < 5 * s**2 * math.sqrt(2 / (n * d)) + s**2 / n
        assert (eps[i].mean(0).abs() < 5 * s / math.sqrt(n)).all()


# --- noise: seeds, chunks, the global RNG ---------------------------------------------------


def test_seed_reproduces_and_a_different_seed_differs():
    model = SMALL_MODELS["mlp"][0]()
    x = torch.randn(3, 8)
    a = SmoothGrad(Saliency(model), samples=4, seed=5)(x, target=1)
    b = SmoothGrad(Saliency(model), samples=4, seed=5)(x, target=1)
    c = SmoothGrad(Saliency(model), samples=4, seed=6)(x, target=1)
    assert torch.equal(a.values, b.values)
    assert not torch.allclose(a.values, c.values)
    assert a.params["seed"] == 5


def test_seeded_noise_leaves_the_global_rng_alone_and_draws_are_nested():
    x = torch.randn(2, 7)
    state = torch.get_rng_state()
    first = drawn_noise(x, samples=3, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    more = drawn_noise(x, samples=6, seed=2)
    # draw j of sample i is seeded by (seed, i, j): asking for more draws keeps the first ones
    assert torch.equal(more[:, :3], first)
    assert not torch.allclose(more[:, 3:], first)


def test_no_seed_follows_torch_manual_seed_and_records_the_seed_used():
    model = SMALL_MODELS["mlp"][0]()
    x = torch.randn(2, 8)
    torch.manual_seed(42)
    a = SmoothGrad(Saliency(model), samples=4)(x, target=0)
    torch.manual_seed(42)
    b = SmoothGrad(Saliency(model), samples=4)(x, target=0)
    c = SmoothGrad(Saliency(model), samples=4)(x, target=0)
    assert torch.equal(a.values, b.values)
    assert not torch.allclose(b.values, c.values)
    again = SmoothGrad(Saliency(model), samples=4, seed=c.params["seed"])(x, target=0)
    assert torch.equal(again.values, c.values)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_results_do_not_depend_on_batch_size(wrapper):
    model = SMALL_MODELS["gap_cnn"][0]().double()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    samples = 5
    results = [
        wrapper(Saliency(model), samples=samples, seed=9, batch_size=size)(x, target=[1, 4])
        for size in (1, 3, 2 * samples)
    ]
    assert results[0].values.abs().max() > 0
    for other in results[1:]:
        torch.testing.assert_close(other.values, results[0].values, rtol=1e-6, atol=1e-12)


def test_memory_is_bounded_by_batch_size_not_samples():
    sizes: list[int] = []

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = SMALL_MODELS["mlp"][0]()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sizes.append(x.shape[0])
            return self.inner(x)

    n, samples, batch_size = 5, 7, 4
    model, x = Counting().eval(), torch.randn(n, 8)
    got = SmoothGrad(Saliency(model), samples=samples, seed=0, batch_size=batch_size)(
        x, target="predicted"
    )
    assert got.target.tolist() == model.inner(x).argmax(1).tolist()  # resolved chunk by chunk
    # the clean forward in ceil(5 / 4) = 2 chunks, then ceil(35 / 4) = 9 noisy chunks
    assert len(sizes) == math.ceil(n / batch_size) + math.ceil(n * samples / batch_size)
    assert max(sizes) <= batch_size
    assert sum(sizes) == n + n * samples


# --- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_per_sample_targets_in_one_call(wrapper):
    model = SMALL_MODELS["mlp"][0]()
    x = torch.randn(3, 8)
    target = [0, 3, 1]
    together = wrapper(Saliency(model), samples=4, seed=0)(x, target=torch.tensor(target))
    assert together.target.tolist() == target
    for i, t in enumerate(target):
        alone = wrapper(Saliency(model), samples=4, seed=0)(x, target=t)
        torch.testing.assert_close(together.values[i], alone.values[i], rtol=1e-6, atol=1e-7)


def test_inner_method_gets_one_target_per_row():
    echo = Echo(SMALL_MODELS["mlp"][0]())
    SmoothGrad(echo, samples=3, seed=0, batch_size=4)(torch.randn(2, 8), target=[2, 1])
    assert torch.cat(echo.targets).tolist() == [2, 2, 2, 1, 1, 1]


def test_predicted_is_decided_at_the_clean_input():
    # logits = x: class 0 at x = (0.1, 0); odd draws move to (-0.2, 0.3), predicted class 1
    model = nn.Linear(2, 2, bias=False).eval()
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[0.1, 0.0]])
    flip = torch.tensor([-0.3, 0.3])

    def alternating(rows, sample, draw):
        return (draw % 2).to(rows.dtype).unsqueeze(1) * flip

    assert Saliency(model)(x + flip, target="predicted").target.tolist() == [1]
    got = SmoothGrad(Saliency(model), samples=4, noise=alternating)(x, target="predicted")
    assert got.target.tolist() == [0]
    # the gradient of logit 0 is (1, 0) at every copy; re-deciding per copy would give (.5, .5)
    torch.testing.assert_close(got.values, torch.tensor([[1.0, 0.0]]))


def test_callable_and_none_targets():
    model = SMALL_MODELS["mlp"][0]()
    x = torch.randn(2, 8)
    by_class = SmoothGrad(Saliency(model), samples=3, seed=0)(x, target=2)
    by_callable = SmoothGrad(Saliency(model), samples=3, seed=0)(x, target=lambda out: out[:, 2])
    torch.testing.assert_close(by_callable.values, by_class.values)
    assert callable(by_callable.target)
    scalar = HalfSquaredNorm()
    none = SmoothGrad(Saliency(scalar), samples=3, seed=0)(x, target=None)
    assert none.target is None and none.values.shape == x.shape


# --- every model, dict inputs, any shape the wrapped method returns -------------------------


@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_every_small_model_matches_a_literal_loop_over_draws(name):
    factory, make_input = SMALL_MODELS[name]
    model, x = factory(), make_input(2)
    samples, settings = 3, {"seed": 4, "sigma": 0.2, "batch_size": 4}
    eps = drawn_noise(x, samples, **settings)
    target = Saliency(model)(x, target="predicted").target
    per_draw = torch.stack(
        [Saliency(model)(x + eps[:, j], target=target).values for j in range(samples)], dim=1
    )
    for wrapper in WRAPPERS:
        got = wrapper(Saliency(model), samples=samples, **settings)(x, target="predicted")
        want = reduce_draws(per_draw, wrapper)
        torch.testing.assert_close(got.values, want, rtol=1e-5, atol=1e-6)
        assert torch.equal(got.target, target)


def test_dict_inputs_with_a_noise_function():
    model = TwoInputNet().eval()
    x = {"image": torch.randn(2, 6), "extra": torch.randn(2, 3)}
    samples = 4
    table = {k: torch.randn(2, samples, *v.shape[1:]) for k, v in x.items()}

    def from_table(rows, sample, draw):
        return {k: table[k][sample, draw] for k in rows}

    per_draw = [
        Saliency(model)({k: x[k] + table[k][:, j] for k in x}, target=[1, 3]).values
        for j in range(samples)
    ]
    for wrapper in WRAPPERS:
        got = wrapper(Saliency(model), samples=samples, noise=from_table, batch_size=3)(
            x, target=[1, 3]
        )
        assert set(got.values) == {"image", "extra"}
        for k in x:
            want = reduce_draws(torch.stack([p[k] for p in per_draw], dim=1), wrapper)
            torch.testing.assert_close(got.values[k], want, rtol=1e-5, atol=1e-6)


def test_dict_inputs_with_gaussian_noise_per_input_range():
    x = {"small": torch.rand(1, 400).double(), "large": 100 * torch.rand(1, 400).double()}
    echo = Echo(lambda small, large: small.sum(1) + large.sum(1))
    SmoothGrad(echo, samples=50, sigma=0.1, seed=0)(x)
    unit = {}
    for key in x:
        eps = torch.cat([r[key] for r in echo.rows]) - x[key]
        spread = float(x[key].max() - x[key].min())
        # 20000 draws: the empirical standard deviation is within 2% of 0.1 * spread
        assert abs(float(eps.std()) / (0.1 * spread) - 1) < 0.02
        unit[key] = eps.flatten() / (0.1 * spread)
    # the two inputs get independent noise: correlation within 5 / sqrt(20000) of zero
    correlation = torch.corrcoef(torch.stack([unit["small"], unit["large"]]))[0, 1]
    assert abs(float(correlation)) < 5 / math.sqrt(unit["small"].numel())


class ChannelSumMap(Method):
    """A CAM-like method: ``(N, H, W)`` maps with no channel dimension, and a delta."""

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        return Attribution(
            values=inputs.sum(1),
            delta=inputs.flatten(1).sum(1) - 1.0,
            method=self.name,
            channel_dim=None,
        )


def test_any_shape_the_wrapped_method_returns_and_the_mean_delta():
    model = SMALL_MODELS["gap_cnn"][0]()
    x = torch.randn(2, 3, 12, 12)
    samples = 5
    table = torch.randn(2, samples, 3, 12, 12)
    settings = {"samples": samples, "noise": lambda rows, i, j: table[i, j], "batch_size": 3}
    maps = (x.unsqueeze(1) + table).sum(2)  # (N, samples, H, W)
    for wrapper in WRAPPERS:
        got = wrapper(ChannelSumMap(model), **settings)(x, target=0)
        assert got.channel_dim is None and got.values.shape == (2, 12, 12)
        torch.testing.assert_close(got.values, reduce_draws(maps, wrapper))
        if wrapper is SmoothGrad:
            want = ((x.unsqueeze(1) + table).flatten(2).sum(2) - 1.0).mean(1)
            torch.testing.assert_close(got.delta, want)
        else:
            assert got.delta is None


def test_smoothgrad_of_integrated_gradients_on_a_linear_model():
    # IG of x @ W.T + b from the zero baseline is x * W[c]; at x + eps_j it is (x + eps_j) * W[c],
    # so SG = (x + mean_j eps_j) * W[c], and the mean completeness gap is zero
    from attrib.methods.path import IntegratedGradients

    model = LinearModel().double().eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    settings = {"samples": 5, "seed": 8, "batch_size": 4}
    eps = drawn_noise(x, **settings)
    got = SmoothGrad(IntegratedGradients(model, steps=4), **settings)(x, target=[0, 1, 2])
    weight_rows = model.linear.weight.detach()[[0, 1, 2]]
    torch.testing.assert_close(got.values, (x + eps.mean(1)) * weight_rows)
    assert got.delta.shape == (3,) and float(got.delta.abs().max()) < 1e-10
    assert got.method == "SmoothGrad(IntegratedGradients)" and got.params["inner"]["steps"] == 4


# --- the result, the model's state ----------------------------------------------------------


def test_result_records_method_settings_target_and_clean_output():
    model = SMALL_MODELS["mlp"][0]()
    x = torch.randn(3, 8)
    inner = Saliency(model, abs=True)
    got = VarGrad(inner, samples=4, sigma=0.2, seed=1, batch_size=5)(x, target="predicted")
    assert got.method == "VarGrad(Saliency)"
    assert SmoothGradSquared(inner).name == "SmoothGradSquared(Saliency)"
    assert got.params["samples"] == 4 and got.params["sigma"] == 0.2
    assert got.params["seed"] == 1 and got.params["absolute_sigma"] is False
    assert got.params["inner"] == inner.settings()
    with torch.no_grad():
        clean = model(x)
    torch.testing.assert_close(got.output, clean)
    assert got.target.tolist() == clean.argmax(1).tolist()
    assert got.channel_dim == 1
    assert "Saliency(abs=True)" in repr(VarGrad(inner, samples=4))


def test_constructors_do_not_touch_the_model():
    class Untouchable(nn.Module):
        def __getattr__(self, name):
            raise AssertionError("constructor touched the model")

    for wrapper in WRAPPERS:
        wrapper(Saliency(Untouchable()), samples=3, seed=0)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_no_state_left_on_the_model(wrapper):
    model = ResidualNet().eval()
    before = model_state(model)
    wrapper(Saliency(model), samples=3, seed=0, batch_size=4)(torch.randn(2, 3, 8, 8), target=1)
    assert_state_restored(model, before)


def test_no_state_left_when_the_model_raises():
    model = RaisingNet(where="backward").eval()
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom in backward"):
        SmoothGrad(Saliency(model), samples=2, seed=0)(torch.randn(2, 4), target=0)
    assert_state_restored(model, before)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "argument", "allowed"),
    [
        ({"samples": 0}, "samples", "int >= 1"),
        ({"samples": 2.5}, "samples", "int >= 1"),
        ({"samples": True}, "samples", "int >= 1"),
        ({"sigma": -0.1}, "sigma", "finite number >= 0"),
        ({"sigma": float("nan")}, "sigma", "finite number >= 0"),
        ({"sigma": "0.1"}, "sigma", "finite number >= 0"),
        ({"seed": 1.5}, "seed", "an int"),
        ({"seed": "0"}, "seed", "an int"),
        ({"noise": 0.1}, "noise", "a function noise(rows, sample, draw)"),
    ],
)
def test_bad_settings_say_what_is_allowed(settings, argument, allowed):
    model = SMALL_MODELS["mlp"][0]()
    with pytest.raises(SettingError, match=argument) as caught:
        SmoothGrad(Saliency(model), **settings)
    assert allowed in str(caught.value)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrapping_something_that_is_not_a_method(wrapper):
    model = SMALL_MODELS["mlp"][0]()
    with pytest.raises(SettingError, match="attrib method instance") as caught:
        wrapper(model)
    assert "Saliency(model)" in str(caught.value)
    with pytest.raises(SettingError, match="Construct it with the model first"):
        wrapper(Saliency)


def test_noise_of_the_wrong_shape_is_refused():
    model = SMALL_MODELS["mlp"][0]()
    sg = SmoothGrad(Saliency(model), samples=2, noise=lambda rows, i, j: torch.zeros(8))
    with pytest.raises(SettingError, match=r"rows' shape \(2, 8\)"):
        sg(torch.randn(1, 8), target=0)


def test_a_bad_target_fails_at_the_first_noisy_forward():
    counted = Counting(SMALL_MODELS["mlp"][0]())  # 3 classes
    with pytest.raises(TargetError, match="class indices in"):
        SmoothGrad(Saliency(counted), samples=3, batch_size=2)(torch.randn(2, 8), target=4)
    assert counted.rows == [2]  # the first chunk's forward finds it; no further rows ran
    with pytest.raises(TargetError, match=r"one class per sample \(2 items\)"):
        SmoothGrad(Saliency(counted), samples=3)(torch.randn(2, 8), target=[0, 1, 2])
    assert counted.rows == [2]  # a wrong length fails before any forward


def test_explicit_targets_spend_no_forward_on_the_clean_input():
    counted = Counting(SMALL_MODELS["mlp"][0]())
    x = torch.randn(2, 8)
    got = SmoothGrad(Saliency(counted), samples=3, seed=0, batch_size=4)(x, target=[2, 0])
    assert sum(counted.rows) == 2 * 3  # 2 samples x 3 noisy copies, and nothing else
    assert got.output is None and got.target.tolist() == [2, 0]
    counted.rows.clear()
    got = SmoothGrad(Saliency(counted), samples=3, seed=0, batch_size=4)(x, target="predicted")
    # "predicted" is decided by one forward at the clean x, then the 6 noisy rows
    assert counted.rows[0] == 2 and sum(counted.rows[1:]) == 2 * 3
    with torch.no_grad():
        clean = counted.inner(x)
    torch.testing.assert_close(got.output, clean)
    assert got.target.tolist() == clean.argmax(1).tolist()


# --- Captum ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("wrapper", "nt_type"),
    [(SmoothGrad, "smoothgrad"), (SmoothGradSquared, "smoothgrad_sq"), (VarGrad, "vargrad")],
)
def test_agrees_with_captum_noise_tunnel_given_the_same_noise(wrapper, nt_type):
    """Captum's NoiseTunnel, fed with the very noise it draws.

    With ``nt_samples_batch_size=None`` Captum draws all noise in one call,
    ``torch.normal(0, stdev_tensor)`` of shape ``(N * samples, ...)`` from torch's global RNG,
    and orders rows ``x.repeat_interleave(samples)``: row ``i * samples + j`` is draw ``j`` of
    sample ``i``, which is our engine's row order. We replay that draw after the same
    ``torch.manual_seed``, check that Captum's model really saw ``x + eps`` (bit for bit), and
    hand ``eps`` to our wrapper through ``noise=``. Captum's Saliency takes ``abs`` by default;
    ours is signed, so Captum runs with ``abs=False``. float64 keeps VarGrad, which Captum
    computes as ``E[a^2] - E[a]^2``, free of cancellation.
    """
    from captum.attr import NoiseTunnel
    from captum.attr import Saliency as CaptumSaliency

    model, x = torchvision_model("resnet18")
    model, x = model.double(), x.double()
    samples, stdev, target = 3, 0.2, [3, 999]
    seen: list[torch.Tensor] = []

    class Recording(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, rows: torch.Tensor) -> torch.Tensor:
            seen.append(rows.detach().clone())
            return self.inner(rows)

    shape = (x.shape[0] * samples, *x.shape[1:])
    torch.manual_seed(123)
    eps = torch.normal(0, torch.tensor(stdev).repeat(shape))  # Captum's draw, replayed
    torch.manual_seed(123)
    theirs = NoiseTunnel(CaptumSaliency(Recording())).attribute(
        x, nt_type=nt_type, nt_samples=samples, stdevs=stdev, target=target, abs=False
    )
    (rows,) = seen
    assert torch.equal(rows, x.repeat_interleave(samples, 0) + eps)

    def replayed(rows, sample, draw):
        return eps[sample * samples + draw].to(rows.dtype)

    ours = wrapper(Saliency(model), samples=samples, noise=replayed, batch_size=3)(x, target=target)
    scale = float(theirs.abs().max())
    assert scale > 0
    torch.testing.assert_close(ours.values, theirs, rtol=1e-4, atol=1e-4 * scale)

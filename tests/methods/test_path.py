"""Integrated gradients, expected gradients and blur IG: analytic cases, axioms, peers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attrib import GradientXInput, Saliency
from attrib.core.errors import AttribError, SettingError
from attrib.methods.baselines import gaussian_blur
from attrib.methods.path import BlurIG, ExpectedGradients, IntegratedGradients
from attrib.methods.quadrature import RULES, gauss_legendre, quadrature
from tests.conftest import assert_state_restored, model_state
from tests.models import (
    SMALL_MODELS,
    Counting,
    DictOutputNet,
    LinearModel,
    TwoInputNet,
    blob_images,
    trained_cnn,
)

RULE_NAMES = [
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gauss_legendre",
]


# ---- quadrature ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules_integrate_constants_and_stay_in_the_unit_interval(name):
    alphas, weights = quadrature(name, 7)
    assert math.isclose(float(weights.sum()), 1.0, rel_tol=1e-12)
    assert float(alphas.min()) >= 0 and float(alphas.max()) <= 1


def test_gauss_legendre_is_exact_to_degree_2n_minus_1():
    alphas, weights = gauss_legendre(5)
    for degree in range(10):  # integral_0^1 a^d = 1 / (d + 1)
        assert math.isclose(
            float((weights * alphas**degree).sum()), 1 / (degree + 1), rel_tol=1e-12
        )
    assert not math.isclose(float((weights * alphas**10).sum()), 1 / 11, rel_tol=1e-9)


def test_rule_nodes_follow_their_definitions():
    assert quadrature("riemann_left", 4)[0].tolist() == [0, 0.25, 0.5, 0.75]
    assert quadrature("riemann_right", 4)[0].tolist() == [0.25, 0.5, 0.75, 1]
    assert quadrature("riemann_middle", 4)[0].tolist() == [0.125, 0.375, 0.625, 0.875]
    alphas, weights = quadrature("riemann_trapezoid", 5)
    assert alphas.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert weights.tolist() == [0.125, 0.25, 0.25, 0.25, 0.125]


# ---- analytic cases --------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("baseline", [0.0, 0.5, "black", "gray", "uniform", "tensor", "several"])
def test_linear_model_ig_is_x_minus_baseline_times_w(rule, baseline):
    model = LinearModel(n_in=6, n_out=3).double().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    spec = {
        "tensor": torch.randn(6, dtype=torch.float64),
        "several": [0.0, torch.randn(4, 6, dtype=torch.float64)],
    }.get(baseline, baseline)
    result = IntegratedGradients(model, steps=5, rule=rule, baseline=spec, seed=0)(
        x, target=[0, 1, 2, 0]
    )
    w = model.linear.weight.detach()[[0, 1, 2, 0]]
    baselines = result.baseline if isinstance(result.baseline, list) else [result.baseline]
    expected = torch.stack([(x - b) * w for b in baselines]).mean(0)
    torch.testing.assert_close(result.values, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        result.delta, torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_named_baselines_follow_the_value_range():
    x = torch.tensor([[0.25, 0.75, 0.5]])
    model = LinearModel(n_in=3, n_out=1).eval()
    black = IntegratedGradients(model, baseline="black")(x).baseline
    gray = IntegratedGradients(model, baseline="gray", value_range=(0.0, 1.0))(x).baseline
    assert black.tolist() == [[0.25, 0.25, 0.25]] and gray.tolist() == [[0.5, 0.5, 0.5]]


def sensitivity_model() -> nn.Module:
    """The seeds' f(x) = 1 - ReLU(1 - x)."""

    class F(nn.Module):
        def forward(self, x):
            return 1 - torch.relu(1 - x)

    return F().eval()


def test_the_seeds_sensitivity_example():
    model = sensitivity_model()
    x = torch.tensor([[2.0]])
    assert Saliency(model)(x).values.item() == 0.0
    assert GradientXInput(model)(x).values.item() == 0.0
    ig = IntegratedGradients(model, steps=32)(x)  # f(2) - f(0) = 1
    assert abs(ig.values.item() - 1.0) < 1e-3
    # a Riemann rule sees the kink at alpha = 1/2 coarsely; the adaptive rule finds it
    riemann = IntegratedGradients(model, steps=32, rule="riemann_right")(x)
    assert abs(riemann.values.item() - 2 * 15 / 32) < 1e-6  # 15 of 32 nodes before the kink
    adaptive = IntegratedGradients(model, steps=4, rule="riemann_right", tolerance=1e-4)(x)
    assert abs(adaptive.values.item() - 1.0) < 1e-4


def test_symmetry_for_symmetric_inputs():
    class F(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x[:, 0] + x[:, 1])

    x = torch.tensor([[0.7, 0.7], [-1.2, -1.2]], dtype=torch.float64)
    result = IntegratedGradients(F().eval(), steps=16)(x)
    torch.testing.assert_close(result.values[:, 0], result.values[:, 1], rtol=1e-12, atol=0)


def test_implementation_invariance():
    """ReLU is positively homogeneous: halving the hidden layer and doubling the head gives
    the same function, built differently; IG must not see the difference."""
    torch.manual_seed(3)
    a = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)).double().eval()
    b = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Identity(), nn.Linear(7, 2)).double().eval()
    perm = torch.randperm(7)
    with torch.no_grad():
        b[0].weight.copy_(a[0].weight[perm] / 2)
        b[0].bias.copy_(a[0].bias[perm] / 2)
        b[3].weight.copy_(a[2].weight[:, perm] * 2)
        b[3].bias.copy_(a[2].bias)
    x = torch.randn(6, 5, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x))
    ig_a = IntegratedGradients(a, steps=64)(x, target=1)
    ig_b = IntegratedGradients(b, steps=64)(x, target=1)
    torch.testing.assert_close(ig_a.values, ig_b.values, rtol=1e-9, atol=1e-12)


# ---- completeness on a trained network ---------------------------------------------------


def relative_gaps(model, x, result):
    classes = result.target.view(-1, 1)
    with torch.no_grad():
        span = model(x).gather(1, classes) - model(torch.zeros_like(x)).gather(1, classes)
    return (result.delta / span.squeeze(1).double()).abs()


def test_completeness_on_a_trained_cnn():
    model = trained_cnn()
    x, _ = blob_images(8, seed=11)
    fixed = IntegratedGradients(model, steps=32)(x, target="predicted")
    assert relative_gaps(model, x, fixed).max() <= 0.01
    adaptive = IntegratedGradients(model, steps=8, tolerance=1e-3)(x, target="predicted")
    assert relative_gaps(model, x, adaptive).max() <= 1e-3
    evaluations = adaptive.params["evaluations"]
    assert evaluations.shape == (8,) and bool((evaluations >= 8).all())
    # the adaptive rule spends fewer gradient evaluations than fixed Gauss-Legendre needs
    fixed_128 = IntegratedGradients(model, steps=128)(x, target="predicted")
    assert relative_gaps(model, x, fixed_128).max() > 1e-3 or evaluations.max() < 128
    assert evaluations.float().mean() < 128


def test_adaptive_refinement_starts_from_8_nodes_unless_told():
    model = trained_cnn()
    x, _ = blob_images(4, seed=11)
    assert IntegratedGradients(model).settings()["steps"] == 32
    default = IntegratedGradients(model, tolerance=1e-3)(x, target="predicted")
    assert default.params["steps"] == 8
    torch.testing.assert_close(
        default.values,
        IntegratedGradients(model, steps=8, tolerance=1e-3)(x, target="predicted").values,
    )
    told = IntegratedGradients(model, steps=16, tolerance=1e-3)(x, target="predicted")
    assert told.params["steps"] == 16 and bool((told.params["evaluations"] >= 16).all())


# ---- engine properties -------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_chunk_size_invariance(batch_size):
    x, _ = blob_images(3, seed=2)
    x = x.double()
    double = _double(trained_cnn())
    reference = IntegratedGradients(double, steps=12)(x, target=[0, 1, 2])
    got = IntegratedGradients(double, steps=12, batch_size=batch_size)(x, target=[0, 1, 2])
    torch.testing.assert_close(got.values, reference.values, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(got.delta, reference.delta, rtol=1e-6, atol=1e-12)


def _double(model):
    import copy

    return copy.deepcopy(model).double().eval()


def test_rows_per_forward_never_exceed_batch_size_whatever_the_steps():
    model = trained_cnn()
    sizes = []
    handle = model.register_forward_pre_hook(lambda m, a: sizes.append(a[0].shape[0]))
    try:
        IntegratedGradients(model, steps=256, batch_size=16)(blob_images(2)[0], target=0)
    finally:
        handle.remove()
    assert max(sizes) <= 16
    # 2 x 256 gradient rows in 32 forwards, plus one forward at x and one at the baselines
    assert len(sizes) == math.ceil(2 * 256 / 16) + 2


@pytest.mark.parametrize(
    "baseline, value_range, shared",
    [(0.0, None, True), ("gray", (0.0, 1.0), True), ("gray", None, False), ("noise", None, False)],
)
def test_a_baseline_shared_by_every_sample_is_run_once_for_delta(baseline, value_range, shared):
    inner = _double(trained_cnn())
    model = Counting(inner)
    x = blob_images(3)[0].double()
    if baseline == "noise":
        baseline = torch.rand_like(x)
    target = torch.tensor([0, 1, 2])
    method = IntegratedGradients(model, steps=8, baseline=baseline, value_range=value_range)
    result = method(x, target=target)
    # forwards: at x (3 rows), at the baselines, then the gradient rows
    assert model.rows[1] == (1 if shared else 3)
    start = result.baseline.expand_as(x)
    with torch.no_grad():
        gap = (inner(x) - inner(start)).gather(1, target[:, None]).squeeze(1)
    expected = result.values.flatten(1).sum(1) - gap
    torch.testing.assert_close(result.delta, expected, rtol=1e-9, atol=1e-12)


def test_a_callable_target_scores_every_baseline_row_itself():
    # a callable may score each row its own way (a per-sample mask, say), so a shared
    # baseline is not collapsed to one row for it
    inner = _double(trained_cnn())
    model = Counting(inner)
    x = blob_images(3)[0].double()

    def score(out):
        return out[:, 1] - out[:, 0]

    result = IntegratedGradients(model, steps=8)(x, target=score)
    assert model.rows[1] == 3
    with torch.no_grad():
        gap = score(inner(x)) - score(inner(torch.zeros_like(x)))
    expected = result.values.flatten(1).sum(1) - gap
    torch.testing.assert_close(result.delta, expected, rtol=1e-9, atol=1e-12)


def test_a_shared_baseline_of_a_dict_output_model_reads_each_samples_class():
    model = DictOutputNet().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    model.double()
    target = torch.tensor([0, 2, 1, 2])
    got = IntegratedGradients(model, steps=32, output="logits")(x, target=target)
    with torch.no_grad():
        logits = model(x)["logits"] - model(torch.zeros(1, 6, dtype=torch.float64))["logits"]
    gap = logits.gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(got.delta, got.values.sum(1) - gap, rtol=1e-9, atol=1e-12)


def test_every_small_model_and_dict_inputs():
    for name, (factory, make_input) in SMALL_MODELS.items():
        model = factory()
        x = make_input(3)
        before = model_state(model)
        result = IntegratedGradients(model, steps=64)(x, target="predicted")
        assert_state_restored(model, before)
        scale = result.values.abs().sum() + 1e-6
        assert float(result.delta.abs().max() / scale) < 0.05, name
    model = TwoInputNet().eval()
    x = {"image": torch.randn(2, 6), "extra": torch.randn(2, 3)}
    result = IntegratedGradients(model, steps=64)(x, target=[0, 3])
    assert set(result.values) == {"image", "extra"}
    assert float(result.delta.abs().max()) < 1e-3


# ---- expected gradients and blur IG --------------------------------------------------------


def test_expected_gradients_on_a_linear_model():
    model = LinearModel(n_in=6, n_out=3).double().eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    reference = torch.randn(1, 6, dtype=torch.float64).repeat(5, 1)  # one point, 5 times
    result = ExpectedGradients(model, reference, samples=8, seed=0)(x, target=[2, 1])
    w = model.linear.weight.detach()[[2, 1]]
    torch.testing.assert_close(result.values, (x - reference[0]) * w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        result.delta, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0
    )
    # several references: still exact in expectation for a linear model, delta 0 per draw
    spread = torch.randn(10, 6, dtype=torch.float64)
    result = ExpectedGradients(model, spread, samples=16, seed=1)(x, target=[2, 1])
    torch.testing.assert_close(
        result.delta, torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0
    )


def test_expected_gradients_scores_references_in_one_forward_for_per_sample_classes():
    """f at the drawn references takes one forward over the distinct references, whatever the
    targets: with per-sample classes each sample's class is read off the same logits. Calls:
    f(x), one chunk of gradient rows, the references: 3 (one forward per sample before)."""
    model = LinearModel(n_in=6, n_out=4).double().eval()
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    x = torch.randn(4, 6, dtype=torch.float64)
    refs = torch.randn(5, 6, dtype=torch.float64)
    result = ExpectedGradients(model, refs, samples=4, seed=3, batch_size=64)(
        x, target=[0, 3, 1, 3]
    )
    assert len(calls) == 3
    # exact for a linear model: the gathered reference scores must be each sample's class
    torch.testing.assert_close(
        result.delta, torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0
    )
    # delta=False skips that forward and leaves the values as they were
    calls.clear()
    without = ExpectedGradients(model, refs, samples=4, seed=3, batch_size=64, delta=False)(
        x, target=[0, 3, 1, 3]
    )
    assert len(calls) == 2
    assert without.delta is None
    torch.testing.assert_close(without.values, result.values, rtol=0, atol=0)


def test_expected_gradients_is_reproducible_and_converges():
    model = trained_cnn()
    x, _ = blob_images(2, seed=4)
    refs, _ = blob_images(16, seed=9)
    a = ExpectedGradients(model, refs, samples=8, seed=0)(x, target=0)
    b = ExpectedGradients(model, refs, samples=8, seed=0)(x, target=0)
    c = ExpectedGradients(model, refs, samples=8, seed=1)(x, target=0)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)


# radius 12: direct correlation; radius 23: matrix products (the way of BlurIG's default
# setting on 224 x 224 images), where the blur changes faster near sigma = 0 than 32 nodes
# can follow
@pytest.mark.parametrize("size,max_sigma,steps", [(10, 4.0, 32), (24, 10.0, 128)])
def test_blur_ig_on_a_linear_model_is_w_times_x_minus_its_blur(size, max_sigma, steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 2)).double().eval()
    x = torch.rand(2, 3, size, size, dtype=torch.float64)
    result = BlurIG(model, max_sigma=max_sigma, steps=steps)(x, target=1)
    w = model[1].weight.detach()[1].view(3, size, size)
    expected = w * (x - gaussian_blur(x, max_sigma))
    torch.testing.assert_close(result.values, expected, rtol=1e-4, atol=1e-6)
    # the only error left is the quadrature of d blur / d sigma: small against f(x) - f(x')
    span = (model(x) - model(gaussian_blur(x, max_sigma)))[:, 1].detach()
    assert float((result.delta / span).abs().max()) < 1e-3
    refined = BlurIG(model, max_sigma=max_sigma, steps=8, tolerance=1e-6)(x, target=1)
    assert float((refined.delta / span).abs().max()) <= 1e-6


def test_blur_ig_scores_its_path_end_with_the_input_forward():
    """The blur path ends at the input (sigma 0 is the identity), so ``f(gamma(1))`` is the
    input's own forward: 2 forward rows per image (``x`` and its blurred start), not 3."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2)).double().eval()
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append((o.shape[0], o.requires_grad)))
    x = torch.rand(3, 3, 12, 12, dtype=torch.float64)
    result = BlurIG(model, max_sigma=8.0, steps=16, batch_size=100)(x, target=1)
    assert sum(n for n, grad in rows if not grad) == 2 * 3
    assert sum(n for n, grad in rows if grad) == 16 * 3
    # and the gap is still against f(x) itself
    span = (model(x) - model(gaussian_blur(x, 8.0)))[:, 1].detach()
    total = result.values.flatten(1).sum(1)
    torch.testing.assert_close(result.delta, total - span, rtol=0, atol=1e-12)


def test_blur_ig_completeness_on_a_trained_cnn():
    model = trained_cnn()
    x, _ = blob_images(4, seed=3)
    result = BlurIG(model, max_sigma=6.0, steps=32)(x, target="predicted")
    classes = result.target.view(-1, 1)
    with torch.no_grad():
        span = model(x).gather(1, classes) - model(gaussian_blur(x, 6.0)).gather(1, classes)
    assert float((result.delta / span.squeeze(1)).abs().max()) < 0.02


# ---- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, word",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"rule": "simpson"}, "gauss_legendre"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"baseline": "dark"}, "black"),
        ({"path": 3}, "path"),
    ],
)
def test_bad_settings(settings, word):
    with pytest.raises(SettingError, match=word):
        IntegratedGradients(LinearModel().eval(), **settings)(torch.randn(2, 6), target=0)


def test_baseline_of_the_wrong_shape():
    with pytest.raises(AttribError, match=r"\(2, 6\)"):
        IntegratedGradients(LinearModel().eval(), baseline=torch.zeros(5))(
            torch.randn(2, 6), target=0
        )


def test_bad_expected_gradients_and_blur_settings():
    model = LinearModel().eval()
    with pytest.raises(SettingError, match="samples"):
        ExpectedGradients(model, torch.zeros(3, 6), samples=0)
    with pytest.raises(SettingError, match="delta"):
        ExpectedGradients(model, torch.zeros(3, 6), delta="no")
    with pytest.raises(SettingError, match="references"):
        ExpectedGradients(model, torch.zeros(3, 5))(torch.randn(2, 6), target=0)
    with pytest.raises(SettingError, match="max_sigma"):
        BlurIG(model, max_sigma=-1)
    with pytest.raises(SettingError, match="images"):
        BlurIG(model)(torch.randn(2, 6), target=0)


def test_adaptive_reports_every_gradient_evaluation_it_spends():
    model = sensitivity_model()
    rows = []
    model.register_forward_pre_hook(lambda m, a: rows.append((a[0].shape[0], a[0].requires_grad)))
    result = IntegratedGradients(model, steps=4, rule="riemann_right", tolerance=1e-4)(
        torch.tensor([[2.5]])  # kink at alpha = 0.4: bisection is needed
    )
    spent = sum(n for n, with_grad in rows if with_grad)  # gradient rows, not forwards
    assert int(result.params["evaluations"][0]) == spent

"""DeepLIFT (Rescale) and DeepLIFT-SHAP: reference form, summation-to-delta, Captum, state."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from attrib import GradientXInput
from attrib.core.errors import LayerError, SettingError
from attrib.methods.propagation import DeepLIFT
from tests.conftest import assert_state_restored, model_state
from tests.methods.test_propagation_reference import cnn, cnn_input, deeplift, mlp
from tests.models import (
    SMALL_MODELS,
    FunctionalReLUNet,
    GapCNN,
    LinearModel,
    RaisingNet,
    TwoInputNet,
    torchvision_model,
)
from tests.peers import assert_matches_peer


@pytest.mark.parametrize(
    "make", [mlp, lambda: mlp(activation=nn.Tanh), cnn, lambda: cnn(pool="avg")]
)
def test_matches_the_literal_rescale_rule(make):
    model = make()
    x = torch.randn(3, 6, dtype=torch.float64) if model[0].__class__ is nn.Linear else None
    x = cnn_input(3) if x is None else x
    baseline = torch.randn_like(x[0]) * 0.5
    targets = [2, 0, 1]
    result = DeepLIFT(model, baseline=baseline)(x, target=targets)
    expected = torch.stack([deeplift(model, x[i], baseline, c) for i, c in enumerate(targets)])
    torch.testing.assert_close(result.values, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        result.delta, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("make", [mlp, cnn])
def test_inplace_relus_keep_the_rescale_rule_and_its_derivative_fallback(make):
    # An in-place ReLU runs in place (the rule keeps z - z' before relu_ overwrites z); an
    # image equal to its baseline has z = z' at every ReLU, where the derivative is used.
    model = make()
    inplace = copy.deepcopy(model)
    for i, m in enumerate(inplace):
        if isinstance(m, nn.ReLU):
            inplace[i] = nn.ReLU(inplace=True)
    inplace.eval()
    x = torch.randn(3, 6, dtype=torch.float64) if model[0].__class__ is nn.Linear else None
    x = cnn_input(3) if x is None else x
    baseline = torch.randn_like(x[0]) * 0.5
    x[1] = baseline
    targets = [2, 0, 1]
    result = DeepLIFT(inplace, baseline=baseline)(x, target=targets)
    expected = torch.stack([deeplift(model, x[i], baseline, c) for i, c in enumerate(targets)])
    torch.testing.assert_close(result.values, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        result.values, DeepLIFT(model, baseline=baseline)(x, target=targets).values
    )


def test_linear_model_is_x_minus_baseline_times_w():
    model = LinearModel().double().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    result = DeepLIFT(model, baseline=0.5)(x, target=[0, 1, 2, 0])
    w = model.linear.weight.detach()[[0, 1, 2, 0]]
    torch.testing.assert_close(result.values, (x - 0.5) * w)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norms_with_running_statistics_keep_their_linear_gradient(affine):
    # In eval mode a batch norm is z * scale + shift per channel: DeepLIFT through it (and a
    # linear head) is (x - x') times the gradient, with scale = weight / sqrt(var + eps).
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, affine=affine), nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5), nn.BatchNorm1d(5, affine=affine), nn.Linear(5, 2),
    ).double().eval()  # fmt: skip
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            if affine:
                nn.init.uniform_(m.weight, -2, 2)
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    baseline = torch.randn_like(x[0])
    result = DeepLIFT(model, baseline=baseline)(x, target=[0, 1, 1])
    tracked = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(tracked)[[0, 1, 2], [0, 1, 1]].sum(), tracked)
    torch.testing.assert_close(result.values, (x - baseline) * grad, rtol=1e-10, atol=1e-12)


def test_relu_network_without_biases_and_zero_baseline_is_gradient_times_input():
    # with no biases every ReLU's reference input is 0, so Delta y / Delta z = 1[z > 0]
    model = mlp(bias=False)
    x = torch.randn(5, 6, dtype=torch.float64)
    result = DeepLIFT(model, baseline=0.0)(x, target=1)
    torch.testing.assert_close(result.values, GradientXInput(model)(x, target=1).values)
    with_bias = DeepLIFT(mlp(bias=True), baseline=0.0)(x, target=1).values
    assert not torch.allclose(with_bias, GradientXInput(mlp(bias=True))(x, target=1).values)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "vgg11", "densenet121", "mobilenet_v3_small"])
def test_summation_to_delta_on_torchvision_models(name):
    model, x = torchvision_model(name)
    model, x = model.double(), x.double()
    with torch.no_grad():
        out = model(torch.cat([x, torch.zeros_like(x)]))
    expected = out[:2, [3, 999]].diagonal() - out[2:, [3, 999]].diagonal()
    result = DeepLIFT(model, baseline=0.0)(x, target=[3, 999])
    total = result.values.flatten(1).sum(1)
    scale = float(expected.abs().max())
    assert float((total - expected).abs().max()) <= 1e-5 * scale
    assert float(result.delta.abs().max()) <= 1e-5 * scale
    torch.testing.assert_close(result.delta, total - expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_summation_to_delta_on_the_small_models(name):
    factory, make_input = SMALL_MODELS[name]
    model = factory().double()
    x = make_input(3).double()
    result = DeepLIFT(model, baseline=[0.0, torch.randn_like(x[0])], batch_size=3)(
        x, target="predicted"
    )
    assert float(result.delta.abs().max()) < 1e-10


def test_the_transformer_keeps_summation_to_delta_through_attention_and_layer_norm():
    # nn.TransformerEncoderLayer: F.multi_head_attention_forward re-expressed as its math,
    # softmax and layer norm as elementary operations, each with an exact DeepLIFT rule
    factory, make_input = SMALL_MODELS["tiny_transformer"]
    model = factory().double()
    x = make_input(3).double()
    before = model_state(model)
    result = DeepLIFT(model, baseline=[0.0, torch.randn_like(x[0])])(x, target="predicted")
    assert_state_restored(model, before)
    assert float(result.delta.abs().max()) < 1e-10


def test_products_of_two_inputs_use_the_exact_bilinear_split():
    model = TwoInputNet().double().eval()  # a(image) * tanh(b(extra))
    x = {"image": torch.randn(3, 6, dtype=torch.float64), "extra": torch.randn(3, 3).double()}
    result = DeepLIFT(model, baseline={"image": 0.3, "extra": -0.2})(x, target=[0, 1, 3])
    assert set(result.values) == {"image", "extra"}
    assert float(result.delta.abs().max()) < 1e-12
    # mean(b) * (a - a') goes to the first factor: with tanh fixed (extra = baseline) it is
    # the whole difference, all of it on the image
    still = {"image": x["image"], "extra": torch.full((3, 3), -0.2, dtype=torch.float64)}
    result = DeepLIFT(model, baseline={"image": 0.3, "extra": -0.2})(still, target=0)
    torch.testing.assert_close(result.values["extra"], torch.zeros(3, 3, dtype=torch.float64))


def test_deeplift_shap_averages_the_baselines():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    refs = [torch.zeros(3, 12, 12, dtype=torch.float64), torch.randn(3, 12, 12).double()]
    shap = DeepLIFT(model, baseline=refs)(x, target=[1, 4])
    singles = [DeepLIFT(model, baseline=r)(x, target=[1, 4]) for r in refs]
    torch.testing.assert_close(shap.values, (singles[0].values + singles[1].values) / 2)
    torch.testing.assert_close(shap.delta, (singles[0].delta + singles[1].delta) / 2)
    assert isinstance(shap.baseline, list) and len(shap.baseline) == 2
    chunked = DeepLIFT(model, baseline=refs, batch_size=3)(x, target=[1, 4])
    torch.testing.assert_close(chunked.values, shap.values)


def test_predicted_target_is_resolved_at_the_input_and_chunking_is_core_s():
    model = cnn()
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    x = cnn_input(5)
    whole = DeepLIFT(model, baseline=0.1)(x, target="predicted")
    with torch.no_grad():
        torch.testing.assert_close(whole.target, model(x).argmax(1))
        torch.testing.assert_close(whole.output, model(x))
    calls.clear()
    chunked = DeepLIFT(model, baseline=0.1, batch_size=4)(x, target="predicted")
    assert calls == [4, 4, 2]  # 2 pairs per forward: inputs and their baselines together
    torch.testing.assert_close(chunked.values, whole.values)


@pytest.mark.parametrize("name", ["vgg11"])
def test_matches_captum_where_captum_works(name):
    captum_attr = pytest.importorskip("captum.attr")
    model, x = torchvision_model(name)
    peer = captum_attr.DeepLift(model).attribute(x, target=[7, 412])
    ours = DeepLIFT(model)(x, target=[7, 412])
    assert_matches_peer(ours.values, peer)


@pytest.mark.parametrize("factory", [GapCNN, lambda: mlp(activation=nn.Tanh).float()])
def test_matches_captum_on_small_models(factory):
    captum_attr = pytest.importorskip("captum.attr")
    model = factory().eval()
    x = torch.randn(3, 3, 12, 12) if isinstance(model, GapCNN) else torch.randn(3, 6)
    baseline = torch.randn_like(x) * 0.3
    peer = captum_attr.DeepLift(model).attribute(x, baselines=baseline, target=[0, 1, 2])
    ours = DeepLIFT(model, baseline=baseline)(x, target=[0, 1, 2]).values
    assert_matches_peer(ours, peer)


def test_where_captum_differs_and_why():
    captum_attr = pytest.importorskip("captum.attr")
    # 1. a ReLU module used twice (every torchvision ResNet block): Captum refuses
    model, x = torchvision_model("resnet18")
    with pytest.raises(RuntimeError, match="used more than once"):
        captum_attr.DeepLift(model).attribute(x[:1], target=3)
    # 2. functional F.relu: Captum keeps its gradient, and summation-to-delta breaks
    model = FunctionalReLUNet().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    baseline = torch.randn_like(x)
    _, peer_delta = captum_attr.DeepLift(model).attribute(
        x, baselines=baseline, target=1, return_convergence_delta=True
    )
    ours = DeepLIFT(model, baseline=baseline)(x, target=1)
    assert float(ours.delta.abs().max()) < 1e-12 < float(peer_delta.abs().max())
    # 3. overlapping max pooling: Captum unpools with max_unpool, which overwrites where two
    # windows share a winner; the pooling backward sums them, and the delta stays zero
    model = cnn()  # MaxPool2d(3, stride=1)
    x = cnn_input(3)
    baseline = torch.randn_like(x)
    _, peer_delta = captum_attr.DeepLift(model).attribute(
        x, baselines=baseline, target=1, return_convergence_delta=True
    )
    ours = DeepLIFT(model, baseline=baseline)(x, target=1)
    assert float(ours.delta.abs().max()) < 1e-12 < float(peer_delta.abs().max())


def test_settings_are_checked_and_recorded():
    with pytest.raises(SettingError):
        DeepLIFT(cnn(), eps=-1)
    result = DeepLIFT(cnn(), baseline=0.2, eps=1e-8)(cnn_input(1), target=0)
    assert result.method == "DeepLIFT"
    assert result.params["baseline"] == 0.2 and result.params["eps"] == 1e-8
    assert result.values.shape == (1, 2, 6, 6)


def test_state_is_restored_and_plain_gradients_are_unchanged():
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    before = model_state(model)
    gradient = GradientXInput(model)(x, target=1).values
    DeepLIFT(model)(x, target=1)
    assert_state_restored(model, before)
    torch.testing.assert_close(GradientXInput(model)(x, target=1).values, gradient, rtol=0, atol=0)


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_state_is_restored_after_an_exception(where):
    model = RaisingNet(where).eval()
    before = model_state(model)
    with pytest.raises((RuntimeError, LayerError)):
        DeepLIFT(model)(torch.randn(2, 4), target=1)
    assert_state_restored(model, before)
    h = torch.randn(5, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.relu(h).sum(), h)
    torch.testing.assert_close(grad, (h > 0).float())

"""Attribution to a layer (``layer=``): against a split-model literal reference, Captum's
layer methods, and the identities that tie the layer to the input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrib
from attrib import (
    LRP,
    DeepLIFT,
    ExpectedGradients,
    GradientXInput,
    GuidedBackprop,
    IntegratedGradients,
    LayerConductance,
    Saliency,
    SmoothGrad,
)
from attrib.core.errors import LayerError, SettingError
from tests.conftest import assert_state_restored, model_state
from tests.models import ResidualNet, seeded, torchvision_model
from tests.peers import assert_matches_peer

TARGETS = [7, 412]


class Split(nn.Module):
    """``f(x) = tail(head(x))``: the layer attribution of ``f`` at ``head`` is the input
    attribution of ``tail`` at ``head(x)`` (the literal reference)."""

    def __init__(self) -> None:
        super().__init__()
        seeded(3)
        self.head = nn.Sequential(nn.Linear(5, 8), nn.Tanh()).double()
        self.tail = nn.Sequential(nn.Linear(8, 6), nn.Softplus(), nn.Linear(6, 3)).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


@pytest.fixture
def split():
    model = Split().eval()
    seeded(4)
    return model, torch.randn(4, 5, dtype=torch.float64)


@pytest.mark.parametrize(
    "make",
    [
        lambda m, **s: Saliency(m, **s),
        lambda m, **s: GradientXInput(m, **s),
        lambda m, **s: IntegratedGradients(m, steps=16, **s),
    ],
    ids=["saliency", "gradient_x_input", "integrated_gradients"],
)
def test_a_layer_is_the_input_of_the_model_after_it(split, make):
    model, x = split
    at_layer = make(model, layer="head")(x, target=2)
    a, a0 = model.head(x), model.head(torch.zeros_like(x))  # IG's baseline: head(0)
    reference = make(model.tail)
    expected = reference(a.detach(), target=2, **_baseline_if(reference, a0))
    assert at_layer.values.shape == a.shape
    torch.testing.assert_close(at_layer.values, expected.values, rtol=0, atol=1e-12)
    assert at_layer.params["layer"] == "head"


def _baseline_if(method, a0):
    return {"baseline": a0.detach()} if "baseline" in method.setting_names() else {}


def test_completeness_holds_at_the_layer(split):
    model, x = split
    result = IntegratedGradients(model, layer="head", steps=64)(x, target=0)
    a, a0 = model.head(x), model.head(torch.zeros_like(x))
    gap = model.tail(a)[:, 0] - model.tail(a0)[:, 0]
    torch.testing.assert_close(result.values.sum(1), gap.detach(), rtol=0, atol=1e-10)
    assert float(result.delta.abs().max()) < 1e-10


def test_a_branch_around_the_layer_keeps_the_samples_input():
    """In a residual block the skip path sees the input, not the layer: the gradient at the
    layer is the full model's autograd gradient with respect to the layer's output."""
    model = ResidualNet().double().eval()
    seeded(5)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    layer = dict(model.named_modules())["block1.conv1"]
    kept = {}

    def keep(module, args, output):
        output.retain_grad()
        kept["a"] = output

    handle = layer.register_forward_hook(keep)
    model(x)[:, 1].sum().backward()
    handle.remove()
    model.zero_grad(set_to_none=True)
    ours = Saliency(model, layer="block1.conv1")(x, target=1)
    torch.testing.assert_close(ours.values, kept["a"].grad, rtol=0, atol=1e-12)


def test_the_layers_input_is_the_previous_layers_output():
    model, x = torchvision_model("resnet18")
    by_input = IntegratedGradients(model, layer="layer3", layer_input=True, steps=8)
    by_output = IntegratedGradients(model, layer="layer2", steps=8)
    torch.testing.assert_close(
        by_input(x, target=TARGETS).values, by_output(x, target=TARGETS).values
    )


def test_token_ids_attributed_at_the_embedding_layer():
    """Integer inputs are fine when the gradient is taken at a layer: integrated gradients
    at the embedding of ids equals integrated gradients of the rest at the embeddings."""
    seeded(6)
    embedding = nn.Embedding(10, 4).double()
    head = nn.Sequential(nn.Flatten(1), nn.Linear(12, 2), nn.Tanh()).double()
    model = nn.Sequential(embedding, head).eval()
    ids = torch.tensor([[1, 5, 9], [3, 3, 0]])
    pad = torch.zeros_like(ids)
    ours = IntegratedGradients(model, layer="0", baseline=pad, steps=16)(ids, target=1)
    direct = IntegratedGradients(head, baseline=embedding(pad).detach(), steps=16)
    expected = direct(embedding(ids).detach(), target=1)
    torch.testing.assert_close(ours.values, expected.values, rtol=0, atol=1e-12)


def test_wrappers_of_layer_methods_map_rows_to_their_batch(split):
    model, x = split
    plain = IntegratedGradients(model, layer="head", steps=8)(x, target=1)
    # sigma 0: every copy is the input, so the mean is the layer IG itself; the copies are
    # chunked (batch_size=3 of 8 rows), so each chunk's rows must find their own inputs
    still = SmoothGrad(IntegratedGradients(model, layer="head", steps=8), samples=2, sigma=0.0)
    smoothed = still.replace(batch_size=3)(x, target=1)
    torch.testing.assert_close(smoothed.values, plain.values, rtol=0, atol=1e-12)
    bound = attrib.bind(Split_with_scale(model).eval(), scale=torch.arange(1.0, 5.0).double())
    scaled = Saliency(bound, layer="inner.head")(x, target=1)
    torch.testing.assert_close(
        scaled.values,
        Saliency(model, layer="head")(x, target=1).values * torch.arange(1.0, 5.0).view(-1, 1),
        rtol=0,
        atol=1e-12,
    )


class Split_with_scale(nn.Module):  # noqa: N801 - says what it is
    def __init__(self, inner: Split) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * scale.view(-1, 1)


def test_layer_errors_and_no_state_left(split):
    model, x = split
    before = model_state(model)
    with pytest.raises(LayerError, match=r"head\.0"):
        Saliency(model, layer="head.9")(x, target=0)
    GradientXInput(model, layer="head")(x, target=0)
    assert_state_restored(model, before)
    with pytest.raises(SettingError, match="layer: expected a setting of BlurIG"):
        attrib.BlurIG(model, layer="head")


# --- Captum's layer methods, on resnet18 and a small CNN ----------------------------------

captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def resnet():
    return torchvision_model("resnet18")


def test_layer_integrated_gradients_matches_captum(resnet):
    model, x = resnet
    baseline = torch.full_like(x, -0.5)
    peer, peer_delta = captum_attr.LayerIntegratedGradients(model, model.layer2).attribute(
        x,
        baselines=baseline,
        target=TARGETS,
        n_steps=8,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    ours = IntegratedGradients(model, layer="layer2", steps=8, baseline=-0.5)(x, target=TARGETS)
    assert_matches_peer(ours.values, peer)
    torch.testing.assert_close(ours.delta.float(), peer_delta.float(), rtol=0, atol=1e-3)


def test_layer_gradient_x_activation_matches_captum(resnet):
    model, x = resnet
    peer = captum_attr.LayerGradientXActivation(model, model.layer3).attribute(x, TARGETS)
    assert_matches_peer(GradientXInput(model, layer="layer3")(x, target=TARGETS).values, peer)
    peer_in = captum_attr.LayerGradientXActivation(model, model.layer3).attribute(
        x, TARGETS, attribute_to_layer_input=True
    )
    ours_in = GradientXInput(model, layer="layer3", layer_input=True)(x, target=TARGETS)
    assert_matches_peer(ours_in.values, peer_in)


def test_expected_gradients_maps_its_references_to_the_layer():
    """With one reference ``r`` and a linear model after the layer, every draw gives
    ``(a - L(r)) * W[c]``, whatever its alpha."""
    seeded(11)
    head = nn.Sequential(nn.Linear(5, 8), nn.Tanh()).double()
    tail = nn.Linear(8, 3).double()
    model = nn.Sequential(head, tail).eval()
    x = torch.randn(3, 5, dtype=torch.float64)
    reference = torch.randn(1, 5, dtype=torch.float64)
    ours = ExpectedGradients(model, reference, layer="0", samples=4, seed=0)(x, target=1)
    expected = (head(x) - head(reference)) * tail.weight[1]
    torch.testing.assert_close(ours.values, expected.detach(), rtol=0, atol=1e-12)
    assert float(ours.delta.abs().max()) < 1e-12


def _small_cnn() -> nn.Module:
    seeded(7)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(1),
        nn.Linear(32, 5),
    ).eval()


def test_layer_deeplift_matches_captum():
    model = _small_cnn()
    seeded(8)
    x = torch.randn(3, 3, 8, 8)
    peer = captum_attr.LayerDeepLift(model, model[2]).attribute(
        x, baselines=torch.zeros_like(x), target=[0, 3, 4]
    )
    ours = DeepLIFT(model, layer="2")(x, target=[0, 3, 4])
    assert_matches_peer(ours.values, peer)


def test_layer_guided_backprop_is_the_guided_gradient_at_the_layer():
    model = _small_cnn()
    seeded(9)
    x = torch.randn(2, 3, 8, 8)
    peer = captum_attr.GuidedBackprop(model[3:]).attribute(model[:3](x).detach(), target=1)
    ours = GuidedBackprop(model, layer="2")(x, target=1)
    assert_matches_peer(ours.values, peer)


def test_layer_lrp_matches_captum_with_the_epsilon_rule():
    # Captum's LRP hooks fail on Flatten and adaptive pooling: an MLP, which both define alike
    from attrib.methods.propagation import Epsilon

    seeded(10)
    model = nn.Sequential(
        nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5)
    ).eval()
    x = torch.randn(3, 10)
    for to_input in (False, True):
        peer = captum_attr.LayerLRP(model, model[2]).attribute(
            x, target=2, attribute_to_layer_input=to_input
        )
        lrp = LRP(model, rule=Epsilon(1e-9), canonizers=(), layer="2", layer_input=to_input)
        assert_matches_peer(lrp(x, target=2).values, peer)


def test_the_model_is_left_as_it_was(resnet):
    model, x = resnet
    before = model_state(model)
    IntegratedGradients(model, layer="layer2", steps=4)(x, target=TARGETS)
    LRP(model, layer="layer3")(x, target=TARGETS)
    assert_state_restored(model, before)


# --- layer conductance ------------------------------------------------------------------


def test_conductance_is_integrated_gradients_along_the_layers_image_of_the_input_path(split):
    """Literally: integrate the rest of the model along the curve ``head(x' + a (x - x'))``
    (a custom path of IntegratedGradients, one sample)."""
    model, x = split
    x0, base = x[:1], torch.zeros_like(x[:1])

    def layer_path(a: torch.Tensor, _: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        points = base + alpha.view(-1, 1) * (x0 - base)
        return model.head(points)

    literal = IntegratedGradients(model.tail, steps=16, path=layer_path)
    expected = literal(model.head(x0).detach(), target=2)
    ours = LayerConductance(model, "head", steps=16)(x0, target=2)
    torch.testing.assert_close(ours.values, expected.values, rtol=0, atol=1e-12)
    # every path passes through head: the conductances add up to f(x) - f(x')
    assert float(LayerConductance(model, "head", steps=64)(x, target=2).delta.abs().max()) < 1e-10


def test_layer_conductance_matches_captum(resnet):
    model, x = resnet
    peer = captum_attr.LayerConductance(model, model.layer3).attribute(
        x, baselines=torch.zeros_like(x), target=TARGETS, n_steps=256
    )
    # Captum takes finite differences of y between 256 uniform steps; ours the exact
    # derivative at 16 Gauss-Legendre nodes: the same integral, both well converged here
    ours = LayerConductance(model, "layer3", steps=16)(x, target=TARGETS)
    assert_matches_peer(ours.values, peer)

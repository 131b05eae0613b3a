"""Neurons as targets (``attrib.neuron``): a hidden unit or a channel's mean, explained by any
method, against autograd and Captum's neuron methods."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib import (
    DeepLIFT,
    GradCAM,
    IntegratedGradients,
    Occlusion,
    Saliency,
    SmoothGrad,
    neuron,
)
from attrib.core.errors import TargetError
from tests.conftest import assert_state_restored, model_state
from tests.models import GapCNN, seeded, torchvision_model
from tests.peers import assert_matches_peer


def _split() -> nn.Module:
    seeded(12)
    return nn.Sequential(nn.Sequential(nn.Linear(5, 8), nn.Tanh()), nn.Linear(8, 3)).double().eval()


def test_a_units_gradient_is_its_autograd_gradient_and_ig_is_complete():
    model = _split()
    seeded(13)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model[0](x)[:, 3].sum(), x)
    ours = Saliency(model)(x.detach(), target=neuron("0", 3))
    torch.testing.assert_close(ours.values, grad, rtol=0, atol=1e-12)
    assert ours.params["neuron"] == "0 (3,)"
    ig = IntegratedGradients(model, steps=64)(x.detach(), target=neuron("0", 3))
    unit = model[0](x.detach())[:, 3] - model[0](torch.zeros_like(x))[:, 3]
    torch.testing.assert_close(ig.values.sum(1), unit.detach(), rtol=0, atol=1e-10)
    # removal methods explain the unit too: a linear layer's occlusion drop is w_j x_j
    linear = nn.Sequential(nn.Linear(5, 8).double(), nn.Identity()).eval()
    drops = Occlusion(linear, window=1)(x.detach(), target=neuron("1", 2))
    torch.testing.assert_close(drops.values, x.detach() * linear[0].weight[2].detach())


def test_a_channels_mean_and_wrappers():
    model = GapCNN().double().eval()
    seeded(14)
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    layer = dict(model.named_modules())["features.2"]
    kept = {}
    handle = layer.register_forward_hook(lambda m, a, out: kept.setdefault("a", out))
    model(x)
    handle.remove()
    (grad,) = torch.autograd.grad(kept["a"][:, 5].mean(dim=(1, 2)).sum(), x)
    target = neuron("features.2", channel=5)
    ours = Saliency(model)(x.detach(), target=target)
    torch.testing.assert_close(ours.values, grad, rtol=0, atol=1e-12)
    still = SmoothGrad(Saliency(model), samples=2, sigma=0.0)(x.detach(), target=target)
    torch.testing.assert_close(still.values, grad, rtol=0, atol=1e-12)
    # a CAM of a hidden channel: Grad-CAM at an earlier layer, for that channel's mean
    cam = GradCAM(model, "features.0")(x.detach(), target=target)
    assert cam.values.shape == (2, 12, 12)


def test_bad_neurons_are_refused_and_nothing_is_left():
    model = _split()
    x = torch.randn(2, 5, dtype=torch.float64)
    before = model_state(model)
    with pytest.raises(TargetError, match="unit index"):
        Saliency(model)(x, target=neuron("0", (3, 1)))
    with pytest.raises(TargetError, match="unit index"):
        Saliency(model)(x, target=neuron("0", 8))
    with pytest.raises(TargetError, match="either a unit"):
        neuron("0", 3, channel=1)
    assert_state_restored(model, before)


captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def resnet():
    return torchvision_model("resnet18")


def test_neuron_gradient_and_integrated_gradients_match_captum(resnet):
    model, x = resnet
    unit = (17, 1, 2)
    peer = captum_attr.NeuronGradient(model, model.layer3).attribute(x, unit)
    assert_matches_peer(Saliency(model)(x, target=neuron("layer3", unit)).values, peer)
    peer_ig = captum_attr.NeuronIntegratedGradients(model, model.layer3).attribute(
        x, unit, baselines=torch.zeros_like(x), n_steps=8, method="gausslegendre"
    )
    ours = IntegratedGradients(model, steps=8)(x, target=neuron("layer3", unit))
    assert_matches_peer(ours.values, peer_ig)
    assert_state_restored(model, model_state(model))


def test_neuron_deeplift_matches_captum():
    seeded(15)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()
    ).eval()
    x = torch.randn(3, 3, 6, 6)
    peer = captum_attr.NeuronDeepLift(model, model[3]).attribute(
        x, (4, 2, 3), baselines=torch.zeros_like(x)
    )
    ours = DeepLIFT(model)(x, target=neuron("3", (4, 2, 3)))
    assert_matches_peer(ours.values, peer)

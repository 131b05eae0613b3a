"""Agreement with Captum on torchvision resnet18 (random weights), same settings."""

from __future__ import annotations

import pytest
import torch

from attrib import GradientXInput, Saliency
from attrib.methods.path import IntegratedGradients
from tests.models import torchvision_model
from tests.peers import assert_matches_peer

captum_attr = pytest.importorskip("captum.attr")

TARGETS = [7, 412]


@pytest.fixture(scope="module")
def resnet():
    return torchvision_model("resnet18")


def test_saliency_matches_captum(resnet):
    model, x = resnet
    peer = captum_attr.Saliency(model).attribute(x, target=TARGETS, abs=False)
    assert_matches_peer(Saliency(model)(x, target=TARGETS).values, peer)
    peer_abs = captum_attr.Saliency(model).attribute(x, target=TARGETS)
    assert_matches_peer(Saliency(model, abs=True)(x, target=TARGETS).values, peer_abs)


def test_gradient_x_input_matches_captum(resnet):
    model, x = resnet
    peer = captum_attr.InputXGradient(model).attribute(x, target=TARGETS)
    assert_matches_peer(GradientXInput(model)(x, target=TARGETS).values, peer)


@pytest.mark.parametrize(
    "rule, captum_rule",
    [
        ("riemann_left", "riemann_left"),
        ("riemann_right", "riemann_right"),
        ("riemann_middle", "riemann_middle"),
        ("riemann_trapezoid", "riemann_trapezoid"),
        ("gauss_legendre", "gausslegendre"),
    ],
)
def test_integrated_gradients_matches_captum_for_each_rule(resnet, rule, captum_rule):
    model, x = resnet
    baseline = torch.full_like(x, -0.5)
    peer, peer_delta = captum_attr.IntegratedGradients(model).attribute(
        x,
        baselines=baseline,
        target=TARGETS,
        n_steps=8,
        method=captum_rule,
        return_convergence_delta=True,
    )
    ours = IntegratedGradients(model, steps=8, rule=rule, baseline=-0.5)(x, target=TARGETS)
    if rule == "riemann_trapezoid":
        # Captum 0.9 puts its trapezoid nodes 1/(n-1) apart but weighs them 1/n (ends 1/2n):
        # its weights sum to (n-1)/n, so its IG is ours times (n-1)/n exactly
        assert_matches_peer(ours.values * 7 / 8, peer)
        return
    assert_matches_peer(ours.values, peer)
    # Captum's delta is sum(attr) - (f(x) - f(x')), the same definition as ours
    torch.testing.assert_close(ours.delta.float(), peer_delta.float(), rtol=1e-3, atol=1e-4)

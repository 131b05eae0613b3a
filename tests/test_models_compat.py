"""Every model in tests/models.py, the real architectures included, through the core."""

from __future__ import annotations

import pytest
import torch

from attrib import GradientXInput, Saliency
from attrib.core.grad import layer_gradients
from attrib.core.layers import last_conv_layer, resolve_layer
from attrib.core.target import select_output
from tests.conftest import assert_state_restored, model_state
from tests.models import SMALL_MODELS, TORCHVISION_MODELS, torchvision_model


def textbook_gradient(model, x, classes):
    x = x.clone().requires_grad_(True)
    logits = select_output(model(x))
    logits.gather(1, classes.view(-1, 1)).sum().backward()
    model.zero_grad(set_to_none=True)
    return x.grad


@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_small_models(name):
    factory, make_input = SMALL_MODELS[name]
    model = factory()
    x = make_input(3)
    before = model_state(model)
    result = Saliency(model)(x, target="predicted")
    assert_state_restored(model, before)
    want = textbook_gradient(model, x, result.target)
    torch.testing.assert_close(result.values, want, rtol=1e-5, atol=1e-6)
    gxi = GradientXInput(model, batch_size=2)(x, target=result.target)
    torch.testing.assert_close(gxi.values, want * x, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_architectures(name):
    model, x = torchvision_model(name)
    before = model_state(model)
    result = Saliency(model)(x, target=[3, 999])
    assert_state_restored(model, before)
    want = textbook_gradient(model, x, torch.tensor([3, 999]))
    torch.testing.assert_close(result.values, want, rtol=1e-4, atol=1e-7)
    if name != "vit_b_16":
        layer = resolve_layer(model, last_conv_layer(model))
        capture = layer_gradients(model, x, layer, result.target)
        assert capture.gradients.shape == capture.activations.shape
        assert capture.gradients.abs().sum() > 0
        assert_state_restored(model, before)

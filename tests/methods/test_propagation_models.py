"""Every model of tests/models.py and the torchvision architectures, under every propagation
method: an explanation, or the documented error naming the layer; the model left as found."""

from __future__ import annotations

import pytest
import torch

from attrib import AttribError, Saliency
from attrib.core.errors import LayerError
from attrib.core.target import select_output
from attrib.methods.propagation import LRP, Deconvolution, DeepLIFT, GuidedBackprop
from tests.conftest import assert_state_restored, model_state
from tests.models import SMALL_MODELS, torchvision_model

METHODS = [GuidedBackprop, Deconvolution, DeepLIFT, LRP]

# what each method refuses, and the layer its message names
REFUSED = {
    ("mlp", "GuidedBackprop"): "tanh called in 'net.3'",
    ("mlp", "Deconvolution"): "tanh called in 'net.3'",
    # the default composite has no rule for q k^T (composite="attnlrp" has)
    ("tiny_transformer", "LRP"): "matmul called in 'encoder.self_attn'",
}


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_small_models(name, method):
    factory, make_input = SMALL_MODELS[name]
    model = factory()
    x = make_input(3)
    before = model_state(model)
    expected_error = REFUSED.get((name, method.__name__))
    if expected_error is not None:
        with pytest.raises(LayerError, match=expected_error):
            method(model)(x, target="predicted")
        assert_state_restored(model, before)
        return
    result = method(model, batch_size=2)(x, target="predicted")
    assert_state_restored(model, before)
    assert result.values.shape == x.shape
    assert bool(torch.isfinite(result.values).all())
    assert result.values.abs().sum() > 0
    if method is DeepLIFT:
        scale = float(select_output(result.output).abs().max())
        # float32 rounding; the transformer chains ~20 Rescale ratios (exp, rsqrt) and
        # products per block (in float64 its gap is below 1e-10: test_propagation_deeplift)
        tolerance = 1e-3 if name == "tiny_transformer" else 1e-5
        assert float(result.delta.abs().max()) <= tolerance * max(scale, 1.0)


def test_the_transformer_is_supported_by_guided_backprop_through_its_relu():
    # guided backprop and deconvolution change only the ReLU of the feed-forward block;
    # attention, layer norm and softmax keep their gradient, as the papers' definition says
    factory, make_input = SMALL_MODELS["tiny_transformer"]
    model = factory()
    x = make_input(2)
    guided = GuidedBackprop(model)(x, target=1).values
    assert not torch.allclose(guided, Saliency(model)(x, target=1).values)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "vgg11", "densenet121", "mobilenet_v3_small"])
def test_torchvision_architectures(name):
    model, x = torchvision_model(name)
    x = x[:1]
    before = model_state(model)
    gradient = Saliency(model)(x, target=3).values
    for method in METHODS:
        settings = {}
        if name == "mobilenet_v3_small" and method in (GuidedBackprop, Deconvolution):
            with pytest.raises(AttribError, match="hardswish"):
                method(model)(x, target=3)
            settings = {"other_activations": "gradient"}
        result = method(model, **settings)(x, target=3)
        assert result.values.shape == x.shape
        assert bool(torch.isfinite(result.values).all())
        if method is DeepLIFT:
            with torch.no_grad():
                change = model(x)[0, 3] - model(torch.zeros_like(x))[0, 3]
            assert float(result.delta.abs().max()) <= 1e-3 * abs(float(change))
        assert_state_restored(model, before)
    torch.testing.assert_close(Saliency(model)(x, target=3).values, gradient, rtol=0, atol=0)

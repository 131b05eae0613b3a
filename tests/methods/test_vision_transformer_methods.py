"""Gradient, path and perturbation methods on tiny vision transformers (torchvision's
``VisionTransformer`` and Hugging Face's ``ViTForImageClassification``, random weights).

What is asserted, and why it holds:

- shapes: input methods give one value per pixel and channel, ``x.shape``;
- saliency is the textbook gradient of the target logit (``torch.autograd.grad`` of a plain
  forward), to float32 rounding; gradient x input is that times ``x``;
- integrated gradients: ``delta`` is the completeness gap ``sum(values) - (f(x) - f(x'))``
  (recomputed here from two plain forwards), and it is small against ``f(x) - f(x')``;
- occlusion: incremental (``"auto"``) and whole forwards compute the same scores (to float
  rounding), whichever path runs: torchvision's ViT traces (its patch embedding is a strided
  convolution, recomputed on crops, then whole rows from the token reshape on), Hugging
  Face's does not and falls back by itself; ``incremental=True`` there is a clear error;
- KernelSHAP over 8 x 8 patches and over superpixels: efficiency, ``sum phi = f(x) -
  f(baseline)`` per sample, which its constrained solve imposes exactly (on the pixels of
  the samples that have every player of the batch: see the test);
- no hook, flag, mode or ``.grad`` is left on the model.
"""

from __future__ import annotations

import pytest
import torch

from attrib import (
    GradientXInput,
    IntegratedGradients,
    KernelSHAP,
    Occlusion,
    Saliency,
    SmoothGrad,
)
from attrib.core.errors import SettingError
from attrib.core.target import select_output
from attrib.methods.perturbation.masks import grid, superpixels
from tests import vision_transformers as vt
from tests.conftest import assert_state_restored, model_state

pytest.importorskip("torchvision")

TARGETS = [1, 2]
EPS = torch.finfo(torch.float32).eps
MODELS = {"torchvision": vt.torchvision_vit, "hugging-face": vt.hf_vit}


@pytest.fixture(scope="module", params=list(MODELS))
def vit(request):
    if request.param == "hugging-face":
        pytest.importorskip("transformers")
    return request.param, MODELS[request.param]()


def logits(model, x):
    with torch.no_grad():
        return select_output(model(x))


def chosen(model, x):
    return logits(model, x)[torch.arange(len(x)), TARGETS]


def test_gradients(vit):
    _, model = vit
    x = vt.images()
    before = model_state(model)
    got = Saliency(model, abs=False)(x, target=TARGETS)
    tracked = x.clone().requires_grad_(True)
    score = select_output(model(tracked))[torch.arange(2), TARGETS].sum()
    (want,) = torch.autograd.grad(score, tracked)
    model.zero_grad(set_to_none=True)
    assert got.values.shape == x.shape
    scale = float(want.abs().max())
    assert float((got.values - want).abs().max()) <= 64 * EPS * scale
    gxi = GradientXInput(model)(x, target=TARGETS)
    assert float((gxi.values - want * x).abs().max()) <= 64 * EPS * float((want * x).abs().max())
    smooth = SmoothGrad(Saliency(model), samples=4, sigma=0.1, seed=0)(x, target=TARGETS)
    assert smooth.values.shape == x.shape and bool(torch.isfinite(smooth.values).all())
    assert_state_restored(model, before)


def test_integrated_gradients_completeness(vit):
    _, model = vit
    x = vt.images()
    before = model_state(model)
    got = IntegratedGradients(model, steps=64)(x, target=TARGETS)
    assert got.values.shape == x.shape
    gap = chosen(model, x).double() - chosen(model, torch.zeros_like(x)).double()
    recomputed = got.values.double().flatten(1).sum(1) - gap
    # delta is the gap the method reports; it is recomputed from plain forwards here
    assert torch.allclose(got.delta, recomputed, rtol=0, atol=1e3 * EPS * float(gap.abs().max()))
    # a smooth network: 64 Gauss-Legendre nodes leave a gap far below the score change
    assert float(got.delta.abs().max()) <= 1e-3 * float(gap.abs().max())
    assert_state_restored(model, before)


def test_occlusion_incremental_or_not_gives_the_same_map(vit):
    name, model = vit
    x = vt.images()
    before = model_state(model)
    auto = Occlusion(model, window=8, strides=4)(x, target=TARGETS)
    whole = Occlusion(model, window=8, strides=4, incremental=False)(x, target=TARGETS)
    assert auto.values.shape == x.shape
    assert auto.params["incremental"] is (name == "torchvision")
    assert whole.params["incremental"] is False
    scale = float(whole.values.abs().max())
    assert scale > 0
    # every score is a logit of a copy of one image, computed in another order at most
    logit_scale = float(logits(model, x).abs().max())
    assert float((auto.values - whole.values).abs().max()) <= 256 * EPS * max(scale, logit_scale)
    if name == "hugging-face":
        with pytest.raises(SettingError, match="incremental=False"):
            Occlusion(model, window=8, incremental=True)(x, target=TARGETS)
    assert_state_restored(model, before)


@pytest.mark.parametrize("players", ["patches", "superpixels"])
def test_kernel_shap_on_patches_and_superpixels(vit, players):
    pytest.importorskip("skimage") if players == "superpixels" else None
    _, model = vit
    x = vt.images()
    before = model_state(model)
    mask = grid(8) if players == "patches" else superpixels(16)
    got = KernelSHAP(model, feature_mask=mask, samples=64, seed=0)(x, target=TARGETS)
    assert got.values.shape == x.shape
    if players == "patches":
        assert got.params["players"] == 16  # a 4 x 4 grid of the ViT's own patches
    gap = chosen(model, x).double() - chosen(model, torch.zeros_like(x)).double()
    tolerance = 1e3 * EPS * float(gap.abs().max())
    assert float(got.delta.abs().max()) <= tolerance  # sum of the players' values
    # on the pixels, where every player of the batch has pixels in the sample: superpixels
    # are segmented per image, and a player of another image (no pixel here) is a dummy
    # whose sampled value has nowhere to go
    labels = mask(x)  # grid: (H, W) for every sample; superpixels: (N, 1, H, W)
    labels = labels.reshape(-1, *labels.shape[-2:]).expand(len(x), -1, -1).flatten(1)
    union = len(torch.unique(labels))
    whole = [i for i in range(len(x)) if len(torch.unique(labels[i])) == union]
    assert whole, "no sample has every player"
    total = got.values.double().flatten(1).sum(1)
    assert torch.allclose(total[whole], gap[whole], rtol=0, atol=tolerance)
    assert_state_restored(model, before)

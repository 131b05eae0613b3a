"""Saliency maps: reductions, upsampling, percentile clipping, signs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attrib import Attribution
from attrib.core.errors import SettingError
from attrib.viz import (
    clip_percentile,
    default_reduction,
    is_signed,
    saliency_map,
    saliency_maps,
    upsample,
)


def _values() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 3, 5, 6)


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [
        ("max_abs", lambda v: v.abs().amax(1)),
        ("sum", lambda v: v.sum(1)),
        ("abs_sum", lambda v: v.abs().sum(1)),
        ("l2", lambda v: v.pow(2).sum(1).sqrt()),
    ],
)
def test_reductions_match_attribution_saliency(reduce, expected):
    values = _values()
    result = Attribution(values=values, method="Saliency")
    maps = saliency_maps(result, reduce=reduce)
    assert maps.shape == (2, 5, 6)
    np.testing.assert_allclose(maps, expected(values).double().numpy(), rtol=1e-6)
    # tensors and arrays of attributions reduce the same way
    np.testing.assert_allclose(saliency_maps(values, reduce=reduce), maps)
    np.testing.assert_allclose(saliency_maps(values.numpy(), reduce=reduce), maps)


def test_default_is_the_seeds_max_abs_and_cam_maps_keep_their_sign():
    values = _values()
    np.testing.assert_allclose(
        saliency_map(Attribution(values=values), 1), values[1].abs().amax(0).double().numpy()
    )
    cam = torch.tensor([[[-1.0, 2.0], [3.0, -4.0]]])
    maps = Attribution(values=cam, method="EigenCAM", channel_dim=None)
    np.testing.assert_array_equal(saliency_map(maps), cam[0].double().numpy())
    np.testing.assert_array_equal(saliency_map(maps, reduce="max_abs"), cam[0].abs().numpy())


def test_layer_maps_are_upsampled_bilinearly():
    cam = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    big = saliency_map(Attribution(values=cam, channel_dim=None), size=(8, 8))
    assert big.shape == (8, 8)
    # bilinear: values between the cells' values, corners keep their cell's value
    assert big.min() >= 0.0 and big.max() <= 1.0
    assert big[0, 0] == pytest.approx(0.0) and big[0, -1] == pytest.approx(1.0)
    assert 0.2 < big[3, 3] < 0.8
    expected = torch.nn.functional.interpolate(
        cam[None].double(), size=(8, 8), mode="bilinear", align_corners=False
    )[0, 0]
    np.testing.assert_allclose(big, expected.numpy())
    assert isinstance(upsample(np.zeros((2, 2)), (4, 4)), np.ndarray)
    assert isinstance(upsample(torch.zeros(3, 2, 2), (4, 4)), torch.Tensor)


def test_percentile_clipping_keeps_outliers_from_washing_out_the_map():
    values = np.linspace(0.0, 1.0, 1000)
    values[0] = 1000.0  # one outlier
    scaled, scale = clip_percentile(values, 99.0)
    assert scale < 2.0  # the outlier did not set the scale
    assert scaled.max() == 1.0 and scaled[0] == 1.0  # clipped
    assert np.median(scaled) > 0.4  # the rest still spans the colours
    by_max, _ = clip_percentile(values, 100.0)
    assert np.median(by_max) < 0.001  # what the maximum would have done


def test_signed_maps_are_scaled_symmetrically_around_zero():
    values = np.array([[-2.0, -1.0], [0.0, 4.0]])
    assert is_signed(values) and not is_signed(np.abs(values))
    scaled, scale = clip_percentile(values, 100.0)
    assert scale == 4.0
    np.testing.assert_allclose(scaled, [[-0.5, -0.25], [0.0, 1.0]])
    magnitude, _ = clip_percentile(values, 100.0, signed=False)
    assert magnitude.min() >= 0.0
    zeros, zero_scale = clip_percentile(np.zeros((3, 3)))
    assert zero_scale == 0.0 and not zeros.any()
    sparse, _ = clip_percentile(np.array([0.0] * 999 + [5.0]), 50.0)
    assert sparse.max() == 1.0  # a zero percentile falls back to the maximum


def test_default_reduction_signs_completeness_methods_only():
    assert default_reduction("IntegratedGradients") == "sum"
    assert default_reduction("KernelSHAP") == "sum"
    assert default_reduction("Saliency") == "max_abs"
    assert default_reduction("SmoothGrad") == "max_abs"


def test_bad_arguments_say_what_to_do():
    with pytest.raises(SettingError, match="reduce"):
        saliency_maps(_values(), reduce="mean")
    with pytest.raises(SettingError, match="index"):
        saliency_map(_values(), 5)
    with pytest.raises(SettingError, match="percentile"):
        clip_percentile(np.ones(3), 0)
    with pytest.raises(SettingError, match="token_figure"):
        saliency_maps(Attribution(values=torch.ones(2, 7, 4), channel_dim=1))

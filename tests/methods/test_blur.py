"""The Gaussian blur of blur baselines and BlurIG's path: direct and FFT against a literal sum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attrib.methods.baselines import (
    DIRECT_MAX_RADIUS,
    _fast_length,
    blur_direct,
    blur_fft,
    gaussian_blur,
    gaussian_kernel_1d,
)


def literal_blur(x: np.ndarray, sigmas: list[float], radius: int) -> np.ndarray:
    """``y[p] = sum_t g(t) x[p + t]`` over ``|t| <= radius``, along H then W, edges repeated,
    ``g(t) = exp(-t^2 / (2 sigma^2))`` normalised to sum 1: the formula, one tap at a time."""
    out = np.empty_like(x)
    for i, sigma in enumerate(sigmas):
        taps = np.arange(-radius, radius + 1)
        g = np.exp(-0.5 * (taps / sigma) ** 2)
        g /= g.sum()
        image = x[i]
        for axis in (1, 2):  # H, then W
            widths = [(0, 0)] * 3
            widths[axis] = (radius, radius)
            padded = np.pad(image, widths, mode="edge")
            size = image.shape[axis]
            image = sum(
                g[j] * np.take(padded, range(j, j + size), axis=axis) for j in range(len(taps))
            )
        out[i] = image
    return out


@pytest.mark.parametrize("sigma", [1.5, 4.0, 9.0])  # radius 5 and 12 direct, 27 by FFT
def test_gaussian_blur_is_the_literal_separable_sum(sigma):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 31, 40, dtype=torch.float64)
    sigmas = [sigma, sigma / 2]  # one per image; the radius follows the largest
    radius = min(math.ceil(3 * sigma), 39)
    got = gaussian_blur(x, torch.tensor(sigmas, dtype=torch.float64), max_sigma=sigma)
    expected = literal_blur(x.numpy(), sigmas, radius)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    assert (radius > DIRECT_MAX_RADIUS) == (sigma == 9.0)  # both ways are exercised


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_fft_and_direct_blur_agree_in_value_and_in_their_sigma_derivative(dtype, atol):
    torch.manual_seed(1)
    x = torch.randn(3, 2, 37, 26, dtype=dtype)
    sigma = torch.tensor([0.5, 4.0, 11.0], dtype=dtype)
    radius = 25

    def blurred(blur):
        return lambda s: blur(x, gaussian_kernel_1d(s, radius), radius)

    ones = (torch.ones_like(sigma),)
    value_d, speed_d = torch.func.jvp(blurred(blur_direct), (sigma,), ones)
    value_f, speed_f = torch.func.jvp(blurred(blur_fft), (sigma,), ones)
    torch.testing.assert_close(value_f, value_d, rtol=0, atol=atol)
    torch.testing.assert_close(speed_f, speed_d, rtol=0, atol=atol)
    assert float(speed_d.abs().max()) > 0.01  # the derivative is not trivially zero


def test_a_constant_image_stays_constant_under_either_blur():
    x = torch.full((1, 1, 30, 30), 2.5, dtype=torch.float64)
    for radius in (3, 29):
        kernel = gaussian_kernel_1d(torch.tensor([6.0], dtype=torch.float64), radius)
        for blur in (blur_direct, blur_fft):
            torch.testing.assert_close(blur(x, kernel, radius), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_blur_like_float32_by_either_way(dtype):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 40, 40)
    for sigma in (2.0, 8.0):  # radius 6: direct; radius 24: FFT, computed in float32
        got = gaussian_blur(x.to(dtype), sigma)
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), gaussian_blur(x, sigma), rtol=0, atol=2e-2)


@pytest.mark.parametrize("minimum,expected", [(1, 1), (7, 8), (524, 540), (540, 540), (97, 100)])
def test_fft_lengths_have_no_prime_factor_above_5(minimum, expected):
    assert _fast_length(minimum) == expected

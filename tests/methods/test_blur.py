"""The Gaussian blur of blur baselines and BlurIG's path: the direct, matrix and FFT ways
against a literal sum, and against each other in their sigma derivative."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attrib.methods.blur import (
    DIRECT_MAX_RADIUS,
    _fast_length,
    blur_direct,
    blur_fft,
    blur_matrix,
    blur_matrix_and_slope,
    choose_blur,
    gaussian_blur,
    gaussian_blur_and_slope,
    gaussian_kernel_1d,
    gaussian_kernel_and_slope,
)

WAYS = [blur_direct, blur_matrix, blur_fft]


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


@pytest.mark.parametrize("sigma", [1.5, 4.0, 9.0])  # radius 5 and 12 direct, 27 by matrix
def test_gaussian_blur_is_the_literal_separable_sum(sigma):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 31, 40, dtype=torch.float64)
    sigmas = [sigma, sigma / 2]  # one per image; the radius follows the largest
    radius = min(math.ceil(3 * sigma), 39)
    got = gaussian_blur(x, torch.tensor(sigmas, dtype=torch.float64), max_sigma=sigma)
    expected = literal_blur(x.numpy(), sigmas, radius)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    assert (radius > DIRECT_MAX_RADIUS) == (sigma == 9.0)  # both ways are exercised


@pytest.mark.parametrize("blur", WAYS)
@pytest.mark.parametrize(
    "shape,radius",
    [
        ((31, 40), 3),
        ((31, 40), 27),
        ((12, 9), 20),  # the radius is past both sides: taps land beyond the far border
        ((1, 30), 4),  # one row: both borders of H are that one sample
    ],
)
def test_each_way_is_the_literal_separable_sum(blur, shape, radius):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    sigmas = [radius / 3, radius / 7]
    kernel = gaussian_kernel_1d(torch.tensor(sigmas, dtype=torch.float64), radius)
    expected = literal_blur(x.numpy(), sigmas, radius)
    np.testing.assert_allclose(blur(x, kernel, radius).numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_the_three_ways_agree_in_value_and_in_their_sigma_derivative(dtype, atol):
    torch.manual_seed(1)
    x = torch.randn(3, 2, 37, 26, dtype=dtype)
    sigma = torch.tensor([0.5, 4.0, 11.0], dtype=dtype)
    radius = 25

    def blurred(blur):
        return lambda s: blur(x, gaussian_kernel_1d(s, radius), radius)

    ones = (torch.ones_like(sigma),)
    value_d, speed_d = torch.func.jvp(blurred(blur_direct), (sigma,), ones)
    assert float(speed_d.abs().max()) > 0.01  # the derivative is not trivially zero
    for blur in (blur_matrix, blur_fft):
        value, speed = torch.func.jvp(blurred(blur), (sigma,), ones)
        torch.testing.assert_close(value, value_d, rtol=0, atol=atol)
        torch.testing.assert_close(speed, speed_d, rtol=0, atol=atol)


def test_the_kernels_slope_is_the_derivative_of_the_kernel_in_sigma():
    sigma = torch.tensor([0.005, 0.3, 2.0, 9.0], dtype=torch.float64)  # the first is clamped
    kernel, slope = gaussian_kernel_and_slope(sigma, 12)
    value, tangent = torch.func.jvp(
        lambda s: gaussian_kernel_1d(s, 12), (sigma,), (torch.ones_like(sigma),)
    )
    torch.testing.assert_close(kernel, value, rtol=0, atol=1e-15)
    torch.testing.assert_close(slope, tangent, rtol=0, atol=1e-12)
    assert float(slope[0].abs().max()) == 0.0 and float(slope[2].abs().max()) > 0.01


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("shape", [(37, 26), (30, 30)])
def test_the_matrix_ways_explicit_slope_is_the_blurs_sigma_derivative(dtype, atol, shape):
    """BlurIG's velocity: products with the operators of the kernel and of its slope, against
    forward-mode autodiff through the direct correlation."""
    torch.manual_seed(3)
    x = torch.randn(3, 2, *shape, dtype=dtype)
    sigma = torch.tensor([0.5, 4.0, 11.0], dtype=dtype)
    radius = 25
    value, speed = torch.func.jvp(
        lambda s: blur_direct(x, gaussian_kernel_1d(s, radius), radius),
        (sigma,),
        (torch.ones_like(sigma),),
    )
    got, slope = blur_matrix_and_slope(x, *gaussian_kernel_and_slope(sigma, radius), radius)
    torch.testing.assert_close(got, value, rtol=0, atol=atol)
    torch.testing.assert_close(slope, speed, rtol=0, atol=atol)
    assert got.is_contiguous()


@pytest.mark.parametrize("size,radius", [(40, 27), (40, 6)])  # the matrix way, then direct
def test_blur_and_slope_by_the_chosen_way(size, radius):
    torch.manual_seed(4)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    sigma = torch.tensor([radius / 3, 1.0], dtype=torch.float64)
    value, slope = gaussian_blur_and_slope(x, sigma, max_sigma=radius / 3)
    expected = torch.func.jvp(
        lambda s: gaussian_blur(x, s, max_sigma=radius / 3), (sigma,), (torch.ones_like(sigma),)
    )
    torch.testing.assert_close(value, expected[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(slope, expected[1], rtol=0, atol=1e-12)


def test_the_matrix_way_differentiates_after_a_call_in_inference_mode():
    x = torch.rand(1, 1, 33, 33, dtype=torch.float64)
    kernel = gaussian_kernel_1d(torch.tensor([7.0], dtype=torch.float64), 23)
    with torch.inference_mode():  # the first call makes (and caches) the operator's indices
        blur_matrix(x, kernel, 23)
    sigma = torch.tensor([7.0], dtype=torch.float64, requires_grad=True)
    blur_matrix(x, gaussian_kernel_1d(sigma, 23), 23).sum().backward()
    assert sigma.grad is not None


def test_a_constant_image_stays_constant_under_every_way():
    x = torch.full((1, 1, 30, 30), 2.5, dtype=torch.float64)
    for radius in (3, 29):
        kernel = gaussian_kernel_1d(torch.tensor([6.0], dtype=torch.float64), radius)
        for blur in WAYS:
            torch.testing.assert_close(blur(x, kernel, radius), x, rtol=0, atol=1e-12)


def test_sigma_zero_is_the_identity_to_the_bit_where_blurig_relies_on_it():
    # BlurIG scores its path's end with the input's forward (``ends_at_input``)
    x = torch.randn(2, 3, 40, 40)
    for blur in (blur_direct, blur_matrix):
        kernel = gaussian_kernel_1d(torch.zeros(2), 30)
        assert torch.equal(blur(x, kernel, 30), x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_blur_like_float32_by_every_way(dtype):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 40, 40)
    kernel = gaussian_kernel_1d(torch.tensor([8.0, 3.0]), 24)
    for blur in WAYS:  # the matrix and FFT ways compute in float32
        got = blur(x.to(dtype), kernel.to(dtype), 24)
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), blur_direct(x, kernel, 24), rtol=0, atol=2e-2)
    kernel, slope = gaussian_kernel_and_slope(torch.tensor([8.0, 3.0]), 24)
    got, got_slope = blur_matrix_and_slope(x.to(dtype), kernel.to(dtype), slope.to(dtype), 24)
    assert got.dtype == got_slope.dtype == dtype
    _, expected_slope = blur_matrix_and_slope(x, kernel, slope, 24)
    scale = float(expected_slope.abs().max())  # about 0.05: a bfloat16 kernel is off by 1e-3
    torch.testing.assert_close(got_slope.float(), expected_slope, rtol=0, atol=0.05 * scale)


def test_the_cheapest_way_is_chosen_by_size_and_radius():
    # measured (2 CPU threads, with the sigma derivative; blur.GEMM_PER_FFT): direct up to
    # radius 20; BlurIG's default radius 150 on 224 x 224 by matrix products, 2x faster than
    # the FFT; a 512 x 512 image with radius 30 by FFT, 2x faster than matrices
    assert choose_blur(224, 224, DIRECT_MAX_RADIUS) is blur_direct
    assert choose_blur(224, 224, 150) is blur_matrix
    assert choose_blur(512, 512, 30) is blur_fft


@pytest.mark.parametrize("minimum,expected", [(1, 1), (7, 8), (524, 540), (540, 540), (97, 100)])
def test_fft_lengths_have_no_prime_factor_above_5(minimum, expected):
    assert _fast_length(minimum) == expected


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_direct_blur_of_half_images_computes_in_float32(dtype):
    # float16 depthwise convolutions with a 49-tap row hung in oneDNN's kernel generation on
    # a CPU with AVX512-FP16; computing in float32 is the same arithmetic as float32 inputs
    torch.manual_seed(3)
    x = torch.rand(2, 3, 40, 40).to(dtype)
    kernel = gaussian_kernel_1d(torch.tensor([8.0, 3.0]), 24).to(dtype)
    expected = blur_direct(x.float(), kernel.float(), 24).to(dtype)
    assert torch.equal(blur_direct(x, kernel, 24), expected)

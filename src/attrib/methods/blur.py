"""The Gaussian blur of the ``"blur"`` baseline and of BlurIG's path, three equal ways.

``gaussian_blur`` correlates each image with a normalised 1-D Gaussian along H, then along W,
with replicated borders: ``y[p] = sum_{|t| <= r} g(t) x[clamp(p + t)]``,
``g(t) = exp(-t^2 / (2 sigma^2)) / sum``. Three ways compute the same numbers (to float
rounding), and the cheapest is chosen for the image size and kernel radius:

- ``blur_direct``: the correlation itself, ``2 r + 1`` taps per pixel; cheapest for small radii;
- ``blur_matrix``: the correlation along an axis of length ``n`` is a linear map, an
  ``n x n`` matrix ``M`` (a band of kernel taps, the border columns collecting the taps that
  fall outside the image); the blur is ``M_H x M_W^T``, two matrix products per channel
  whose cost does not depend on the radius. Cheapest for large radii on images up to a few
  hundred pixels, which is BlurIG's default case (radius 150 on 224 x 224 images);
- ``blur_fft``: the replicate-padded signal times the kernel's spectrum; cheapest for large
  radii on large images.

All three are differentiable in sigma, forward mode included. BlurIG's path velocity needs
``d blur / d sigma`` with every blur: ``gaussian_blur_and_slope`` returns both, by explicit
products for the matrix way (2.6 ms per 224 x 224 image at radius 150 on 2 CPU threads,
against 4.5 by ``torch.func.jvp`` through the same products, 6.8 by FFT and 59 direct).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from attrib.core.errors import SettingError

BlurWay = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]

__all__ = [
    "blur_direct",
    "blur_fft",
    "blur_matrix",
    "blur_matrix_and_slope",
    "gaussian_blur",
    "gaussian_blur_and_slope",
    "gaussian_kernel_1d",
    "gaussian_kernel_and_slope",
]


# Sigmas below this are clamped to it: its taps next to the centre, exp(-5000), are 0 in any
# float, so the kernel is a unit impulse and the blur the identity, to the bit.
SIGMA_FLOOR = 1e-2


def gaussian_kernel_1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma: shape ``(len(sigma), 2 radius + 1)``.

    Differentiable in ``sigma`` (blur paths take d/dsigma by forward-mode autodiff). Sigma is
    clamped away from 0, where the kernel tends to a unit impulse.
    """
    t = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    s = sigma.clamp(min=SIGMA_FLOOR).unsqueeze(1)
    kernel = torch.exp(-0.5 * (t / s) ** 2)
    return kernel / kernel.sum(dim=1, keepdim=True)


def gaussian_blur(
    x: torch.Tensor, sigma: float | torch.Tensor, max_sigma: float | None = None
) -> torch.Tensor:
    """Blur images ``(N, C, H, W)`` over H and W, with one sigma per image or one for all.

    The kernel radius is ``ceil(3 * max_sigma)``, at most the image size minus one, with
    replicated borders; blurring far beyond the image size converges to the image mean.
    """
    sigma, radius = _sigma_and_radius(x, sigma, max_sigma)
    h, w = x.shape[-2:]
    return choose_blur(h, w, radius)(x, gaussian_kernel_1d(sigma, radius), radius)


def gaussian_blur_and_slope(
    x: torch.Tensor, sigma: float | torch.Tensor, max_sigma: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gaussian_blur(x, sigma, max_sigma)`` and its derivative in each image's sigma,
    ``d blur / d sigma`` (BlurIG's path velocity, up to ``d sigma / d alpha``).

    The matrix way computes both with explicit products (``M`` is linear in the kernel, so
    ``dM / d sigma`` is the operator of the kernel's derivative): 5 matrix products in 3
    calls, against 5 smaller ones and forward-mode autodiff's bookkeeping by ``jvp``, which
    the other ways use.
    """
    sigma, radius = _sigma_and_radius(x, sigma, max_sigma)
    h, w = x.shape[-2:]
    blur = choose_blur(h, w, radius)
    if blur is blur_matrix:
        return blur_matrix_and_slope(x, *gaussian_kernel_and_slope(sigma, radius), radius)
    found = torch.func.jvp(
        lambda s: blur(x, gaussian_kernel_1d(s, radius), radius),
        (sigma,),
        (torch.ones_like(sigma),),
    )
    return found[0], found[1]


def _sigma_and_radius(
    x: torch.Tensor, sigma: float | torch.Tensor, max_sigma: float | None
) -> tuple[torch.Tensor, int]:
    if x.dim() != 4:
        raise SettingError(
            "baseline",
            "image inputs (N, C, H, W) for blurring",
            x,
            "Use another baseline (0, 'uniform', a tensor) for non-image inputs.",
        )
    n, _, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(n)
    largest = float(max_sigma if max_sigma is not None else sigma.detach().max())
    return sigma, max(1, min(math.ceil(3 * largest), max(h, w) - 1))


def gaussian_kernel_and_slope(
    sigma: torch.Tensor, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gaussian_kernel_1d(sigma, radius)`` and its derivative in sigma, per kernel.

    With ``g(t) = exp(-t^2 / (2 sigma^2)) / sum_u exp(-u^2 / (2 sigma^2))``,
    ``dg(t) / d sigma = g(t) (t^2 - sum_u g(u) u^2) / sigma^3``; 0 where sigma is clamped.
    """
    kernel = gaussian_kernel_1d(sigma, radius)
    t2 = torch.arange(-radius, radius + 1, dtype=kernel.dtype, device=kernel.device) ** 2
    s = sigma.clamp(min=SIGMA_FLOOR).unsqueeze(1)
    spread = (kernel * t2).sum(dim=1, keepdim=True)
    slope = kernel * (t2 - spread) / s**3
    return kernel, slope * (sigma >= SIGMA_FLOOR).unsqueeze(1)


# Above this radius direct correlation loses to the other two ways (measured on 224 x 224
# images with the sigma derivative by forward mode, 2 CPU threads: the three about even near
# radius 20; at radius 150, 59 ms per image against 6.8 by FFT).
DIRECT_MAX_RADIUS = 20

# How many multiply-adds of a matrix product cost as much as one ``L log2 L`` unit of FFT
# work: fitted where the two ways' measured times cross (square images of 128 to 512 pixels,
# radii 30 to 150, 2 CPU threads; e.g. at 224 and radius 150 the matrices took half the
# FFT's time, at 512 and radius 30 twice).
GEMM_PER_FFT = 25.0


def choose_blur(h: int, w: int, radius: int) -> BlurWay:
    """The cheapest way for an ``h x w`` image and this radius.

    Past ``DIRECT_MAX_RADIUS``, the matrix way costs ``h w (h + w)`` multiply-adds per channel
    (both products); the FFT ``w L_H log2 L_H + h L_W log2 L_W`` per transform pair, with
    ``L`` each axis's padded length. The matrix products run several times closer to the
    machine's peak than the FFT, hence ``GEMM_PER_FFT``.
    """
    if radius <= DIRECT_MAX_RADIUS:
        return blur_direct
    matrix = h * w * (h + w)
    fft = sum(
        across * length * math.log2(length)
        for across, length in ((w, _fast_length(h + 2 * radius)), (h, _fast_length(w + 2 * radius)))
    )
    return blur_matrix if matrix <= GEMM_PER_FFT * fft else blur_fft


def blur_direct(x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``x`` correlated with ``kernel[i]`` (``(N, 2 radius + 1)``, one per image) along H, then
    along W, with replicated borders: ``y[p] = sum_j kernel[j] x[p + j - radius]``.

    Half and bfloat16 images are blurred in float32 and returned in their own dtype, as by
    the other ways: on CPUs with AVX512-FP16, oneDNN spends minutes generating its float16
    depthwise kernel for a long row of taps, and half sums of many taps lose precision."""
    if x.dtype not in (torch.float32, torch.float64):
        return blur_direct(x.float(), kernel.float(), radius).to(x.dtype)
    n, c, h, w = x.shape
    k = kernel.shape[1]
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, k): one kernel per image channel
    y = x.reshape(1, n * c, h, w)
    y = F.pad(y, (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel.view(n * c, 1, k, 1), groups=n * c)
    y = F.conv2d(y, kernel.view(n * c, 1, 1, k), groups=n * c)
    return y.view(n, c, h, w)


def blur_matrix(x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``blur_direct`` as matrix products: ``y = M_H x M_W^T`` per image and channel, with
    ``M = blur_operator(kernel, radius, size)`` of each axis. Half and bfloat16 images are
    blurred in float32 and returned in their own dtype."""
    if x.dtype not in (torch.float32, torch.float64):
        return blur_matrix(x.float(), kernel.float(), radius).to(x.dtype)
    along_h, along_w = _axis_operators(kernel, radius, *x.shape[-2:])
    return torch.matmul(along_h.unsqueeze(1), torch.matmul(x, along_w.transpose(1, 2).unsqueeze(1)))


def blur_matrix_and_slope(
    x: torch.Tensor, kernel: torch.Tensor, slope: torch.Tensor, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = M_H x M_W^T`` and ``dy = dM_H x M_W^T + M_H x dM_W^T``, with ``dM`` the operators
    of ``slope`` (the kernels' derivative): ``x [M_W^T | dM_W^T]`` in one product, then
    ``[M_H; dM_H]`` times its first half, plus ``M_H`` times its second."""
    if x.dtype not in (torch.float32, torch.float64):
        y, dy = blur_matrix_and_slope(x.float(), kernel.float(), slope.float(), radius)
        return y.to(x.dtype), dy.to(x.dtype)
    n, c, h, w = x.shape
    along_h, along_w = _axis_operators(kernel, radius, h, w)
    slope_h, slope_w = _axis_operators(slope, radius, h, w)
    both_w = torch.cat([along_w, slope_w], dim=1).transpose(1, 2)  # (n, w, 2w)
    # (n, c, h, 2w): x M_W^T | x dM_W^T, channels and rows as one matrix (no broadcast copy)
    rows = torch.bmm(x.reshape(n, c * h, w), both_w).view(n, c, h, 2 * w)
    both_h = torch.cat([along_h, slope_h], dim=1).unsqueeze(1)  # (n, 1, 2h, h)
    columns = torch.matmul(both_h, rows[..., :w])  # (n, c, 2h, w): M_H x M_W^T; dM_H x M_W^T
    dy = torch.matmul(along_h.unsqueeze(1), rows[..., w:]).add_(columns[:, :, h:])
    return columns[:, :, :h].contiguous(), dy


def _axis_operators(
    kernel: torch.Tensor, radius: int, h: int, w: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``blur_operator`` along H and along W (one and the same for square images)."""
    along_w = blur_operator(kernel, radius, w)
    return (along_w if h == w else blur_operator(kernel, radius, h)), along_w


def blur_operator(kernel: torch.Tensor, radius: int, size: int) -> torch.Tensor:
    """The matrices ``M`` (``(N, size, size)``) of correlation with ``kernel[i]`` along an axis
    of ``size`` samples, replicated borders: ``M[p, q]`` is the weight of input ``q`` in output
    ``p``, the sum of ``kernel[j]`` over the taps with ``clamp(p + j - radius) = q``.

    Inside the image that is the one tap ``j = q - p + radius`` (a band); the first column
    collects the taps that fall at or before the first sample, ``j <= radius - p``, and the last
    those at or after the last sample, ``j >= size - 1 - p + radius``. The tails are summed from
    the small end, so they keep their relative precision. Linear and differentiable in the
    kernel (so the operator of a kernel's derivative is the operator's derivative).
    """
    if size == 1:  # one sample is both borders: every tap lands on it
        return kernel.sum(1).view(-1, 1, 1)
    band, first, last = _operator_indices(radius, size, kernel.device)
    zero = kernel.new_zeros(kernel.shape[0], 1)  # index ``taps`` reads this 0
    matrix = torch.cat([kernel, zero], dim=1)[:, band]
    matrix[:, :, 0] = torch.cat([kernel.cumsum(1), zero], dim=1)[:, first]
    matrix[:, :, -1] = torch.cat([kernel.flip(1).cumsum(1).flip(1), zero], dim=1)[:, last]
    return matrix


@functools.lru_cache(maxsize=8)
def _operator_indices(
    radius: int, size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which tap (or cumulative sum) each entry of ``blur_operator`` reads; ``taps`` (one past
    the last) where it reads 0: the band ``[p, q] -> q - p + radius``, the first column's
    ``radius - p`` (sum of taps up to it), the last column's ``size - 1 - p + radius`` (sum of
    taps from it). Made outside inference mode even when first asked for inside it: a
    cached inference tensor could not later index a kernel that autograd records."""
    taps = 2 * radius + 1
    with torch.inference_mode(False):
        p = torch.arange(size, device=device)
        offset = p.view(1, size) - p.view(size, 1) + radius
        band = torch.where((offset >= 0) & (offset < taps), offset, taps)
        first = torch.where(radius - p >= 0, radius - p, taps)
        last = size - 1 - p + radius
        return band, first, torch.where(last < taps, last, taps)


def blur_fft(x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``blur_direct`` by FFT: along each axis, the replicate-padded signal of length ``L``
    times the kernel's spectrum, back, and the middle cut out.

    The product of spectra is a *circular* convolution over ``L``; with at least ``radius``
    padded samples on each side, the kernel never wraps around for the samples kept, so they
    are the direct correlation's (a Gaussian is symmetric: convolution = correlation).
    Half and bfloat16 images are blurred in float32 (torch has no FFT for them on CPU) and
    returned in their own dtype.
    """
    if x.dtype in (torch.float32, torch.float64):
        return _fft_axis(_fft_axis(x, kernel, radius, dim=2), kernel, radius, dim=3)
    wide = blur_fft(x.float(), kernel.float(), radius)
    return wide.to(x.dtype)


def _fft_axis(x: torch.Tensor, kernel: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    size = x.shape[dim]
    length = _fast_length(size + 2 * radius)
    after = length - size - radius  # >= radius
    pad = (0, 0, radius, after) if dim == 2 else (radius, after, 0, 0)
    padded = F.pad(x, pad, mode="replicate")
    # the kernel centred on index 0 of a circle of ``length``: taps 0..r, then -r..-1 at the end
    n, k = kernel.shape
    gap = kernel.new_zeros(n, length - k)
    circular = torch.cat([kernel[:, radius:], gap, kernel[:, :radius]], dim=1)
    spectrum = torch.fft.rfft(circular, dim=1)  # (n, length // 2 + 1)
    shape = (n, 1, -1, 1) if dim == 2 else (n, 1, 1, -1)
    product = torch.fft.rfft(padded, dim=dim) * spectrum.view(shape)
    return torch.fft.irfft(product, n=length, dim=dim).narrow(dim, radius, size)


def _fast_length(minimum: int) -> int:
    """The smallest ``L >= minimum`` with no prime factor above 5 (fast FFT sizes)."""
    length = minimum
    while True:
        rest = length
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return length
        length += 1

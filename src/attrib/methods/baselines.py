"""Baselines ``x'`` for path methods: the "absence of signal" an input is compared with.

``baseline=`` accepts

- a number: that constant everywhere (``0`` is the usual "black" of zero-centred inputs);
- ``"black"``, ``"white"``, ``"gray"``: the lowest value, the highest value and their midpoint
  of ``value_range`` (default: each sample's own min and max, so on a normalised image
  ``"black"`` is the darkest value the image has, not 0);
- ``"blur"``: the input blurred with a Gaussian of ``blur_sigma`` pixels (Sturmfels et al.
  2020, "Visualizing the Impact of Feature Attribution Baselines");
- ``"uniform"``: uniform noise over ``value_range``, drawn with ``seed``;
- a tensor of the input's shape (one baseline per sample) or of one sample's shape (shared);
- a list of any of these: several baselines, whose attributions are averaged;
- for dict inputs, a dict with one such spec per key (or one spec for all keys).

Where the input is a dict, the shapes are checked key by key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from attrib.core.errors import SettingError

__all__ = ["NAMED_BASELINES", "gaussian_blur", "make_baselines"]

NAMED_BASELINES = ("black", "white", "gray", "grey", "blur", "uniform")


def gaussian_kernel_1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma: shape ``(len(sigma), 2 radius + 1)``.

    Differentiable in ``sigma`` (blur paths take d/dsigma by forward-mode autodiff). Sigma is
    clamped away from 0, where the kernel tends to a unit impulse.
    """
    t = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    s = sigma.clamp(min=1e-2).unsqueeze(1)
    kernel = torch.exp(-0.5 * (t / s) ** 2)
    return kernel / kernel.sum(dim=1, keepdim=True)


def gaussian_blur(
    x: torch.Tensor, sigma: float | torch.Tensor, max_sigma: float | None = None
) -> torch.Tensor:
    """Blur images ``(N, C, H, W)`` over H and W, with one sigma per image or one for all.

    The kernel radius is ``ceil(3 * max_sigma)``, at most the image size minus one, with
    replicated borders; blurring far beyond the image size converges to the image mean.
    Separable: a 1-D Gaussian along H, then along W, each by direct correlation for small
    radii and by FFT for large ones (the same result to float rounding; BlurIG's path blurs
    every row with radius 150 at its default ``max_sigma=50``, where the FFT is ~12x faster).
    """
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
    radius = max(1, min(math.ceil(3 * largest), max(h, w) - 1))
    kernel = gaussian_kernel_1d(sigma, radius)  # (n, k)
    blur = blur_fft if radius > DIRECT_MAX_RADIUS else blur_direct
    return blur(x, kernel, radius)


# Above this radius the FFT beats direct correlation (measured on 224 x 224 images with
# BlurIG's forward-mode derivative, 2 CPU threads: about even near radius 20, the FFT 4.5
# against 57 ms per image at radius 150).
DIRECT_MAX_RADIUS = 20


def blur_direct(x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``x`` correlated with ``kernel[i]`` (``(N, 2 radius + 1)``, one per image) along H, then
    along W, with replicated borders: ``y[p] = sum_j kernel[j] x[p + j - radius]``."""
    n, c, h, w = x.shape
    k = kernel.shape[1]
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, k): one kernel per image channel
    y = x.reshape(1, n * c, h, w)
    y = F.pad(y, (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel.view(n * c, 1, k, 1), groups=n * c)
    y = F.conv2d(y, kernel.view(n * c, 1, 1, k), groups=n * c)
    return y.view(n, c, h, w)


def blur_fft(x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """``blur_direct`` by FFT: along each axis, the replicate-padded signal of length ``L``
    times the kernel's spectrum, back, and the middle cut out.

    The product of spectra is a *circular* convolution over ``L``; with at least ``radius``
    padded samples on each side, the kernel never wraps around for the samples kept, so they
    are the direct correlation's (a Gaussian is symmetric: convolution = correlation).
    Differentiable, forward mode included (BlurIG takes d/dsigma through it). Half and
    bfloat16 images are blurred in float32 (torch has no FFT for them on CPU) and returned in
    their own dtype.
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


def _value_range(
    x: torch.Tensor, value_range: tuple[float, float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if value_range is not None:
        lo, hi = value_range
        return torch.full_like(x, float(lo)), torch.full_like(x, float(hi))
    dims = tuple(range(1, x.dim()))
    lo = x.amin(dim=dims, keepdim=True).expand_as(x)
    hi = x.amax(dim=dims, keepdim=True).expand_as(x)
    return lo, hi


def _one_baseline(
    spec: Any,
    x: torch.Tensor,
    *,
    name: str,
    value_range: tuple[float, float] | None,
    blur_sigma: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if isinstance(spec, torch.Tensor):
        spec = spec.to(device=x.device, dtype=x.dtype)
        if tuple(spec.shape) == tuple(x.shape):
            return spec
        if tuple(spec.shape) == tuple(x.shape[1:]) or spec.dim() == 0:
            return spec.expand_as(x)
        raise SettingError(
            name,
            f"a tensor of the input's shape {tuple(x.shape)} or of one sample's shape "
            f"{tuple(x.shape[1:])}",
            spec,
            "For several baselines pass a list of tensors.",
        )
    if isinstance(spec, bool):
        raise SettingError(name, "a number, a name, a tensor or a list of those", spec, "")
    if isinstance(spec, (int, float)):
        return torch.full_like(x, float(spec))
    if isinstance(spec, str):
        key = spec.lower()
        if key in ("black", "white", "gray", "grey"):
            lo, hi = _value_range(x, value_range)
            return {"black": lo, "white": hi}.get(key, (lo + hi) / 2).clone()
        if key == "blur":
            sigma = blur_sigma if blur_sigma is not None else max(x.shape[-2:]) / 10
            return gaussian_blur(x, sigma)
        if key == "uniform":
            lo, hi = _value_range(x, value_range)
            noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu")
            return lo + (hi - lo) * noise.to(x.device)
    raise SettingError(
        name,
        f"a number, one of {NAMED_BASELINES}, a tensor, or a list of those",
        spec,
        "",
    )


def make_baselines(
    spec: Any,
    x: torch.Tensor | dict[str, torch.Tensor],
    *,
    value_range: tuple[float, float] | None = None,
    blur_sigma: float | None = None,
    seed: int | None = None,
) -> list[torch.Tensor] | list[dict[str, torch.Tensor]]:
    """The list of baselines (one or several), each with the structure and shape of ``x``."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not specs:
        raise SettingError("baseline", "at least one baseline", spec, "")
    made = []
    for k, one in enumerate(specs):
        name = "baseline" if len(specs) == 1 else f"baseline[{k}]"
        if isinstance(x, dict):
            per_key = one if isinstance(one, dict) else {key: one for key in x}
            if set(per_key) != set(x):
                raise SettingError(name, f"a baseline for each input {sorted(x)}", per_key, "")
            made.append(
                {
                    key: _one_baseline(
                        per_key[key],
                        x[key],
                        name=f"{name}[{key!r}]",
                        value_range=value_range,
                        blur_sigma=blur_sigma,
                        generator=generator,
                    )
                    for key in x
                }
            )
        else:
            made.append(
                _one_baseline(
                    one,
                    x,
                    name=name,
                    value_range=value_range,
                    blur_sigma=blur_sigma,
                    generator=generator,
                )
            )
    return made


def is_sequence_of_baselines(spec: Any) -> bool:
    return isinstance(spec, Sequence) and not isinstance(spec, str)

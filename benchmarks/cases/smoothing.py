"""SmoothGrad around Saliency: ours against Captum's ``NoiseTunnel(Saliency)``.

16 noisy copies per image, Gaussian noise of standard deviation 0.15 (``absolute_sigma=True``
is Captum's ``stdevs``). The method needs one input gradient per noisy copy, so its limit is
``N * 16 * min_{r <= 16 N} cost_input(r)``. Both are given the classes, so neither runs a
forward at the clean input (ours does only for ``target="predicted"``).

- ``smoothgrad``: both with their default batching (Captum: ``nt_samples_batch_size=None``,
  all copies of all images in one forward).
- ``smoothgrad-captum-best``: Captum with ``nt_samples_batch_size`` set so that its forwards
  have the rows per forward where the limit curve is lowest (it runs that many copies of
  every image per forward).

The timed calls each draw their own noise, so their results differ by the Monte Carlo error;
agreement is checked on the first images with the *same* noise given to both (ours through
its ``noise`` argument, Captum's by substituting its ``torch.normal`` draws).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import torch

from attrib import Saliency, SmoothGrad
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import best_rows, peer_fits, quiet_captum
from benchmarks.limits import Need
from benchmarks.models import Setup

SAMPLES = 16
SIGMA = 0.15
SEED = 0
AGREE_IMAGES = 2  # images on which ours and the peer are checked with the same noise


@contextmanager
def captum_noise(noise: torch.Tensor) -> Iterator[None]:
    """Captum's ``torch.normal(0, stdev)`` draws replaced by ``noise`` ``(N, samples, ...)``.

    NoiseTunnel draws the noise of ``m`` copies of every image at once, rows image-major
    (``x.repeat_interleave(m)``); successive draws take the next ``m`` copies of each image.
    """
    n = noise.shape[0]
    used = 0

    def fake_normal(mean: float, std: torch.Tensor) -> torch.Tensor:
        nonlocal used
        m = std.shape[0] // n
        drawn = noise[:, used : used + m].flatten(0, 1)
        if drawn.shape != std.shape:
            raise RuntimeError(f"unexpected noise draw {tuple(std.shape)} from Captum")
        used += m
        return drawn

    with mock.patch.object(torch, "normal", fake_normal):
        yield


def _agree(setup: Setup) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    from captum.attr import NoiseTunnel
    from captum.attr import Saliency as CaptumSaliency

    x, target = setup.x[:AGREE_IMAGES], setup.target[:AGREE_IMAGES]
    generator = torch.Generator().manual_seed(SEED + 1)
    noise = SIGMA * torch.randn(len(x), SAMPLES, *x.shape[1:], generator=generator)
    noise = noise.to(x.device)
    ours = SmoothGrad(
        Saliency(setup.model),
        samples=SAMPLES,
        noise=lambda rows, sample, draw: noise[sample.to(noise.device), draw.to(noise.device)],
    )
    peer = NoiseTunnel(CaptumSaliency(setup.model))

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        with captum_noise(noise):
            return peer.attribute(
                x, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=SIGMA, target=target, abs=False
            )

    return run_ours, run_peer


def _contenders(setup: Setup, samples_per_forward: int | None, label: str) -> Contenders:
    from captum.attr import NoiseTunnel
    from captum.attr import Saliency as CaptumSaliency

    quiet_captum()
    ours = SmoothGrad(
        Saliency(setup.model), samples=SAMPLES, sigma=SIGMA, absolute_sigma=True, seed=SEED
    )
    peer = NoiseTunnel(CaptumSaliency(setup.model))
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=SAMPLES,
            nt_samples_batch_size=samples_per_forward,
            stdevs=SIGMA,
            target=target,
            abs=False,
        )

    fits, gib = peer_fits(setup, setup.batch * (samples_per_forward or SAMPLES))
    if not fits:
        return Contenders(run_ours, None, f"{label}: skipped, ~{gib:.0f} GiB")
    return Contenders(run_ours, run_peer, label, agree=_agree(setup))


def build_default(setup: Setup) -> Contenders:
    return _contenders(setup, None, "captum")


def build_best(setup: Setup) -> Contenders:
    per_forward = max(1, best_rows(setup, setup.batch * SAMPLES) // setup.batch)
    return _contenders(setup, per_forward, f"captum ntb={per_forward}")


# calls of seconds each (32 or 16 gradient rows per image): 7 medians are steady enough
REPEATS = 7
NEEDS = (Need("input", SAMPLES),)
register(Case("smoothgrad", family="smoothing", needs=NEEDS, build=build_default, repeats=REPEATS))
register(
    Case(
        "smoothgrad-captum-best", family="smoothing", needs=NEEDS, build=build_best, repeats=REPEATS
    )
)

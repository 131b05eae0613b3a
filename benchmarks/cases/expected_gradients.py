"""Expected gradients: ours against Captum's ``GradientShap`` without input noise.

Each of 32 draws per image takes a reference ``x'`` from a set of 16 and a point
``alpha ~ U(0, 1)`` on the line from it to the input, and averages
``(x - x') * grad f(x' + alpha (x - x'))``: Captum's
``GradientShap.attribute(x, baselines=refs, n_samples=32, stdevs=0.0)`` is the same
estimator. It needs 32 input gradients per image. Two cases:

=============================  =================================  ==========================
case                           ours                               limit
=============================  =================================  ==========================
``expected-gradients``         defaults: with the completeness    ``32 N`` gradient rows,
                               gap ``delta``                      ``N + 16`` forward rows
``expected-gradients-nodelta`` ``delta=False``: Captum's work     ``32 N`` gradient rows,
                                                                  ``N`` forward rows
=============================  =================================  ==========================

``delta`` needs ``f(x)`` (one forward row per image, which also resolves the target) and
``f(x')`` at every distinct reference drawn (with 32 draws per image from 16 references, all
16 are drawn but for a chance of ``(15/16)^32 ~ 13%`` per reference for a single image; the
limit counts 16). Captum computes no gap unless asked, so ``ours/peer`` compares the same
work only on the ``-nodelta`` case.

Both with their default batching. ``GradientShap.attribute`` has no batch setting (it runs
all draws of all images in one forward), so its default is also its best setting; there is no
``-captum-best`` variant.

The timed calls draw their own references and points, so their results differ by the Monte
Carlo error; agreement is checked on the first images with the *same* draws given to both:
ours with a seed, Captum with ``numpy.random.choice`` / ``numpy.random.uniform`` returning
ours' draws. Those are replayed from ``ExpectedGradients``' generator (``randint`` for the
references, then ``rand`` in float64 for the points); if the library changes that order, the
agreement line shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import torch

from attrib import ExpectedGradients
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import peer_fits, quiet_captum
from benchmarks.limits import Need
from benchmarks.models import Setup, make_inputs

SAMPLES = 32
REFERENCES = 16
SEED = 0
AGREE_IMAGES = 2


@contextmanager
def captum_draws(drawn: torch.Tensor, alphas: torch.Tensor) -> Iterator[None]:
    """GradientShap's numpy draws replaced by ``drawn`` / ``alphas`` ``(N, samples)``.

    GradientShap draws them once per call, for all rows at once, image-major.
    """
    indices = drawn.flatten().tolist()
    points = alphas.flatten().numpy()

    def choice(n: int, size: int, *args: Any, **kwargs: Any) -> np.ndarray:
        if size != len(indices):
            raise RuntimeError(f"unexpected reference draw of {size} from Captum")
        return np.asarray(indices)

    def uniform(low: float, high: float, size: int, *args: Any, **kwargs: Any) -> np.ndarray:
        if size != len(points):
            raise RuntimeError(f"unexpected point draw of {size} from Captum")
        return points

    with (
        mock.patch.object(np.random, "choice", choice),
        mock.patch.object(np.random, "uniform", uniform),
    ):
        yield


def _references(setup: Setup) -> torch.Tensor:
    return make_inputs(REFERENCES, setup.x.shape[-1], setup.device, seed=SEED + 1)


def _agree(setup: Setup) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    from captum.attr import GradientShap

    x, target = setup.x[:AGREE_IMAGES], setup.target[:AGREE_IMAGES]
    refs = _references(setup)
    ours = ExpectedGradients(setup.model, refs, samples=SAMPLES, seed=SEED)
    peer = GradientShap(setup.model)
    # ExpectedGradients' draws for these images, replayed from its seeded generator
    generator = torch.Generator().manual_seed(SEED)
    drawn = torch.randint(REFERENCES, (len(x), SAMPLES), generator=generator)
    alphas = torch.rand(len(x), SAMPLES, generator=generator, dtype=torch.float64)

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        with captum_draws(drawn, alphas):
            return peer.attribute(x, baselines=refs, n_samples=SAMPLES, stdevs=0.0, target=target)

    return run_ours, run_peer


def build(setup: Setup, delta: bool = True) -> Contenders:
    from captum.attr import GradientShap

    quiet_captum()
    refs = _references(setup)
    ours = ExpectedGradients(setup.model, refs, samples=SAMPLES, seed=SEED, delta=delta)
    peer = GradientShap(setup.model)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(x, baselines=refs, n_samples=SAMPLES, stdevs=0.0, target=target)

    fits, gib = peer_fits(setup, setup.batch * SAMPLES)
    if not fits:
        return Contenders(run_ours, None, f"captum: skipped, ~{gib:.0f} GiB")
    return Contenders(run_ours, run_peer, "captum", agree=_agree(setup))


register(
    Case(
        "expected-gradients",
        family="expected_gradients",
        needs=(Need("input", SAMPLES), Need("forward", 1, REFERENCES)),
        build=build,
        repeats=7,  # calls of seconds each (32 gradient rows per image)
    )
)
register(
    Case(
        "expected-gradients-nodelta",
        family="expected_gradients",
        needs=(Need("input", SAMPLES), Need("forward", 1)),
        build=lambda setup: build(setup, delta=False),
        repeats=7,
    )
)

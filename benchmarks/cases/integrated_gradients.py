"""Integrated gradients: ours against Captum's, 32 Gauss-Legendre steps from a zero baseline.

The method needs ``steps`` input gradients per image (forward and backward to the input at
every node of the rule) and the forwards of the completeness gap ``delta``, which is always
returned: one row per image at the inputs and one row per call at the zero baseline (the
same row for every image). Its limit is therefore
``N * steps * min_r cost_input(r) + (N + 1) * min_r cost_forward(r)`` (as for expected
gradients, whose limit counts its delta forwards too). The forwards are about 1.5% of the
limit on resnet50 at batch 8; the gradient evaluations alone (the issue's wording of the
limit) are ``N * steps`` times the best point of the ``fwd+bwd to input`` curve printed
above the table.

- ``ig``: both with their default batching (ours: 8 rows of 3x224x224 per forward on CPU;
  Captum: ``internal_batch_size=None``, every step of every image in one forward).
- ``blur-ig``: ours alone (Captum has no blur IG): ``BlurIG`` with its defaults (32
  Gauss-Legendre steps along the blur path from ``max_sigma=50``). Its limit is the same
  gradient rows plus two forward rows per image for ``delta``: at ``x`` and at its own blurred
  start (the start differs per image, so no row is shared). The blur of every step (and its
  exact derivative along the path, by forward-mode autodiff) is work the limit does not
  count.
- ``ig-captum-best``: Captum with its best batching, ``internal_batch_size`` set to the rows
  per forward where the limit curve is lowest (rounded down to a multiple of the batch, as
  Captum runs ``internal_batch_size // N`` steps of all images per forward).

Both use the same nodes and weights (``numpy.polynomial.legendre.leggauss``), so they must
agree to float rounding.
"""

from __future__ import annotations

import torch

from attrib import BlurIG, IntegratedGradients
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import best_rows, peer_fits, quiet_captum
from benchmarks.limits import Need
from benchmarks.models import Setup

STEPS = 32


def _contenders(setup: Setup, internal_batch_size: int | None, label: str) -> Contenders:
    from captum.attr import IntegratedGradients as CaptumIG

    quiet_captum()
    ours = IntegratedGradients(setup.model, steps=STEPS)
    peer = CaptumIG(setup.model)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(
            x,
            target=target,
            n_steps=STEPS,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
        )

    rows_at_once = internal_batch_size or setup.batch * STEPS
    fits, gib = peer_fits(setup, rows_at_once)
    if not fits:
        return Contenders(run_ours, None, f"{label}: skipped, ~{gib:.0f} GiB")
    return Contenders(run_ours, run_peer, label)


def build_blur(setup: Setup) -> Contenders:
    ours = BlurIG(setup.model, steps=STEPS)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    return Contenders(run_ours, None, None)


def build_default(setup: Setup) -> Contenders:
    return _contenders(setup, None, "captum")


def build_best(setup: Setup) -> Contenders:
    n = setup.batch
    r = best_rows(setup, n * STEPS)
    internal = max(n, (r // n) * n)
    return _contenders(setup, internal, f"captum ibs={internal}")


# calls of seconds each (32 or 16 gradient rows per image): 7 medians are steady enough
REPEATS = 7
NEEDS = (Need("input", STEPS), Need("forward", 1, 1))
register(
    Case("ig", family="integrated_gradients", needs=NEEDS, build=build_default, repeats=REPEATS)
)
register(
    Case(
        "ig-captum-best",
        family="integrated_gradients",
        needs=NEEDS,
        build=build_best,
        repeats=REPEATS,
    )
)
register(
    Case(
        "blur-ig",
        family="integrated_gradients",
        needs=(Need("input", STEPS), Need("forward", 2)),
        build=build_blur,
        repeats=REPEATS,
    )
)

"""Saliency and gradient x input: ours against Captum's ``Saliency(abs=False)`` and
``InputXGradient``.

Both return the signed gradient of each image's target score with respect to the input (times
the input); the methods need exactly one forward and one backward to the input per image, so
their limit is ``N`` rows of that pass at the cheapest rows per forward.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from attrib import GradientXInput, Saliency
from benchmarks.cases import Case, Contenders, register
from benchmarks.limits import Need
from benchmarks.models import Setup


def _contenders(setup: Setup, ours_class: type, peer_name: str, **peer_options: Any) -> Contenders:
    # Imported here, not at module level, so that selecting other cases never imports Captum.
    import captum.attr

    ours = ours_class(setup.model)
    peer = getattr(captum.attr, peer_name)(setup.model)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(x, target=target, **peer_options)

    # Captum warns (once) that it switched on requires_grad for the input: expected, not news.
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    return Contenders(run_ours, run_peer, "captum")


def build(setup: Setup) -> Contenders:
    return _contenders(setup, Saliency, "Saliency", abs=False)


def build_gradient_x_input(setup: Setup) -> Contenders:
    return _contenders(setup, GradientXInput, "InputXGradient")


NEEDS = (Need("input", 1),)
register(Case(name="saliency", family="saliency", needs=NEEDS, build=build))
register(
    Case(name="gradient-x-input", family="saliency", needs=NEEDS, build=build_gradient_x_input)
)

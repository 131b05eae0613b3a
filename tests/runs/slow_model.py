"""A model that sleeps in every forward, so that a test can kill a run's worker while it
explains. In a module of its own: Ray pickles the model by reference to its class, and its
workers import this module (``tests`` must be importable there: see ``tests/runs/test_ray.py``)."""

from __future__ import annotations

import time

import torch
from torch import nn

from attrib.data.gt_cnn import load_ground_truth_cnn


class SlowCNN(nn.Module):
    """The shipped ground-truth CNN (as ``inner``: its CAM layer is ``inner.features.9``),
    ``delay`` seconds slower per forward; the same outputs."""

    def __init__(self, delay: float = 0.05) -> None:
        super().__init__()
        self.inner = load_ground_truth_cnn()
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.inner(x)


def slow_cnn(delay: float = 0.05) -> SlowCNN:
    return SlowCNN(delay).eval()

"""A model that sleeps in every forward, so that a test can kill a run's worker while it
explains. In a module of its own: Ray pickles the model by reference to its class, and its
workers import this module (``tests`` must be importable there: see ``tests/runs/test_ray.py``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from attrib.data.gt_cnn import load_ground_truth_cnn


class SlowCNN(nn.Module):
    """The shipped ground-truth CNN (as ``inner``: its CAM layer is ``inner.features.9``),
    ``delay`` seconds slower per forward; the same outputs. With ``log`` (a folder) each
    forward appends its start and end (``time.monotonic``) to ``log/<pid>.txt``."""

    def __init__(self, delay: float = 0.05, log: str | None = None) -> None:
        super().__init__()
        self.inner = load_ground_truth_cnn()
        self.delay = delay
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = time.monotonic()
        time.sleep(self.delay)
        out = self.inner(x)
        if self.log is not None:
            with open(Path(self.log) / f"{os.getpid()}.txt", "a") as handle:
                handle.write(f"{start!r} {time.monotonic()!r}\n")
        return out


def slow_cnn(delay: float = 0.05, log: str | None = None) -> SlowCNN:
    return SlowCNN(delay, log).eval()


def forward_spans(log: Path) -> dict[int, list[tuple[float, float]]]:
    """Per process, the (start, end) of each forward a ``SlowCNN`` logged, in order."""
    spans = {}
    for path in log.glob("*.txt"):
        rows = [line.split() for line in path.read_text().splitlines()]
        spans[int(path.stem)] = sorted((float(a), float(b)) for a, b in rows)
    return spans

"""Small models for the command-line tests (named as ``tests.cli.toy_models:tiny_cnn``)."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Two convolutions, global average pooling, a linear head: every method applies."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def tiny_cnn() -> TinyCNN:
    torch.manual_seed(0)
    return TinyCNN().eval()


def broken() -> TinyCNN:
    raise RuntimeError("this factory always fails")


def flat_mlp() -> nn.Module:
    """No convolution: CAM methods have no layer to take by default (24 x 32 images)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 24 * 32, 8), nn.ReLU(), nn.Linear(8, 4)).eval()

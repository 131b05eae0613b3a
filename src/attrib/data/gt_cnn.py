"""The small CNN trained on the ground-truth dataset (``attrib.data.ground_truth``), shipped.

``load_ground_truth_cnn()`` returns it with the weights in ``gt_cnn.pt`` (made by
``scripts/train_ground_truth_cnn.py``; ``gt_cnn.json`` records how, and the test accuracy).
Four convolutions, global average pooling and one linear layer: the form CAM needs, with
``features.8`` (8 x 8 at 32 x 32 inputs) as the last convolution; explain Grad-CAM at its ReLU,
``features.9`` (the block's output, as is usual for Grad-CAM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attrib.data.ground_truth import CLASSES

__all__ = ["WEIGHTS", "GroundTruthCNN", "load_ground_truth_cnn", "training_record"]

WEIGHTS = Path(__file__).with_name("gt_cnn.pt")
RECORD = Path(__file__).with_name("gt_cnn.json")


class GroundTruthCNN(nn.Module):
    """``(N, 3, 32, 32)`` images in [0, 1] to ``(N, 4)`` class scores (logits)."""

    def __init__(self, n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # centring the [0, 1] pixels makes training start faster; it is part of the model, so
        # explanations are of the model on the images as they are
        return self.classifier(self.pool(self.features(x - 0.5)).flatten(1))


def load_ground_truth_cnn(path: str | Path | None = None) -> GroundTruthCNN:
    """The trained model in eval mode (weights from ``path``, default the shipped file)."""
    model = GroundTruthCNN()
    state = torch.load(path or WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def training_record() -> dict[str, Any]:
    """What the training script recorded: command, seeds, sizes, test accuracy."""
    return json.loads(RECORD.read_text())

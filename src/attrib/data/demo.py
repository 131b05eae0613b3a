"""The placeholder demo: the core at work on a model whose answer is known.

The embedded model is built in code (no file, no download): a one-filter convolutional
"bright-square detector" whose class-1 score is the mean response of a 5x5 box filter, and
class 0 its negative. On an image with one bright square, the saliency of class 1 must sit on
the square and its border, where the filter sees it; the demo prints that check. The real
pretrained demo model and the HTML report replace this when the demo issue lands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from attrib.methods.gradient import GradientXInput, Saliency


class SquareDetector(nn.Module):
    """Scores ``[-m, m]`` where ``m`` is the mean ReLU response of a 5x5 box filter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 5, padding=2, bias=True)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / 25)
            self.conv.bias.fill_(-0.5)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.pool(self.relu(self.conv(x))).flatten(1)
        return torch.cat([-m, m], dim=1)


def demo_image(size: int = 32, top: int = 10, left: int = 14, side: int = 8) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[..., top : top + side, left : left + side] = 1.0
    return image


def run_demo(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model = SquareDetector().eval()
    image = demo_image()
    results = {m.name: m(image, target=1) for m in (Saliency(model), GradientXInput(model))}
    square = image[0, 0] > 0
    for name, result in results.items():
        saliency = result.saliency()[0]
        inside = float(saliency[square].sum() / saliency.sum().clamp(min=1e-12))
        print(f"{name:<15} share of |attribution| on the square: {inside:.2f}")
    path = out / "attributions.npz"
    np.savez(path, image=image.numpy(), **{k: v.numpy() for k, v in results.items()})
    return path

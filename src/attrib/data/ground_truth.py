"""A dataset whose explanations have a right answer: shapes on textured backgrounds.

Each image is ``size x size`` RGB. Its class is decided by one object alone (a square, a disk,
a triangle or a cross) drawn in a flat colour at a random place and size; the background is a
random texture (two oriented sinusoidal gratings plus pixel noise, on a random base colour).
Everything but the shape (position, size, colours, texture, noise) is drawn independently of
the class, so a model that classifies well must look at the object, and the object's mask is
the ground truth that localization metrics (pointing game, relevance mass and rank accuracy)
compare explanations with.

The generator is seeded and deterministic (``torch.Generator`` on the CPU, draws in a fixed
order); pixel values are multiples of 1/255, so a batch can be stored as ``uint8`` exactly.
``scripts/make_ground_truth_data.py`` writes batches to ``.npz`` files and
``scripts/train_ground_truth_cnn.py`` trains the shipped ``GroundTruthCNN``
(``attrib.data.gt_cnn``) on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from attrib.core.errors import SettingError

__all__ = ["CLASSES", "GroundTruthBatch", "make_ground_truth"]

CLASSES = ("square", "disk", "triangle", "cross")

# object half-size in pixels, as a fraction of the image side (4 to 7 pixels at 32)
_MIN_HALF, _MAX_HALF = 0.125, 0.22
# the object's colour differs from the background's base colour by at least this much in every
# channel (in [0, 1] units), so that the object is always visible, but in a random direction
_MIN_CONTRAST, _MAX_CONTRAST = 0.3, 0.55
_GRATING_AMPLITUDE = 0.12
_PIXEL_NOISE = 0.03


@dataclass(frozen=True)
class GroundTruthBatch:
    """Images, their classes and the masks of the objects that decide the classes.

    Attributes:
        images: ``(n, 3, size, size)`` float32 in [0, 1], multiples of 1/255.
        labels: ``(n,)`` long, indices into ``CLASSES``.
        masks: ``(n, size, size)`` bool, True on the object's pixels.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]


def make_ground_truth(n: int, seed: int = 0, size: int = 32) -> GroundTruthBatch:
    """Draw ``n`` images with ``seed`` (the same ``(n, seed, size)`` always gives the same batch).

    The first ``m`` images of ``make_ground_truth(n, seed)`` are not those of
    ``make_ground_truth(m, seed)``: draws are made per quantity for the whole batch.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SettingError("n", "a positive int (number of images)", n, "")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise SettingError("size", "an int >= 16 (image side in pixels)", size, "")
    g = torch.Generator().manual_seed(int(seed))

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)

    labels = torch.randint(len(CLASSES), (n,), generator=g)
    half = uniform(n, low=_MIN_HALF * size, high=_MAX_HALF * size)
    # centres keep the whole object inside the image
    cy = half + uniform(n) * (size - 1 - 2 * half)
    cx = half + uniform(n) * (size - 1 - 2 * half)

    rows = torch.arange(size, dtype=torch.float64).view(1, size, 1)
    cols = torch.arange(size, dtype=torch.float64).view(1, 1, size)
    dy = rows - cy.view(n, 1, 1)
    dx = cols - cx.view(n, 1, 1)
    masks = _shape_masks(labels, dx, dy, half.view(n, 1, 1))

    base = uniform(n, 3, low=0.25, high=0.75)
    background = base.view(n, 3, 1, 1) + _texture(g, n, size, rows, cols)
    background = background + _PIXEL_NOISE * torch.randn(
        (n, 3, size, size), generator=g, dtype=torch.float64
    )
    sign = torch.where(uniform(n, 3) < 0.5, -1.0, 1.0)
    # the contrast direction must stay inside [0, 1]: flip it where it would leave the range
    contrast = uniform(n, 3, low=_MIN_CONTRAST, high=_MAX_CONTRAST)
    colour = base + sign * contrast
    outside = (colour < 0) | (colour > 1)
    colour = torch.where(outside, base - sign * contrast, colour)

    images = torch.where(masks.unsqueeze(1), colour.view(n, 3, 1, 1), background)
    images = torch.round(images.clamp(0, 1) * 255) / 255
    return GroundTruthBatch(images.to(torch.float32), labels, masks)


def _shape_masks(
    labels: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor
) -> torch.Tensor:
    """The pixels of each object: offsets ``(dx, dy)`` from its centre, half-size ``r``."""
    ax, ay = dx.abs(), dy.abs()
    square = (ax <= r) & (ay <= r)
    disk = dx * dx + dy * dy <= r * r
    # apex up: the half-width grows linearly from 0 at dy = -r to r at dy = +r
    triangle = (ay <= r) & (ax <= (dy + r) / 2)
    bar = r / 3
    cross = ((ax <= bar) & (ay <= r)) | ((ay <= bar) & (ax <= r))
    shapes = torch.stack([square, disk, triangle, cross], dim=1)  # (n, classes, H, W)
    return shapes[torch.arange(labels.shape[0]), labels]


def _texture(
    g: torch.Generator, n: int, size: int, rows: torch.Tensor, cols: torch.Tensor
) -> torch.Tensor:
    """Two random oriented gratings per image, each with its own weight per channel."""
    out = torch.zeros((n, 3, size, size), dtype=torch.float64)
    for _ in range(2):
        theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        freq = 0.1 + 0.4 * torch.rand(n, generator=g, dtype=torch.float64)  # cycles per pixel
        phase = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        weight = torch.rand((n, 3), generator=g, dtype=torch.float64)
        along = rows * torch.sin(theta).view(n, 1, 1) + cols * torch.cos(theta).view(n, 1, 1)
        wave = torch.sin(2 * math.pi * freq.view(n, 1, 1) * along + phase.view(n, 1, 1))
        out = out + _GRATING_AMPLITUDE * weight.view(n, 3, 1, 1) * wave.unsqueeze(1)
    return out

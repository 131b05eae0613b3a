"""attrib: explain the predictions of PyTorch models.

Every method is configured once with the model and called on batches::

    from attrib import Saliency
    attribution = Saliency(model)(images, target="predicted")
    maps = attribution.saliency()          # (N, H, W): max over channels of |gradient|

Every method of ``attrib.methods`` is a name of this package; ``attrib.methods.catalogue``
says what each one is.

The names are loaded on first use (PEP 562): ``import attrib`` alone imports neither torch
nor any method, so the ``attrib`` command parses its arguments (and ``attrib --help``
answers) without starting torch. ``from attrib import X`` and ``attrib.X`` work as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # also in attrib/core/version.py and pyproject.toml (tested)

# the public names of ``attrib.methods`` (importing the package to read its ``__all__`` would
# import torch; a test checks that every name of it is here)
_METHOD_NAMES = (
    "CAM",
    "LIME",
    "LRP",
    "AblationCAM",
    "BlurIG",
    "Deconvolution",
    "DeepLIFT",
    "EigenCAM",
    "ExactShapley",
    "ExpectedGradients",
    "FeatureAblation",
    "FullGrad",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientXInput",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "IntegratedGradients",
    "KernelSHAP",
    "LayerCAM",
    "LayerConductance",
    "Method",
    "Occlusion",
    "Saliency",
    "ScoreCAM",
    "ShapleySampling",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
    "XGradCAM",
    "vit_reshape",
)

# name -> the module that defines it
_SOURCES: dict[str, str] = {
    "AnchorsText": "attrib.text.anchors",
    "AttribError": "attrib.core.errors",
    "AttribWarning": "attrib.core.errors",
    "Attribution": "attrib.core.result",
    "bind": "attrib.core.rows",
    "explain": "attrib.api",
    "neuron": "attrib.core.neuron",
    **{name: "attrib.methods" for name in _METHOD_NAMES},
}

__all__ = [
    "AnchorsText",
    "AttribError",
    "AttribWarning",
    "Attribution",
    "bind",
    "explain",
    "neuron",
    *_METHOD_NAMES,
]

if TYPE_CHECKING:  # what type checkers and IDEs see: the names themselves
    from attrib.api import explain
    from attrib.core.errors import AttribError, AttribWarning
    from attrib.core.neuron import neuron
    from attrib.core.result import Attribution
    from attrib.core.rows import bind
    from attrib.methods import *  # noqa: F403
    from attrib.text.anchors import AnchorsText


# subpackages reachable as ``attrib.text`` etc. after a bare ``import attrib``, as when the
# facade imported them eagerly
_SUBPACKAGES = ("api", "cli", "core", "data", "methods", "metrics", "report", "text", "viz")


def __getattr__(name: str) -> Any:
    """A public name (or subpackage), imported the first time it is asked for."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"attrib.{name}")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'attrib' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

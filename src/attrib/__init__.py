"""attrib: explain the predictions of PyTorch models.

Every method is configured once with the model and called on batches::

    from attrib import Saliency
    attribution = Saliency(model)(images, target="predicted")
    maps = attribution.saliency()          # (N, H, W): max over channels of |gradient|
"""

from attrib.api import explain
from attrib.core.errors import AttribError, AttribWarning
from attrib.core.result import Attribution
from attrib.methods import (
    BlurIG,
    ExpectedGradients,
    GradientXInput,
    IntegratedGradients,
    Method,
    Saliency,
    SmoothGrad,
    SmoothGradSquared,
    VarGrad,
)

__version__ = "0.1.0"

__all__ = [
    "AttribError",
    "AttribWarning",
    "Attribution",
    "BlurIG",
    "ExpectedGradients",
    "GradientXInput",
    "IntegratedGradients",
    "Method",
    "Saliency",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
    "explain",
]

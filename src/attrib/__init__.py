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
    CAM,
    AblationCAM,
    BlurIG,
    EigenCAM,
    ExpectedGradients,
    GradCAM,
    GradCAMPlusPlus,
    GradientXInput,
    GuidedGradCAM,
    HiResCAM,
    IntegratedGradients,
    LayerCAM,
    Method,
    Saliency,
    ScoreCAM,
    SmoothGrad,
    SmoothGradSquared,
    VarGrad,
    XGradCAM,
    vit_reshape,
)

__version__ = "0.1.0"

__all__ = [
    "CAM",
    "AblationCAM",
    "AttribError",
    "AttribWarning",
    "Attribution",
    "BlurIG",
    "EigenCAM",
    "ExpectedGradients",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientXInput",
    "GuidedGradCAM",
    "HiResCAM",
    "IntegratedGradients",
    "LayerCAM",
    "Method",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
    "XGradCAM",
    "explain",
    "vit_reshape",
]

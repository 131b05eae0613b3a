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
    LIME,
    LRP,
    AblationCAM,
    BlurIG,
    Deconvolution,
    DeepLIFT,
    EigenCAM,
    ExactShapley,
    ExpectedGradients,
    FeatureAblation,
    GradCAM,
    GradCAMPlusPlus,
    GradientXInput,
    GuidedBackprop,
    GuidedGradCAM,
    HiResCAM,
    IntegratedGradients,
    KernelSHAP,
    LayerCAM,
    Method,
    Occlusion,
    Saliency,
    ScoreCAM,
    ShapleySampling,
    SmoothGrad,
    SmoothGradSquared,
    VarGrad,
    XGradCAM,
    vit_reshape,
)
from attrib.text.anchors import AnchorsText  # registers the text methods too (attrib.text)

__version__ = "0.1.0"

__all__ = [
    "CAM",
    "LIME",
    "LRP",
    "AblationCAM",
    "AnchorsText",
    "AttribError",
    "AttribWarning",
    "Attribution",
    "BlurIG",
    "Deconvolution",
    "DeepLIFT",
    "EigenCAM",
    "ExactShapley",
    "ExpectedGradients",
    "FeatureAblation",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientXInput",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "IntegratedGradients",
    "KernelSHAP",
    "LayerCAM",
    "Method",
    "Occlusion",
    "Saliency",
    "ScoreCAM",
    "ShapleySampling",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
    "XGradCAM",
    "explain",
    "vit_reshape",
]

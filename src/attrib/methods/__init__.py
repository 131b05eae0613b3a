"""attrib's methods. Each is a callable object: ``Method(model, **settings)(x, target=...)``.

Importing a method's module registers it in ``attrib.methods.catalogue``; the text methods
register theirs when ``attrib.text`` is imported (whoever lists methods imports it).
"""

from attrib.methods.base import Method
from attrib.methods.cam import (
    CAM,
    AblationCAM,
    EigenCAM,
    FullGrad,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
    vit_reshape,
)
from attrib.methods.conductance import LayerConductance
from attrib.methods.gradient import GradientXInput, Saliency
from attrib.methods.path import BlurIG, ExpectedGradients, IntegratedGradients
from attrib.methods.perturbation import (
    LIME,
    ExactShapley,
    FeatureAblation,
    KernelSHAP,
    Occlusion,
    ShapleySampling,
)
from attrib.methods.propagation import LRP, Deconvolution, DeepLIFT, GuidedBackprop
from attrib.methods.smoothing import SmoothGrad, SmoothGradSquared, VarGrad

__all__ = [
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
]

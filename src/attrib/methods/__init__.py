"""attrib's methods. Each is a callable object: ``Method(model, **settings)(x, target=...)``."""

from attrib.methods.base import Method
from attrib.methods.gradient import GradientXInput, Saliency
from attrib.methods.path import BlurIG, ExpectedGradients, IntegratedGradients
from attrib.methods.smoothing import SmoothGrad, SmoothGradSquared, VarGrad

__all__ = [
    "BlurIG",
    "ExpectedGradients",
    "GradientXInput",
    "IntegratedGradients",
    "Method",
    "Saliency",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
]

"""Propagation methods: guided backprop, deconvolution, DeepLIFT and LRP.

Each replaces the backward rule of some functions, call by call, inside a torch-function
mode that lives only during the method's forward (``mode.py``).
"""

from attrib.methods.propagation.deeplift import DeepLIFT
from attrib.methods.propagation.guided import Deconvolution, GuidedBackprop
from attrib.methods.propagation.lrp import (
    CPLRP,
    LRP,
    AlphaBeta,
    AttnLRP,
    Composite,
    ConstantScale,
    Detach,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    MergeBatchNorm,
    Norm,
    Pass,
    Rule,
    SoftmaxTaylor,
    Uniform,
    WSquare,
    ZBox,
    ZPlus,
)

__all__ = [
    "CPLRP",
    "LRP",
    "AlphaBeta",
    "AttnLRP",
    "Composite",
    "ConstantScale",
    "Deconvolution",
    "DeepLIFT",
    "Detach",
    "Epsilon",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlus",
    "EpsilonPlusFlat",
    "Flat",
    "Gamma",
    "GuidedBackprop",
    "MergeBatchNorm",
    "Norm",
    "Pass",
    "Rule",
    "SoftmaxTaylor",
    "Uniform",
    "WSquare",
    "ZBox",
    "ZPlus",
]

"""Layer-wise relevance propagation: rules as data, composites, canonizers, the method."""

from attrib.methods.propagation.lrp.canonizers import Canonizer, MergeBatchNorm
from attrib.methods.propagation.lrp.composites import (
    COMPOSITES,
    Composite,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerInfo,
)
from attrib.methods.propagation.lrp.method import LRP
from attrib.methods.propagation.lrp.rules import (
    AlphaBeta,
    Bound,
    Clamp,
    Epsilon,
    Flat,
    Gamma,
    Norm,
    Params,
    Part,
    Pass,
    Rule,
    Term,
    WSquare,
    ZBox,
    ZPlus,
)

__all__ = [
    "COMPOSITES",
    "LRP",
    "AlphaBeta",
    "Bound",
    "Canonizer",
    "Clamp",
    "Composite",
    "Epsilon",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlus",
    "EpsilonPlusFlat",
    "Flat",
    "Gamma",
    "LayerInfo",
    "MergeBatchNorm",
    "Norm",
    "Params",
    "Part",
    "Pass",
    "Rule",
    "Term",
    "WSquare",
    "ZBox",
    "ZPlus",
]

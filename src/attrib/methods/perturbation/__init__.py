"""Removal (perturbation) methods: remove features, watch the target score.

- ``Occlusion``: sliding windows (Zeiler and Fergus 2014).
- ``FeatureAblation``: one group of features at a time.
- ``ExactShapley``, ``ShapleySampling``: Shapley values of the removal game, exactly or from
  random orders of the players (Strumbelj and Kononenko 2014).
- ``KernelSHAP`` (Lundberg and Lee 2017) and ``LIME`` (Ribeiro et al. 2016): one weighted
  linear surrogate (``LinearSurrogate``), two configurations.

Players (groups of features) come from ``feature_mask=``: ``grid(cell)``, ``superpixels(n)``
(scikit-image, optional), a tensor or a callable; see ``masks``.
"""

from attrib.methods.perturbation.ablation import FeatureAblation
from attrib.methods.perturbation.kernel import (
    LIME,
    BernoulliSampler,
    ExponentialKernel,
    KernelSampler,
    KernelSHAP,
    LinearSurrogate,
    ShapleyKernel,
)
from attrib.methods.perturbation.masks import grid, superpixels
from attrib.methods.perturbation.occlusion import Occlusion
from attrib.methods.perturbation.shapley import ExactShapley, ShapleySampling, shapley_values

__all__ = [
    "LIME",
    "BernoulliSampler",
    "ExactShapley",
    "ExponentialKernel",
    "FeatureAblation",
    "KernelSHAP",
    "KernelSampler",
    "LinearSurrogate",
    "Occlusion",
    "ShapleyKernel",
    "ShapleySampling",
    "grid",
    "shapley_values",
    "superpixels",
]

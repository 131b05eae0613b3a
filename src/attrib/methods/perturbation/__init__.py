"""Removal (perturbation) methods: remove features, watch the target score.

- ``Occlusion``: sliding windows (Zeiler and Fergus 2014).
- ``FeatureAblation``: one group of features at a time.
- ``ExactShapley``, ``ShapleySampling``: Shapley values of the removal game, exactly or from
  random orders of the players (Strumbelj and Kononenko 2014).
- ``KernelSHAP`` (Lundberg and Lee 2017) and ``LIME`` (Ribeiro et al. 2016): one weighted
  linear surrogate (``LinearSurrogate``), two configurations. KernelSHAP draws its
  coalitions by leverage scores by default (Leverage SHAP, Musco and Witter 2025; ``leverage``).

Players (groups of features) come from ``feature_mask=``: ``grid(cell)``, ``superpixels(n)``
(scikit-image, optional), a tensor or a callable; see ``masks``.

Decision (``spread=``, the methods with players): a player's value is put on its features
with ``spread="divide"`` by default, split evenly, so that a player's features sum to its
value and the whole map to the players' total (for ``ExactShapley``, ``ShapleySampling``
and ``KernelSHAP``: to ``f(x) - f(baseline)`` up to ``delta``, the completeness that
gradient and path methods' maps have too, so maps of all methods add up alike and a
metric that sums a map over a region reads a player's value, not the value times its
size). ``spread="copy"`` gives every feature the player's whole value, the picture Captum
and shap draw. Either way the players' own values are ``params["player_values"]`` ``(N, P)``.
``Occlusion`` has no players: a feature gets the mean drop of the windows covering it.
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
from attrib.methods.perturbation.leverage import LeverageSampler
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
    "LeverageSampler",
    "LinearSurrogate",
    "Occlusion",
    "ShapleyKernel",
    "ShapleySampling",
    "grid",
    "shapley_values",
    "superpixels",
]

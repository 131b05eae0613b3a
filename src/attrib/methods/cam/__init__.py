"""The CAM family: class activation maps of a chosen layer, one small rule per method.

Every method is ``Method(model, layer=..., **settings)(x, target=...) -> Attribution`` with
``values`` of shape ``(N, H, W)`` at the input's resolution (``upsample=False``: the layer's).

- ``CAM`` (Zhou et al. 2016): the linear head's class weights, for GAP + linear networks.
- ``GradCAM``, ``GradCAMPlusPlus``, ``XGradCAM``, ``HiResCAM``, ``LayerCAM``: weights from the
  gradient of the target score at the layer (one forward, one backward to the layer).
- ``GuidedGradCAM``: guided backpropagation times the upsampled Grad-CAM map.
- ``ScoreCAM``, ``AblationCAM``: weights from forwards of masked inputs / ablated channels,
  ``N x K`` rows in chunks of ``batch_size``.
- ``EigenCAM``: the first principal component of the activations (class-agnostic).
- ``FullGrad``: the input-gradient and bias-gradient parts of the score, every layer with a
  bias at once (no layer to choose).

Every layer method takes a list of layers (maps fused), ``aug_smooth`` and ``eigen_smooth``
(see ``attrib.methods.cam.base``).
"""

from attrib.methods.cam.ablation import AblationCAM
from attrib.methods.cam.base import CAMMethod
from attrib.methods.cam.eigen import EigenCAM
from attrib.methods.cam.fullgrad import FullGrad
from attrib.methods.cam.gradient import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from attrib.methods.cam.guided import GuidedGradCAM
from attrib.methods.cam.linear_head import CAM
from attrib.methods.cam.maps import TokenGrid, vit_reshape
from attrib.methods.cam.score import ScoreCAM

__all__ = [
    "CAM",
    "AblationCAM",
    "CAMMethod",
    "EigenCAM",
    "FullGrad",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedGradCAM",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "TokenGrid",
    "XGradCAM",
    "vit_reshape",
]

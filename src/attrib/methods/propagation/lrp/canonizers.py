"""Canonizers: rewrite a model into an equivalent, LRP-friendly form for one explanation.

LRP's rules are written for ``linear layer -> activation`` chains; a batch norm between a
convolution and its ReLU, or a residual ``x + f(x)`` written with ``+``, fall outside them.
Zennit rewrites the model (merged parameters, a ``Sum`` module in a replaced ``forward``) and
undoes it afterwards. Here the rewrite happens *per call*, inside the propagation mode, and
the model is never modified, so there is nothing to undo and nothing to leak on an
exception:

- ``MergeBatchNorm``: a batch norm (eval mode) whose input is the output of a convolution or
  fully connected call is folded into that call at backward time (``W' = W * s``, ``b' =
  (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``); the merged layer gets the
  layer's rule and the batch norm passes relevance through. The merge is refused (the batch
  norm keeps the composite's ``batch_norms`` rule) when the layer's output was used by
  anything else first; it raises when the output is used again after the merge.
- Residual sums need no canonizer: every ``a + b`` (``+``, ``+=``, ``torch.add``) of two
  input-dependent tensors is already a node of its own, which the composite's ``sums`` rule
  (``Norm``: ``R_a = a / (a + b) R``) handles, as Zennit's ``Sum`` module does after its
  ResNet canonizer.
"""

from __future__ import annotations

import torch.nn.functional as F

from attrib.methods.propagation.lrp.layers import BatchNormParams, LayerCall

__all__ = ["Canonizer", "MergeBatchNorm"]


class Canonizer:
    """Base class of canonizers (rewrites of calls, applied during the forward only)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


_GROUPED_TRANSPOSED = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)


class MergeBatchNorm(Canonizer):
    """Fold a batch norm into the convolution or linear layer that produced its input."""

    def merge(self, layer: LayerCall, batch_norm: BatchNormParams) -> bool:
        """Merge if it is valid: the layer's output feeds nothing else, and its channels line
        up with the batch norm's."""
        if layer.uses > 0 or layer.batch_norm is not None:
            return False
        if layer.func in _GROUPED_TRANSPOSED and layer.options.get("groups", 1) != 1:
            return False
        channels = layer.weight.shape[1] if layer.func in _GROUPED_TRANSPOSED else len(layer.weight)
        if batch_norm.scale.numel() != channels:
            return False
        layer.batch_norm = batch_norm
        return True

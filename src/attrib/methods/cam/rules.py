"""The weighting rules of the CAM family: pure functions of a layer's activations ``A`` and the
gradients ``G = dS_c/dA`` of the target score, both ``(N, K, h, w)``.

Each returns the map before ReLU, ``(N, h, w)``; ``sum_k`` runs over the ``K`` channels and
``sum_ij`` over the ``h x w`` locations of a channel. Where a paper's ratio has a zero
denominator its numerator is zero too (a dead channel), and the term is taken as 0.

A rule makes one term per channel (``w_k A^k``, or ``G^k * A^k`` element-wise) and ``reduce``
turns the terms ``(N, K, h, w)`` into the map: ``channel_sum`` (the papers' ``sum_k``), or
``first_component``, their projection on their first principal component
(pytorch-grad-cam's ``eigen_smooth``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from attrib.methods.cam.maps import min_max

__all__ = [
    "Reduce",
    "ablation_weights",
    "channel_sum",
    "eigen_cam",
    "first_component",
    "full_gradient_map",
    "grad_cam",
    "grad_cam_plus_plus",
    "hires_cam",
    "layer_cam",
    "score_weights",
    "weighted_sum",
    "xgrad_cam",
]

Reduce = Callable[[torch.Tensor], torch.Tensor]
"""Channel terms ``(N, K, h, w)`` -> a map ``(N, h, w)``."""


def channel_sum(terms: torch.Tensor) -> torch.Tensor:
    """``sum_k T^k``: the map of every paper."""
    return terms.sum(dim=1)


def first_component(terms: torch.Tensor) -> torch.Tensor:
    """The terms as a ``(h w) x K`` matrix, each channel centred over the locations, projected
    on its first right singular vector (``eigen_cam(terms, center=True)``): the map along the
    direction in which the channels' terms vary most, which smooths away what only a few
    channels say (pytorch-grad-cam's ``get_2d_projection``, its ``eigen_smooth=True``).

    The vector is oriented so that its entries sum to ``>= 0``. Since the centred channel sum
    is ``T_c 1`` and ``(T_c v_1) . (T_c 1) = s_1^2 (v_1 . 1)``, this is the orientation in which
    the projection correlates positively with the map ``sum_k T^k`` it smooths.
    """
    return eigen_cam(terms, center=True)


def weighted_sum(
    weights: torch.Tensor, activations: torch.Tensor, reduce: Reduce = channel_sum
) -> torch.Tensor:
    """``sum_k w_k A^k``: channel weights ``(N, K)`` times maps ``(N, K, h, w)`` (``reduce``
    other than ``channel_sum``: of the terms ``w_k A^k``)."""
    weights = weights.to(activations.dtype)
    if reduce is channel_sum:  # no (N, K, h, w) product needed for the plain sum
        return torch.einsum("nk,nkhw->nhw", weights, activations)
    return reduce(weights[:, :, None, None] * activations)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator != 0, numerator / safe, torch.zeros_like(numerator))


def grad_cam(
    activations: torch.Tensor, gradients: torch.Tensor, reduce: Reduce = channel_sum
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): ``alpha_k = 1/Z sum_ij G^k_ij`` (the gradient's
    global average), map ``sum_k alpha_k A^k``."""
    return weighted_sum(gradients.mean(dim=(2, 3)), activations, reduce)


def grad_cam_plus_plus(
    activations: torch.Tensor,
    gradients: torch.Tensor,
    eps: float = 0.0,
    reduce: Reduce = channel_sum,
) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with their exponential-score closed form):

        a^k_ij = G_ij^2 / (2 G_ij^2 + sum_ab A^k_ab G_ij^3),
        w_k = sum_ij a^k_ij ReLU(G^k_ij),      map = sum_k w_k A^k.

    ``eps`` is added to the denominator (0 in the paper; pytorch-grad-cam uses 1e-6).
    """
    g2 = gradients * gradients
    total = activations.sum(dim=(2, 3), keepdim=True)
    alpha = _ratio(g2, 2 * g2 + total * g2 * gradients + eps)
    weights = (alpha * torch.relu(gradients)).sum(dim=(2, 3))
    return weighted_sum(weights, activations, reduce)


def xgrad_cam(
    activations: torch.Tensor, gradients: torch.Tensor, reduce: Reduce = channel_sum
) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): ``w_k = sum_ij (A^k_ij / sum_ab A^k_ab) G^k_ij``,
    map ``sum_k w_k A^k``."""
    weights = _ratio((activations * gradients).sum(dim=(2, 3)), activations.sum(dim=(2, 3)))
    return weighted_sum(weights, activations, reduce)


def hires_cam(
    activations: torch.Tensor, gradients: torch.Tensor, reduce: Reduce = channel_sum
) -> torch.Tensor:
    """HiResCAM (Draelos and Carin 2020): ``sum_k G^k * A^k``, element-wise: Grad-CAM
    without averaging the gradient over locations."""
    return reduce(gradients * activations)


def layer_cam(
    activations: torch.Tensor, gradients: torch.Tensor, reduce: Reduce = channel_sum
) -> torch.Tensor:
    """LayerCAM (Jiang et al. 2021): ``sum_k ReLU(G^k) * A^k``, element-wise."""
    return reduce(torch.relu(gradients) * activations)


def eigen_cam(activations: torch.Tensor, center: bool = False) -> torch.Tensor:
    """Eigen-CAM (Muhammad and Yeasin 2020): the activations as a ``(h w) x K`` matrix
    ``O = U S V^T`` projected on the first right singular vector, ``O v_1``.

    The paper factorises ``O`` itself; ``center=True`` first subtracts each channel's mean
    over locations (principal components proper, as pytorch-grad-cam does). A singular vector
    has no sign of its own: ``v_1`` is oriented so that its entries sum to ``>= 0``, i.e. the
    component points the way most channels do (for non-negative activations and no
    centering this is the non-negative Perron vector).
    """
    n, k, h, w = activations.shape
    matrix = activations.reshape(n, k, h * w).transpose(1, 2)  # (N, hw, K)
    if center:
        matrix = matrix - matrix.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    first = vh[:, 0, :]  # (N, K)
    sign = torch.where(first.sum(dim=1, keepdim=True) < 0, -1.0, 1.0).to(first.dtype)
    return (matrix @ (first * sign).unsqueeze(-1)).view(n, h, w)


def score_weights(scores: torch.Tensor) -> torch.Tensor:
    """Score-CAM (Wang et al. 2020, Algorithm 1): ``w_k = softmax_k(S_c(X * H_k) - S_c(X_b))``
    over the channels of each sample, ``H_k`` the min-max normalised upsampled ``A^k``.
    The baseline score is the same for every ``k`` and cancels in the softmax."""
    return torch.softmax(scores, dim=1)


def ablation_weights(score: torch.Tensor, ablated: torch.Tensor) -> torch.Tensor:
    """Ablation-CAM (Desai and Ramaswamy 2020): ``w_k = (y_c - y_c^k) / y_c``, with
    ``y_c^k`` the score when channel ``k`` of the layer is set to zero. ``score`` is
    ``(N,)``, ``ablated`` ``(N, K)``; a zero ``y_c`` gives zero weights (the ratio has no
    value there)."""
    y = score.unsqueeze(1).to(ablated.dtype)
    return _ratio(y - ablated, y.expand_as(ablated))


def full_gradient_map(terms: torch.Tensor, scale: str = "channel") -> torch.Tensor:
    """FullGrad's post-processing of one layer's terms ``T`` ``(N, K, h, w)`` (input-gradient
    x input, or bias x gradient at a layer's output; Srinivas and Fleuret 2019, eq. 4):

        sum_k s(|T^k|),

    ``s`` the min-max scaling to [0, 1] over the locations of each channel (``"channel"``:
    the paper's ``sum_c psi(f^b_c)`` and pytorch-grad-cam), or over all channels of the
    layer at once (``"layer"``: the authors' released code). A constant channel (or layer)
    scales to 0. Upsampling is linear, so it commutes with the sum over channels and is left
    to the caller: the map stays at the layer's resolution.
    """
    magnitude = terms.abs()
    if scale == "layer":
        n, k, h, w = magnitude.shape
        scaled = min_max(magnitude.reshape(n, k * h, w)).view(n, k, h, w)
    else:
        scaled = min_max(magnitude)  # over the last two dimensions: per sample and channel
    return scaled.sum(dim=1)

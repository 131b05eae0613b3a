"""Noisy linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
for Attribution Methods", ROAD).

Removed pixels are not set to a constant (which leaks the removal pattern to the model: the
"class information leakage" ROAD is about) but filled in from their neighbours. Every removed
pixel ``p`` takes the weighted mean of its 8 neighbours ``N(p)`` inside the image, direct ones
weighing 1/6 and diagonal ones 1/12, and all removed pixels are solved for jointly:

    s_p v_p - sum_{q in N(p), q removed} w_pq v_q = sum_{q in N(p), q kept} w_pq x_q,
    s_p = sum_{q in N(p)} w_pq,

then ``noise * N(0, 1)`` is added to each imputed value. The system is symmetric and
diagonally dominant; it is solved by conjugate gradients preconditioned with ``s`` (batched
over rows and channels, in float64) instead of a sparse direct solver, so that it runs on any
device with torch alone. It matches the reference implementation (Quantus'
``noisy_linear_imputation``, from https://github.com/tleemann/road_evaluation) to solver
precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attrib.core.errors import InputError

__all__ = ["NEIGHBOUR_WEIGHTS", "linear_imputation"]

NEIGHBOUR_WEIGHTS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)


def _neighbour_sum(t: torch.Tensor) -> torch.Tensor:
    """``sum_q w_pq t_q`` over the 8 neighbours inside the image (zero outside), at every p."""
    h, w = t.shape[-2:]
    padded = F.pad(t, (1, 1, 1, 1))
    out = torch.zeros_like(t)
    for (dy, dx), weight in NEIGHBOUR_WEIGHTS:
        out = out + weight * padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    return out


def linear_imputation(
    x: torch.Tensor,
    mask: torch.Tensor,
    *,
    tolerance: float = 1e-8,
    max_iterations: int | None = None,
) -> torch.Tensor:
    """Fill the pixels where ``mask`` is True from their neighbours (no noise).

    Args:
        x: images ``(N, C, H, W)``.
        mask: ``(N, H, W)`` bool, True where a pixel is removed (all its channels).
        tolerance: each system (an image's channel) stops when its residual norm is below
            ``tolerance`` times its right-hand side's norm.
        max_iterations: the most conjugate-gradient steps (default: the image's number of
            removed pixels, where exact arithmetic would have converged).

    A row with every pixel removed has nothing to impute from; its pixels become 0.
    """
    if x.dim() != 4 or mask.shape != (x.shape[0], *x.shape[2:]):
        raise InputError(
            "mask",
            f"one (H, W) mask per image of x {tuple(x.shape)}",
            mask,
            "",
        )
    removed = mask.to(torch.float64).unsqueeze(1)  # (N, 1, H, W)
    kept = 1.0 - removed
    data = x.to(torch.float64)
    s = _neighbour_sum(torch.ones_like(removed))  # in-image neighbour weight per pixel
    rhs = removed * _neighbour_sum(data * kept)

    def apply(v: torch.Tensor) -> torch.Tensor:  # v is zero on kept pixels
        return removed * (s * v - _neighbour_sum(v))

    inverse_diagonal = removed / s
    v = removed * _coarse_guess(data, removed)
    r = rhs - apply(v)
    z = inverse_diagonal * r
    p = z.clone()
    rz = (r * z).sum(dim=(-2, -1), keepdim=True)
    target = tolerance * rhs.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
    if not bool(removed.any()):
        return x.clone()
    # Each (image, channel) system stops at its own convergence or its own step limit, never
    # at its neighbours' in the batch: an image's imputation is the same alone or in any
    # chunk (with one stopping rule for the batch, ROAD's scores moved with batch_size).
    own_limit = mask.flatten(1).sum(dim=1).clamp(min=1).view(-1, 1, 1, 1)
    if max_iterations:
        own_limit = torch.full_like(own_limit, max_iterations)
    for step in range(int(own_limit.max())):
        active = (r.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt() > target) & (step < own_limit)
        if not bool(active.any()):
            break
        ap = apply(p)
        pap = (p * ap).sum(dim=(-2, -1), keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp(min=1e-300), torch.zeros_like(pap))
        v = v + alpha * p  # alpha = 0 leaves a stopped system as it is
        r = r - alpha * ap
        z = inverse_diagonal * r
        rz_next = (r * z).sum(dim=(-2, -1), keepdim=True)
        beta = torch.where(rz > 0, rz_next / rz.clamp(min=1e-300), torch.zeros_like(rz))
        p = torch.where(active, z + beta * p, p)
        rz = torch.where(active, rz_next, rz)
    return torch.where(removed.bool(), v, data).to(x.dtype)


def _coarse_guess(data: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """A starting point for the solver: the imputation of a half-resolution image, upsampled.

    Conjugate gradients need about ``hole width x log(1 / tolerance)`` steps from zero, almost
    all spent on the smooth part of the solution; the coarse solution supplies that part, so
    large holes (the removed top pixels of a smooth map) cost a fraction of the steps.
    """
    h, w = data.shape[-2:]
    if min(h, w) < 16:
        return torch.zeros_like(data)
    kept = 1.0 - removed
    pad = (0, w % 2, 0, h % 2)
    weight = F.avg_pool2d(F.pad(kept, pad), 2)
    coarse = F.avg_pool2d(F.pad(data * kept, pad), 2) / weight.clamp(min=1e-12)
    coarse_removed = weight == 0
    solved = linear_imputation(coarse, coarse_removed.squeeze(1), tolerance=1e-6)
    up = solved.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return up[..., :h, :w]

"""The relevance of the nonlinear functions of a transformer block (the rules are in
``rules.py``: ``SoftmaxTaylor``, ``Uniform``, ``ConstantScale``).

Each function runs inside an autograd function whose backward maps the relevance at its
output to its inputs; ``propagator.py`` picks them by the composite.
"""

from __future__ import annotations

import torch

from attrib.methods.propagation.lrp.rules import safe_divide, stabilize

__all__ = [
    "LayerNormRelevance",
    "RMSNormRelevance",
    "SoftmaxRelevance",
    "UniformMatmul",
    "UniformProduct",
]


def _share(relevance: torch.Tensor, y: torch.Tensor, stabilizer: float) -> torch.Tensor:
    """``R / stabilize(y)``; an unstabilised denominator that is 0 passes no relevance."""
    if stabilizer == 0:
        return safe_divide(relevance, y)
    return relevance / stabilize(y, stabilizer)


class SoftmaxRelevance(torch.autograd.Function):
    """``s = softmax(x)`` along ``dim``; backward ``R_in = x * (R - s * sum_dim R)``
    (``SoftmaxTaylor``), with ``x = -inf`` entries (masked) counted as 0."""

    @staticmethod
    def forward(ctx, x, fn, dim):
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        relevance = relevance.to(y.dtype)
        inputs = x.to(y.dtype).nan_to_num(nan=0.0, neginf=0.0)
        share = relevance - y * relevance.sum(ctx.dim, keepdim=True)
        return (inputs * share).to(x.dtype), None, None


class UniformProduct(torch.autograd.Function):
    """``y = a * b`` of two input-dependent tensors; backward ``R_a = R_b = R / 2`` (summed
    where a factor was broadcast)."""

    @staticmethod
    def forward(ctx, a, b, fn):
        ctx.shapes = (a.shape, b.shape)
        return fn(a, b)

    @staticmethod
    def backward(ctx, relevance):
        half = relevance / 2
        a_shape, b_shape = ctx.shapes
        return half.sum_to_size(a_shape), half.sum_to_size(b_shape), None


class UniformMatmul(torch.autograd.Function):
    """``y = a @ b`` of two input-dependent tensors; backward the epsilon rule of the
    bilinear map, halved: ``s = R / stabilize(2 y)``, ``R_a = a * (s @ b^T)``, ``R_b = b *
    (a^T @ s)`` (``Uniform``)."""

    @staticmethod
    def forward(ctx, a, b, fn, stabilizer):
        y = fn(a, b)
        ctx.save_for_backward(a, b, y)
        ctx.fn, ctx.stabilizer = fn, stabilizer
        return y

    @staticmethod
    def backward(ctx, relevance):
        a, b, y = ctx.saved_tensors
        s = _share(relevance, 2 * y, ctx.stabilizer)
        if a.dim() >= 2 and b.dim() >= 2:
            grad_a = (s @ b.transpose(-2, -1)).sum_to_size(a.shape)
            grad_b = (a.transpose(-2, -1) @ s).sum_to_size(b.shape)
        else:  # a vector operand: let autograd say what the transpose is
            with torch.enable_grad():
                ta, tb = a.detach().requires_grad_(True), b.detach().requires_grad_(True)
                grad_a, grad_b = torch.autograd.grad(ctx.fn(ta, tb), (ta, tb), s)
        return a * grad_a, b * grad_b, None, None


class LayerNormRelevance(torch.autograd.Function):
    """Layer norm over the last ``dims`` dimensions with ``1 / sigma`` held constant
    (``ConstantScale``): ``s = R / stabilize(y)``, ``t = s * w / sigma``, ``R_in = x * (t -
    mean(t))``."""

    @staticmethod
    def forward(ctx, x, fn, weight, dims, eps, stabilizer):
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.weight, ctx.dims, ctx.eps, ctx.stabilizer = weight, dims, eps, stabilizer
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        dims = ctx.dims
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        t = _share(relevance, y, ctx.stabilizer) * torch.rsqrt(var + ctx.eps)
        if ctx.weight is not None:
            t = t * ctx.weight
        t = t - t.mean(dim=dims, keepdim=True)
        return x * t, None, None, None, None, None


class RMSNormRelevance(torch.autograd.Function):
    """RMS norm ``y = x / rms(x) * w`` with ``1 / rms`` held constant (``ConstantScale``):
    ``R_in = x * w / rms * R / stabilize(y)``."""

    @staticmethod
    def forward(ctx, x, fn, weight, dims, eps, stabilizer):
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.weight, ctx.dims, ctx.eps, ctx.stabilizer = weight, dims, eps, stabilizer
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        mean_square = x.pow(2).mean(dim=ctx.dims, keepdim=True)
        t = _share(relevance, y, ctx.stabilizer) * torch.rsqrt(mean_square + ctx.eps)
        if ctx.weight is not None:
            t = t * ctx.weight
        return x * t, None, None, None, None, None

"""The relevance of the nonlinear functions of a transformer block (the rules are in
``rules.py``: ``SoftmaxTaylor``, ``Uniform``, ``ConstantScale``).

Each function runs inside an autograd function whose backward maps the relevance at its
output to its inputs; ``propagator.py`` picks them by the composite.
"""

from __future__ import annotations

import torch

from attrib.methods.propagation.lrp.rules import safe_divide, stabilize

__all__ = [
    "Halved",
    "LayerNormGradient",
    "LayerNormRelevance",
    "RMSNormGradient",
    "RMSNormRelevance",
    "RatioRule",
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


class _ScaleHeldConstant(torch.autograd.Function):
    """A normalisation ``fn`` over the last ``dims`` dimensions whose backward is a
    ``ConstantScale`` rule: the forward is the model's own call, keeping ``x`` and ``y``."""

    @staticmethod
    def forward(ctx, x, fn, weight, dims, eps, stabilizer):
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.weight, ctx.dims, ctx.eps, ctx.stabilizer = weight, dims, eps, stabilizer
        return y


class LayerNormRelevance(_ScaleHeldConstant):
    """Layer norm over the last ``dims`` dimensions with ``1 / sigma`` held constant
    (``ConstantScale``): ``s = R / stabilize(y)``, ``t = s * w / sigma``, ``R_in = x * (t -
    mean(t))``."""

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


class RMSNormRelevance(_ScaleHeldConstant):
    """RMS norm ``y = x / rms(x) * w`` with ``1 / rms`` held constant (``ConstantScale``):
    ``R_in = x * w / rms * R / stabilize(y)``."""

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        mean_square = x.pow(2).mean(dim=ctx.dims, keepdim=True)
        t = _share(relevance, y, ctx.stabilizer) * torch.rsqrt(mean_square + ctx.eps)
        if ctx.weight is not None:
            t = t * ctx.weight
        return x * t, None, None, None, None, None


# -- the same rules in gradient form ---------------------------------------------------------
# With no stabiliser, every rule of the transformer composites hands on R = y * g for some
# g: the relevance at a call's output is its value times a (modified) gradient, and the
# relevance at the input is x * g (``LRP`` multiplies at the end). Then the rules are:
# linear layers, sums, biases, means, softmax: the ordinary gradient (LRP-0 of a linear map
# is x * J^T (R / y)); the uniform rule: the gradient halved; the identity rule: the
# gradient times y / x; layer norm: the gradient with 1/sigma held constant. This is LXT's
# "efficient" formulation (Achtibat et al. 2024), and costs a gradient plus a few passes.


class Halved(torch.autograd.Function):
    """The identity, whose gradient is halved: a factor of a uniform product."""

    @staticmethod
    def forward(ctx, t):
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g * 0.5


class RatioRule:
    """The identity rule in gradient form (an ``ElementwiseRule`` rule): ``R_in = R_out``
    with ``R = y g`` is ``g_in = g_out * y / x``; 0 where ``x = 0`` (relevance ``x g`` there
    is 0 whatever ``g`` is). Summed where the function broadcast its input."""

    needs_output = True

    @staticmethod
    def forward(z: torch.Tensor, y: torch.Tensor) -> object:
        if y.shape != z.shape:
            return z.detach().clone(), y.detach()
        ratio = y / z
        return ratio.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)

    @staticmethod
    def backward(g: torch.Tensor, kept: object) -> torch.Tensor:
        if isinstance(kept, tuple):
            z, y = kept
            return safe_divide((g * y).sum_to_size(z.shape), z)
        assert isinstance(kept, torch.Tensor)
        return g * kept


class LayerNormGradient(torch.autograd.Function):
    """Layer norm whose backward holds ``1 / sigma`` constant: ``t = g * w / sigma``,
    ``g_in = t - mean(t)`` (``ConstantScale`` in gradient form). ``1 / sigma`` comes from
    the forward (``torch.native_layer_norm``), which computes it anyway."""

    @staticmethod
    def forward(ctx, x, shape, weight, bias, eps):
        y, _, rstd = torch.native_layer_norm(x, shape, weight, bias, eps)
        ctx.save_for_backward(rstd)
        ctx.weight, ctx.dims = weight, tuple(range(-len(shape), 0))
        return y

    @staticmethod
    def backward(ctx, g):
        (rstd,) = ctx.saved_tensors
        t = g * rstd
        if ctx.weight is not None:
            t.mul_(ctx.weight)
        return t.sub_(t.mean(dim=ctx.dims, keepdim=True)), None, None, None, None


class RMSNormGradient(torch.autograd.Function):
    """RMS norm whose backward holds ``1 / rms`` constant: ``g_in = g * w / rms``."""

    @staticmethod
    def forward(ctx, x, fn, weight, dims, eps):
        ctx.save_for_backward(x)
        ctx.weight, ctx.dims, ctx.eps = weight, dims, eps
        return fn(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        t = g * torch.rsqrt(x.pow(2).mean(dim=ctx.dims, keepdim=True) + ctx.eps)
        if ctx.weight is not None:
            t = t * ctx.weight
        return t, None, None, None, None

"""DeepLIFT with the Rescale rule (Shrikumar, Greenside and Kundaje 2017, "Learning Important
Features Through Propagating Activation Differences"), and DeepLIFT-SHAP over several
baselines (Lundberg and Lee 2017).

DeepLIFT explains the difference from a reference, ``Delta f = f(x) - f(x')``, by multipliers
``m`` that follow the chain rule but replace each nonlinearity's derivative by a ratio of
differences. For an element-wise ``y = g(z)`` the Rescale rule is

    m = (g(z) - g(z')) / (z - z')        (g'(z) where |z - z'| < eps),

linear functions keep their ordinary backward, and the attribution is
``phi_i = (x_i - x'_i) * m_i``. Summation-to-delta, ``sum_i phi_i = f(x) - f(x')``, then holds
by construction; the gap is returned in ``Attribution.delta``.

Other nonlinear functions need their own rule to keep that property:

- max pooling: the output difference is split between the winners at ``x`` and at ``x'``,
  ``y - y' = (max(y, y') - y') + (y - max(y, y'))``; each part goes to that input's arg-max
  position and is divided by the position's ``z - z'`` (Captum's rule, with the scatter
  summed rather than overwritten where pooling windows overlap);
- products of two input-dependent tensors ``y = a * b`` (and matrix products): the exact
  split ``y - y' = mean(a) * (b - b') + mean(b) * (a - a')`` with ``mean(a) = (a + a') / 2``
  (the DeepLIFT paper's rule for multiplicative gates, symmetric in the two factors).

- the functions of a transformer block are written out as elementary operations, each with
  the rule above, so that summation-to-delta stays exact (``_softmax``, ``_layer_norm``):
  softmax is ``e * (1 / sum(e))`` with ``e = exp(x - max(x))`` (the max-pooling rule for
  the maximum, Rescale for ``exp`` and the reciprocal, the product rule for the product);
  layer norm is ``c * rsqrt(mean(c^2) + eps) * w + b`` with ``c = x - mean(x)`` (Rescale for
  the square and ``rsqrt``, the product rule);
  attention is its math, ``softmax(q k^T * scale + mask) v`` (``attention.py``), whose
  ``q k^T`` and ``A v`` get the product rule.

Every other nonlinear function (group norm, division by an input-dependent tensor, ...)
raises a ``LayerError`` naming it and the module that called it.

Mechanism: the input and its baseline run in ONE forward, concatenated along the batch
(``[x; x']``), so every nonlinearity sees its input and its reference input in the same call;
no matching of calls between two forwards is needed, and a module used twice (torchvision's
ResNet ReLU) is two calls like any other. Convolutions and linear layers run the two halves
separately and only the input half enters the autograd graph, so the backward costs what an
ordinary gradient costs and the baseline adds one forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeGuard

import torch
import torch.nn.functional as F

from attrib.core.batching import default_batch_size, run_chunks
from attrib.core.errors import ModelOutputError
from attrib.core.grad import input_gradients
from attrib.core.inputs import Inputs, batch_size_of, leaves, map_inputs
from attrib.core.result import Attribution
from attrib.core.rows import rows_from
from attrib.core.settings import Number, Setting
from attrib.core.target import ResolvedTarget, Target, target_for_rows
from attrib.methods.at_layer import LayerSettings
from attrib.methods.base import Method
from attrib.methods.baselines import BaselineSettings
from attrib.methods.catalogue import RULES_IN_PYTHON, register
from attrib.methods.propagation import attention
from attrib.methods.propagation.mode import (
    ElementwiseRule,
    Propagated,
    Propagator,
    check_visible,
    elementwise_parts,
    map_output,
    substituted,
)
from attrib.methods.propagation.ops import Op, argument, batch_norm_arguments

__all__ = ["DeepLIFT"]


def _depends(value: Any) -> TypeGuard[torch.Tensor]:
    return isinstance(value, torch.Tensor) and value.requires_grad


def _halves(t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return t[:n], t[n:]


def _with_zero_reference(m: torch.Tensor) -> torch.Tensor:
    # the reference half never receives a multiplier: only f(x) is seeded
    return torch.cat([m, torch.zeros_like(m)])


def _times_halves(g: torch.Tensor, m: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``[g_x * m; 0]`` for ``g = [g_x; g_r]`` (``n`` rows in the input half, by default
    ``len(m)``). The reference half of every backward signal is zero (only the input half's
    score is seeded, convolutions give the reference half no graph, every rule returns zeros
    there), so only the input half is multiplied; the other is zero-filled."""
    n = m.shape[0] if n is None else n
    out = torch.empty_like(g)
    torch.mul(g[:n], m, out=out[:n])
    out[n:].zero_()
    return out


class _FrozenAffine(torch.autograd.Function):
    """A batch norm with running statistics on ``[x; x']``: ``y = scale * z + shift`` per
    channel, linear, so DeepLIFT keeps its gradient. Its backward scales the input half of
    the signal only (the reference half is zero, see ``_times_halves``) instead of running
    the batch norm's backward over both halves."""

    @staticmethod
    def forward(ctx, z, fn, scale, n):
        ctx.scale, ctx.n = scale, n
        return fn(z)

    @staticmethod
    def backward(ctx, g):
        return _times_halves(g, ctx.scale, ctx.n), None, None, None


class _Rescale:
    """The Rescale rule at one call of an element-wise function ``g``."""

    def __init__(self, n: int, eps: float, g: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.n = n
        self.eps = eps
        self.g = g

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zx, zr = _halves(z, self.n)
        return self._multiplier(zx - zr, y, zx)

    def forward_inplace(
        self, z: torch.Tensor, inplace: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``forward`` for an in-place call (``relu_``): ``z - z'`` is kept, then ``z`` is
        overwritten by ``g(z)``; where the derivative is needed, ``z`` is recovered first."""
        zx, zr = _halves(z, self.n)
        dz = zx - zr
        small = self._small(dz)
        kept_x = zx.clone() if small is not None else None
        inplace(z)
        return self._multiplier(dz, z, kept_x, small)

    def _small(self, dz: torch.Tensor) -> torch.Tensor | None:
        """Where ``|z - z'| < eps`` (``None`` where nowhere: one reduction, no mask)."""
        if dz.numel() == 0:
            return None
        nearest = torch.linalg.vector_norm(dz, ord=float("-inf"))  # min |dz| in one pass
        if (self.eps > 0 and bool(nearest >= self.eps)) or (self.eps == 0 and bool(nearest > 0)):
            return None
        return dz.abs() < self.eps if self.eps > 0 else dz == 0

    def _multiplier(
        self,
        dz: torch.Tensor,
        y: torch.Tensor,
        zx: torch.Tensor | None,
        small: torch.Tensor | Literal[False] | None = False,
    ) -> torch.Tensor:
        yx, yr = _halves(y, self.n)
        m = (yx - yr).div_(dz)  # inf or nan where dz = 0: replaced just below
        if small is False:
            small = self._small(dz)
        if small is not None:
            assert zx is not None  # where dz is small the derivative at x is used
            m = torch.where(small, self._derivative(zx), m)
        return m

    def _derivative(self, zx: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            t = zx.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(self.g(t).sum(), t)
        return d

    @staticmethod
    def backward(g: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return _times_halves(g, m)


class _MaxPoolDifference(torch.autograd.Function):
    """Max pooling under DeepLIFT: each input's winner carries its part of ``y - y'``.

    ``pool(t) -> (values, indices)`` with PyTorch's indices: flat positions within each
    (sample, channel) plane. Parts are scattered with a sum, so a position that wins two
    overlapping windows carries both parts.
    """

    @staticmethod
    def forward(ctx, z, pool, n, eps):
        y, indices = pool(z)
        yx, yr = _halves(y, n)
        top = torch.maximum(yx, yr)
        zx, zr = _halves(z, n)
        ctx.save_for_backward(indices, top - yr, yx - top, zx - zr)
        ctx.n, ctx.eps, ctx.shape = n, eps, z.shape
        return y

    @staticmethod
    def backward(ctx, g):
        indices, x_part, reference_part, dz = ctx.saved_tensors
        n, eps = ctx.n, ctx.eps
        gx = g[:n]
        index_x, index_r = (i.flatten(2) for i in _halves(indices, n))
        carried = dz.new_zeros(dz.shape).flatten(2)
        carried.scatter_add_(2, index_x, (gx * x_part).flatten(2))
        carried.scatter_add_(2, index_r, (gx * reference_part).flatten(2))
        m = carried.view(dz.shape) / dz  # inf or nan where dz = 0: replaced just below
        small = dz.abs() < eps if eps > 0 else dz == 0
        if bool(small.any()):
            plain = dz.new_zeros(dz.shape).flatten(2).scatter_add_(2, index_x, gx.flatten(2))
            m = torch.where(small, plain.view(dz.shape), m)
        out = g.new_empty(ctx.shape)
        out[:n] = m
        out[n:] = 0
        return out, None, None, None


class _Bilinear(torch.autograd.Function):
    """``y = op(a, b)`` bilinear in two input-dependent tensors (``*``, ``@``): the exact
    split ``op(a, b) - op(a', b') = op(a - a', mean(b)) + op(mean(a), b - b')``."""

    @staticmethod
    def forward(ctx, a, b, op, n, inplace):
        y = op(a, b)
        saved_a = a.clone() if inplace else a
        ctx.save_for_backward(saved_a, b)
        ctx.op, ctx.n = op, n
        if inplace:
            a.copy_(y)
            ctx.mark_dirty(a)
            return a
        return y

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        n, op = ctx.n, ctx.op
        ax, ar = _halves(a, n)
        bx, br = _halves(b, n)
        gx = g[:n]
        with torch.enable_grad():
            ta = ax.detach().requires_grad_(True)
            tb = bx.detach().requires_grad_(True)
            (grad_a,) = torch.autograd.grad(op(ta, (bx + br) / 2), ta, gx)
            (grad_b,) = torch.autograd.grad(op((ax + ar) / 2, tb), tb, gx)
        return _with_zero_reference(grad_a), _with_zero_reference(grad_b), None, None, None


_BATCH_TODO = (
    "DeepLIFT pairs each input with its baseline along the first (batch) dimension; a model "
    "that moves the batch dimension (sequence-first attention) cannot be paired."
)


_ADAPTIVE_MAX_POOLS = {
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
    F.adaptive_max_pool3d,
    torch.adaptive_max_pool1d,
}
_WITH_INDICES = {
    F.max_pool1d: F.max_pool1d,
    F.max_pool2d: F.max_pool2d,
    F.max_pool3d: F.max_pool3d,
    torch.max_pool1d: F.max_pool1d,
    torch.max_pool2d: F.max_pool2d,
    torch.max_pool3d: F.max_pool3d,
    F.adaptive_max_pool1d: F.adaptive_max_pool1d,
    F.adaptive_max_pool2d: F.adaptive_max_pool2d,
    F.adaptive_max_pool3d: F.adaptive_max_pool3d,
    torch.adaptive_max_pool1d: F.adaptive_max_pool1d,
}


class _DeepLiftRules(Propagator):
    """The DeepLIFT rule of each kind of call, for a forward of ``2 n`` rows ``[x; x']``."""

    strict = True
    method = "DeepLIFT"

    def __init__(self, model: Any, n: int, eps: float) -> None:
        super().__init__(model)
        self.n = n
        self.eps = eps
        native = self._native
        self.handlers = {
            "routing": native,
            "mixing": native,
            "add": native,
            "neg": native,
            "dropout": self._dropout,
            "batch_norm": self._batch_norm,
            "conv": self._split,
            "linear": self._split,
            "relu": self._rescale,
            "activation": self._rescale,
            "gate": self._rescale,
            "math": self._rescale,
            "max_pool": self._max_pool,
            "mul": self._product,
            "matmul": self._product,
            "div": self._divide,
            "fused": self._fused,
            "softmax": self._softmax,
            "layer_norm": self._layer_norm,
            "rms_norm": self._rms_norm,
            "addmm": self._addmm,
            **attention.attention_handlers(self),
        }

    # -- linear functions: the ordinary backward -----------------------------------------

    @staticmethod
    def _native(func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return func(*args, **kwargs)

    def _dropout(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        training = argument(func, args, kwargs, 2, "training", kwargs.get("train", True))
        p = argument(func, args, kwargs, 1, "p", 0.5)
        if training and p > 0 and _depends(args[0] if args else kwargs.get("input")):
            raise self.unsupported(
                func,
                "Dropout in training mode is random, so x and its baseline would see "
                "different masks.",
                "Call it with training=False (modules do so in eval mode).",
            )
        return func(*args, **kwargs)

    def _batch_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        found = batch_norm_arguments(func, args, kwargs)
        if found["training"]:
            raise self.unsupported(
                func,
                "Batch norm with batch statistics mixes the rows of x and of the baseline.",
                "Use running statistics (track_running_stats=True, eval mode).",
            )
        z, var, weight = found.get("input"), found.get("running_var"), found["weight"]
        if not _depends(z) or z.dim() < 2 or z.shape[0] != 2 * self.n or var is None:
            return func(*args, **kwargs)
        if any(_depends(a) for a in args[1:]) or any(_depends(v) for v in kwargs.values()):
            return func(*args, **kwargs)  # input-dependent parameters: autograd's backward
        scale = torch.rsqrt(var.detach() + found["eps"])
        if weight is not None:
            scale = scale * weight.detach()
        scale = scale.to(z.dtype).view(-1, *([1] * (z.dim() - 2)))
        fn = substituted(func, args, kwargs, [0 if args else "input"])
        return _FrozenAffine.apply(z, fn, scale, self.n)

    def _split(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """Run the input half with a graph and the baseline half without one."""
        z = args[0] if args else kwargs.get("input")
        if not _depends(z):
            return func(*args, **kwargs)
        if any(_depends(a) for a in args[1:]) or any(_depends(v) for v in kwargs.values()):
            raise self.unsupported(
                func,
                "Its weights depend on the input (a bilinear layer).",
                "Only layers with fixed weights are linear.",
            )
        if z.shape[0] != 2 * self.n:
            return func(*args, **kwargs)
        rest = args[1:]
        if not args:
            kwargs = {k: v for k, v in kwargs.items() if k != "input"}
        x_half = func(z[: self.n], *rest, **kwargs)
        with torch.no_grad():
            reference_half = func(z[self.n :], *rest, **kwargs)
        return torch.cat([x_half, reference_half])

    # -- nonlinear functions: the Rescale rule and its relatives -------------------------

    def _check_rows(self, func: Callable[..., Any], t: torch.Tensor) -> None:
        if t.dim() == 0 or t.shape[0] != 2 * self.n:
            raise self.unsupported(
                func,
                f"Its input has {t.shape[0] if t.dim() else 0} rows where the paired forward "
                f"has {2 * self.n}.",
                _BATCH_TODO,
            )

    def _rescale(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        position, z = self._single_input(func, args, kwargs)
        if z is None:
            return func(*args, **kwargs)
        self._check_rows(func, z)
        if position == 0:
            parts = elementwise_parts(func, op, args, kwargs)
            assert parts is not None  # z, the first argument, depends on the input
            _, g, inplace = parts
        else:  # e.g. torch.pow(2, x): the input is not the first argument

            def g(t: torch.Tensor) -> torch.Tensor:
                return func(*args[:position], t, *args[position + 1 :], **kwargs)

            inplace = False
        return ElementwiseRule.apply(z, _Rescale(self.n, self.eps, g), g, inplace)

    def _single_input(
        self, func: Callable[..., Any], args: tuple, kwargs: dict
    ) -> tuple[int, torch.Tensor | None]:
        found = [(i, a) for i, a in enumerate(args) if _depends(a)]
        if any(_depends(v) for v in kwargs.values()):
            raise self.unsupported(
                func, "An input-dependent keyword argument has no rule.", "Pass it by position."
            )
        if not found:
            return -1, None
        if len(found) > 1:
            raise self.unsupported(
                func,
                "It is a nonlinear function of two input-dependent tensors.",
                "The Rescale rule covers functions of one tensor.",
            )
        return found[0]

    def _max_pool(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        z = args[0] if args else kwargs.get("input")
        if not _depends(z):
            return func(*args, **kwargs)
        adaptive = func in _ADAPTIVE_MAX_POOLS
        if argument(func, args, kwargs, 2 if adaptive else 6, "return_indices", False):
            raise self.unsupported(
                func,
                "Max pooling that returns its indices (for unpooling) has no DeepLIFT rule.",
                "Pool without return_indices.",
            )
        self._check_rows(func, z)
        with_indices: Any = _WITH_INDICES.get(func, func)  # torch.max_pool2d has no indices
        rest = args[1 : (2 if adaptive else 6)]
        options = {k: v for k, v in kwargs.items() if k not in ("input", "return_indices")}

        def pool(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return with_indices(t, *rest, **options, return_indices=True)

        return _MaxPoolDifference.apply(z, pool, self.n, self.eps)

    def _product(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
        if not (_depends(a) and _depends(b)):
            return func(*args, **kwargs)  # linear in the one input-dependent factor
        self._check_rows(func, a)
        self._check_rows(func, b)
        pure = op.pure(func)
        extra = args[2:]
        rest = {k: v for k, v in kwargs.items() if k not in ("input", "other", "mat2")}

        def product(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return pure(u, v, *extra, **rest)

        return _Bilinear.apply(a, b, product, self.n, op.inplace)

    def _divide(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        numerator = args[0] if args else kwargs.get("input")
        denominator = args[1] if len(args) > 1 else kwargs.get("other")
        if func in (torch.Tensor.__rtruediv__, torch.Tensor.__rdiv__):
            numerator, denominator = denominator, numerator
        if not _depends(denominator):
            return func(*args, **kwargs)  # division by a constant is linear
        if _depends(numerator):
            raise self.unsupported(
                func,
                "A ratio of two input-dependent tensors has no DeepLIFT rule.",
                "Only division by constants, or of a constant by one tensor, is supported.",
            )
        self._check_rows(func, denominator)
        if isinstance(numerator, torch.Tensor) and numerator.shape != denominator.shape:
            raise self.unsupported(
                func, "The numerator broadcasts the denominator.", "Expand it explicitly."
            )
        rounding = kwargs.get("rounding_mode")

        def reciprocal(t: torch.Tensor) -> torch.Tensor:
            return torch.div(numerator, t, rounding_mode=rounding)  # type: ignore[arg-type]

        rule = _Rescale(self.n, self.eps, reciprocal)
        return ElementwiseRule.apply(denominator, rule, reciprocal, False)

    # -- transformer blocks: their elementary operations, each with its rule ---------------

    def _softmax(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """``softmax(x) = e * (1 / sum(e))`` with ``e = exp(x - max(x))``: the row maximum
        is a max pooling (its DeepLIFT rule hands ``Delta max`` to the winners at ``x`` and
        at ``x'``), ``x - max`` is linear, ``exp`` and ``1 / sum`` get the Rescale rule and
        the product the product rule. Each step splits its own difference exactly, so
        summation-to-delta holds through the softmax; and since ``e <= 1`` and ``sum(e) >=
        1`` on every row, no ratio divides by an underflowed sum (a maximum shared by ``x``
        and ``x'`` would underflow the row whose maximum is far below the other's)."""
        position, x = self._single_input(func, args, kwargs)
        if x is None:
            return func(*args, **kwargs)
        if position != 0:
            raise self.unsupported(func, "Its input is not its first argument.", "")
        self._check_rows(func, x)
        dim = argument(func, args, kwargs, 1, "dim", None)
        if dim is None:
            raise self.unsupported(func, "Softmax without dim= is ambiguous.", "Pass dim=.")
        dtype = kwargs.get("dtype", args[2] if len(args) > 2 else None)
        if dtype is not None:
            x = x.to(dtype)
        call = self.call
        rows = x.movedim(dim, -1)
        width = rows.shape[-1]
        top = call(F.max_pool1d, rows.reshape(rows.shape[0], -1, width), width)
        top = top.reshape(*rows.shape[:-1], 1).movedim(-1, dim)
        e = call(torch.exp, call(torch.sub, x, top))
        total = call(torch.sum, e, dim, keepdim=True)
        return call(torch.mul, e, call(torch.reciprocal, total))

    def _normalized(self, func: Callable[..., Any], args: tuple, kwargs: dict, centre: bool) -> Any:
        """Layer norm (``centre``) or RMS norm as elementary operations: ``c = x - mean(x)``
        (layer norm) or ``c = x``, then ``c * rsqrt(mean(c^2) + eps) * w (+ b)``."""
        x = argument(func, args, kwargs, 0, "input", None)
        if not _depends(x):
            return func(*args, **kwargs)
        if any(_depends(a) for a in args[1:]) or any(
            _depends(v) for k, v in kwargs.items() if k != "input"
        ):
            raise self.unsupported(func, "Its weight or bias depends on the input.", "")
        self._check_rows(func, x)
        shape = argument(func, args, kwargs, 1, "normalized_shape", None)
        weight = argument(func, args, kwargs, 2, "weight", None)
        if centre:
            bias = argument(func, args, kwargs, 3, "bias", None)
            eps = argument(func, args, kwargs, 4, "eps", 1e-5)
        else:
            bias = None
            eps = argument(func, args, kwargs, 3, "eps", None)
            eps = torch.finfo(x.dtype).eps if eps is None else eps
        dims = tuple(range(-(1 if isinstance(shape, int) else len(shape)), 0))
        call = self.call
        c = call(torch.sub, x, call(torch.mean, x, dims, keepdim=True)) if centre else x
        mean_square = call(torch.mean, call(torch.pow, c, 2), dims, keepdim=True)
        y = call(torch.mul, c, call(torch.rsqrt, call(torch.add, mean_square, eps)))
        if weight is not None:
            y = call(torch.mul, y, weight)
        if bias is not None:
            y = call(torch.add, y, bias)
        return y

    def _layer_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return self._normalized(func, args, kwargs, centre=True)

    def _rms_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return self._normalized(func, args, kwargs, centre=False)

    def _addmm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """``bias + x @ W`` (GPT-2's ``Conv1D``): the linear layer ``F.linear(x, W^T, b)``."""
        bias = argument(func, args, kwargs, 0, "input", None)
        x = argument(func, args, kwargs, 1, "mat1", None)
        weight = argument(func, args, kwargs, 2, "mat2", None)
        if not _depends(x) and not _depends(bias) and not _depends(weight):
            return func(*args, **kwargs)
        scaled = any(kwargs.get(k, 1) != 1 for k in ("beta", "alpha"))
        if _depends(bias) or _depends(weight) or op.inplace or scaled:
            raise self.unsupported(
                func,
                "Only bias + x @ W with a constant bias and weight is a fully connected layer.",
                "",
            )
        return self._split(F.linear, op, (x, weight.t(), bias), {})

    def _fused(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        if not any(_depends(a) for a in args):
            return func(*args, **kwargs)
        raise self.unsupported(func, "A fused attention kernel has no DeepLIFT rule.", "")


class _Pairing:
    """One chunk's paired forward: concatenates ``[x; x']``, keeps the baseline half's output
    and hands the input half's output to core (which resolves the target and seeds it)."""

    def __init__(self, model: Any, references: Inputs, eps: float) -> None:
        self.references = references
        self.n = batch_size_of(references)
        self.reference_output: Any = None
        self.propagated = Propagated(
            model,
            lambda: _DeepLiftRules(model, self.n, eps),
            prepare=self._join,
            finish=self._split,
        )

    def wrapped(self, *args: Any, **kwargs: Any) -> Any:
        """The paired forward, each reference row coming from its input row's sample."""
        rows = torch.arange(self.n)
        with rows_from(torch.cat([rows, rows])):
            return self.propagated(*args, **kwargs)

    def _join(self, inputs: Inputs) -> Inputs:
        return map_inputs(lambda x, r: torch.cat([x, r.detach()]), inputs, self.references)

    def _split(self, output: Any) -> Any:
        def rows(t: torch.Tensor) -> torch.Tensor:
            if t.dim() == 0 or t.shape[0] != 2 * self.n:
                raise ModelOutputError(
                    "model output",
                    f"one row per input row ({2 * self.n} in the paired forward)",
                    t,
                    "DeepLIFT needs a model that keeps the batch dimension first.",
                )
            return t

        map_output(rows, output)
        self.reference_output = map_output(lambda t: t[self.n :].detach(), output)
        return map_output(lambda t: t[: self.n], output)


@register(
    family="propagation",
    python_module=RULES_IN_PYTHON,
    paper="Shrikumar et al. 2017",
    short="differences from a reference, Rescale rule",
    summary="Differences from a reference propagated with the Rescale rule: each nonlinearity's "
    "multiplier is Δy/Δx; attributions add up to S_c(x) − S_c(x').",
    formula="m = Δy/Δx at nonlinearities;  A = (x − x') ⊙ chain of multipliers",
    signed=True,
    completeness=True,
)
class DeepLIFT(LayerSettings, BaselineSettings, Method):
    """DeepLIFT (Shrikumar et al. 2017) with the Rescale rule against one baseline, or
    DeepLIFT-SHAP against several.

    ``phi = (x - x') * m`` with the multipliers ``m`` of the module docstring; with several
    baselines the attributions are averaged (DeepSHAP, Lundberg and Lee 2017), and ``delta``
    is ``sum(phi) - (f(x) - mean_k f(x'_k))``, zero up to rounding on every supported model.

    Args:
        baseline: any baseline of ``attrib.methods.baselines`` (a number, ``"black"``,
            ``"blur"``, a tensor of the input's or of one sample's shape, ...), or a list of
            them for DeepLIFT-SHAP (e.g. ``list(background_images)``).
        eps: below this ``|z - z'|`` a nonlinearity uses its derivative (Captum's default).
        value_range, blur_sigma, seed: settings of the named baselines.
        output, batch_size: see ``Method``. A forward holds ``batch_size`` rows: half inputs,
            half their baselines.
    """

    eps = Setting(1e-10, Number(0, purpose="e.g. 1e-10"))

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        check_visible(self.model, self.name)
        baselines = self.make_baselines(inputs)
        n, k = batch_size_of(inputs), len(baselines)
        rows = self.batch_size or default_batch_size(inputs, 2 * n * k)
        pairs = max(1, rows // 2)  # each pair is two rows of the forward
        outputs: list[Any] = []
        indices = torch.zeros(n * k, dtype=torch.long)
        resolved: list[ResolvedTarget] = []

        def evaluate(chunk: Any) -> dict[str, torch.Tensor]:
            x_rows = map_inputs(lambda t: t[chunk.sample.to(t.device)], inputs)
            references = _baseline_rows(baselines, chunk)
            pairing = _Pairing(self.model, references, self.eps)
            got = input_gradients(
                pairing.wrapped, x_rows, target_for_rows(target, chunk.sample), self.output
            )
            reference_scores = got.target.scores(pairing.reference_output)
            firsts = (chunk.item == 0).nonzero().flatten()
            outputs.append(map_output(lambda t: t[firsts.to(t.device)], got.output))
            resolved.append(got.target)
            if got.target.indices is not None:
                indices[chunk.start : chunk.stop] = got.target.indices.cpu()
            values = map_inputs(lambda g, x, r: g * (x - r), got.gradients, x_rows, references)
            total = sum(v.flatten(1).sum(1).to(torch.float64) for v in leaves(values))
            gap = total - (got.scores.to(torch.float64) - reference_scores.to(torch.float64))
            return {**_prefixed(values), _DELTA: gap}

        reduced = run_chunks(evaluate, n, k, pairs, "mean", device=leaves(inputs)[0].device)
        delta = reduced.pop(_DELTA)
        values = _unprefixed(reduced, inputs)
        public = resolved[0].public
        if resolved[0].indices is not None:
            public = indices.view(n, k)[:, 0].to(resolved[0].indices.device)
        return self.result(
            values,
            public,
            _concat_outputs(outputs),
            baseline=baselines[0] if k == 1 else baselines,
            delta=delta,
        )


_DELTA = "\x00delta"  # cannot clash with an input name


def _prefixed(values: Inputs) -> dict[str, torch.Tensor]:
    return dict(values) if isinstance(values, dict) else {"": values}


def _unprefixed(reduced: dict[str, torch.Tensor], inputs: Inputs) -> Inputs:
    return reduced if isinstance(inputs, dict) else reduced[""]


def _baseline_rows(baselines: list[Inputs], chunk: Any) -> Inputs:
    """The baseline of every row of ``chunk``: baseline ``item`` of sample ``sample``."""

    def rows(*per_baseline: torch.Tensor) -> torch.Tensor:
        first = per_baseline[0]
        sample = chunk.sample.to(first.device)
        item = chunk.item.to(first.device)
        out = first.new_empty((len(chunk), *first.shape[1:]))
        for k in torch.unique(item).tolist():
            mask = item == k
            out[mask] = per_baseline[k][sample[mask]]
        return out

    return map_inputs(rows, *baselines)


def _concat_outputs(parts: list[Any]) -> Any:
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, dict):
        return {key: _concat_outputs([p[key] for p in parts]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_concat_outputs([p[i] for p in parts]) for i in range(len(first)))
    return parts

"""Which torch functions a propagation method sees, and what each one is.

The propagation methods run the model inside a ``TorchFunctionMode`` (see ``mode.py``), so
every call of a torch function reaches us first, whether it comes from a module
(``nn.ReLU``), a functional call (``F.relu``), a tensor method (``x.relu_()``) or an operator
(``x + y``). This module sorts those functions into the kinds the rules are written for:

- ``relu``: ``max(0, z)``, in every spelling;
- ``activation``: other element-wise activation functions (sigmoid, GELU, hardswish, ...);
- ``gate``: the subset of activations whose output lies in (0, 1) and is used to gate a signal
  (sigmoid, hardsigmoid): LRP gives a product with such a tensor to the other factor;
- ``math``: other element-wise functions of one tensor (exp, log, abs, clamp, ...);
- ``routing``: functions whose output entries are copies of input entries (views, indexing,
  concatenation, padding, dropout in eval mode, max pooling): a gradient moves values, so it
  moves relevance unchanged;
- ``mixing``: linear functions that sum or average entries (sums, means, average pooling,
  interpolation);
- ``add``, ``mul``, ``div``, ``matmul``, ``neg``: arithmetic whose meaning depends on how many
  operands depend on the input;
- ``conv``, ``linear``, ``batch_norm``: the parametric layers;
- ``max_pool``: max pooling (a routing function, with its own DeepLIFT rule);
- ``dropout``: dropout (the identity in eval mode);
- ``softmax``, ``layer_norm``, ``rms_norm``: the nonlinear functions of a transformer block,
  each with its own rule in the transformer composites (``lrp/composites.py``) and DeepLIFT;
- ``addmm``: ``bias + x @ W`` (GPT-2's ``Conv1D``), a fully connected layer;
- ``attention`` (``F.scaled_dot_product_attention``) and ``multi_head_attention``
  (``F.multi_head_attention_forward``): one call each that hides its parts, re-expressed as
  their math inside the mode (``attention.py``) so that the parts get their rules.

Anything else that returns a tensor depending on the input is *unsupported* by DeepLIFT and
LRP, and they say so, naming the function and the module that called it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["OPS", "Op", "argument", "op_of"]

_T = torch.Tensor
_NAMESPACES = (torch, _T, torch._C.TensorBase, F, torch._C._nn, torch.special)


@dataclass(frozen=True)
class Op:
    """What one torch function is: its kind, whether it writes into its first argument, and
    the function that computes the same thing out of place (``None`` for the function itself).
    """

    kind: str
    inplace: bool = False
    out_of_place: Callable[..., Any] | None = None

    def pure(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return self.out_of_place if self.out_of_place is not None else func


def _functions(names: list[str]) -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for name in names:
        for space in _NAMESPACES:
            func = getattr(space, name, None)
            if func is not None and callable(func):
                found.append((name, func))
    return found


def _register(table: dict[Any, Op], kind: str, names: list[str]) -> None:
    """Register ``names`` (and their ``name_`` in-place twins) under ``kind``.

    In-place twins are the tensor methods and torch functions whose name ends in ``_``; the
    ``F.*`` functions that take ``inplace=`` are detected per call (``argument``).
    """
    for name, func in _functions(names):
        table.setdefault(func, Op(kind))
        twin = name + "_"
        for space in _NAMESPACES:
            inplace = getattr(space, twin, None)
            if inplace is not None and callable(inplace) and inplace not in table:
                table[inplace] = Op(kind, inplace=True, out_of_place=func)


def _build() -> dict[Any, Op]:
    table: dict[Any, Op] = {}
    func: Any  # torch functions and tensor methods of many signatures
    _register(table, "relu", ["relu"])
    _register(table, "gate", ["sigmoid", "hardsigmoid", "expit"])
    _register(
        table,
        "activation",
        [
            "relu6", "hardtanh", "elu", "selu", "celu", "leaky_relu", "gelu", "silu", "mish",
            "hardswish", "tanh", "softplus", "softsign", "logsigmoid", "tanhshrink",
            "softshrink", "hardshrink", "rrelu", "threshold", "prelu",
        ],
    )  # fmt: skip
    _register(
        table,
        "math",
        [
            "exp", "log", "log1p", "expm1", "exp2", "log2", "log10", "sqrt", "rsqrt", "abs",
            "absolute", "square", "reciprocal", "sin", "cos", "erf", "clamp", "clip",
            "clamp_min", "clamp_max", "pow", "sign",
        ],
    )  # fmt: skip
    for func in (_T.__pow__, _T.__abs__, _T.__rpow__):
        table[func] = Op("math")
    _register(
        table,
        "routing",
        [
            "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute",
            "transpose", "swapaxes", "swapdims", "t", "squeeze", "unsqueeze", "expand",
            "expand_as", "contiguous", "clone", "cat", "concat", "concatenate", "stack",
            "hstack", "vstack", "split", "tensor_split", "chunk", "unbind", "narrow", "select",
            "index_select", "gather", "take_along_dim", "repeat", "tile", "flip", "fliplr",
            "flipud", "roll", "movedim", "moveaxis", "to", "type", "type_as", "float",
            "double", "half", "bfloat16", "cpu", "cuda", "pad", "pixel_shuffle",
            "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "unfold",
            "repeat_interleave",
            "diagonal", "ravel", "as_strided", "real", "broadcast_to", "atleast_1d",
            "atleast_2d", "atleast_3d", "requires_grad_",
        ],
    )  # fmt: skip
    table[_T.__getitem__] = Op("routing")
    for prop in ("T", "mT", "H", "mH"):
        table[getattr(_T, prop).__get__] = Op("routing")
    _register(
        table,
        "mixing",
        [
            "sum", "mean", "nansum", "avg_pool1d", "avg_pool2d", "avg_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "interpolate",
            "upsample", "upsample_nearest", "upsample_bilinear", "cumsum", "trace", "fold",
        ],
    )  # fmt: skip
    _register(table, "add", ["add", "sub", "subtract", "rsub"])
    for func in (_T.__add__, _T.__radd__, _T.__sub__, _T.__rsub__):
        table[func] = Op("add")
    table[_T.__iadd__] = Op("add", inplace=True, out_of_place=_T.add)
    table[_T.__isub__] = Op("add", inplace=True, out_of_place=_T.sub)
    _register(table, "neg", ["neg", "negative"])
    table[_T.__neg__] = Op("neg")
    _register(table, "mul", ["mul", "multiply"])
    for func in (_T.__mul__, _T.__rmul__):
        table[func] = Op("mul")
    table[_T.__imul__] = Op("mul", inplace=True, out_of_place=_T.mul)
    _register(table, "div", ["div", "divide", "true_divide"])
    for func in (_T.__truediv__, _T.__rtruediv__, _T.__rdiv__):
        table[func] = Op("div")
    table[_T.__itruediv__] = Op("div", inplace=True, out_of_place=_T.div)
    _register(table, "matmul", ["matmul", "mm", "bmm"])
    for func in (_T.__matmul__, _T.__rmatmul__):
        table[func] = Op("matmul")
    _register(
        table,
        "conv",
        ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"],
    )
    _register(table, "linear", ["linear"])
    _register(table, "addmm", ["addmm"])
    _register(table, "softmax", ["softmax"])
    _register(table, "layer_norm", ["layer_norm"])
    _register(table, "rms_norm", ["rms_norm"])
    _register(table, "attention", ["scaled_dot_product_attention"])
    table[F.multi_head_attention_forward] = Op("multi_head_attention")
    _register(table, "batch_norm", ["batch_norm"])
    _register(
        table,
        "dropout",
        [
            "dropout",
            "dropout1d",
            "dropout2d",
            "dropout3d",
            "alpha_dropout",
            "feature_alpha_dropout",
        ],
    )
    _register(
        table,
        "max_pool",
        [
            "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d",
            "adaptive_max_pool2d", "adaptive_max_pool3d",
        ],
    )  # fmt: skip
    # a fused transformer layer hides its activation from us: no method may pass it silently
    for name in ("_transformer_encoder_layer_fwd", "_native_multi_head_attention"):
        if hasattr(torch, name):
            table[getattr(torch, name)] = Op("fused")
    return table


OPS: dict[Any, Op] = _build()


def op_of(func: Any) -> Op | None:
    """The kind of ``func``, or ``None`` for a function no rule knows."""
    try:
        return OPS.get(func)
    except TypeError:  # an unhashable callable
        return None


_SIGNATURES: dict[Any, inspect.Signature | None] = {}


def argument(
    func: Callable[..., Any], args: tuple, kwargs: dict, index: int, name: str, default: Any
) -> Any:
    """The value of parameter ``name`` (at position ``index``) of one call of ``func``."""
    if name in kwargs:
        return kwargs[name]
    if len(args) > index:
        return args[index]
    return default


_F_BATCH_NORM = ("input", "running_mean", "running_var", "weight", "bias", "training",
                 "momentum", "eps")  # fmt: skip
_TORCH_BATCH_NORM = ("input", "weight", "bias", "running_mean", "running_var", "training",
                     "momentum", "eps", "cudnn_enabled")  # fmt: skip


def batch_norm_arguments(func: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A batch-norm call's arguments by name, whichever spelling was called:
    ``F.batch_norm(input, running_mean, running_var, weight, bias, ...)`` or
    ``torch.batch_norm(input, weight, bias, running_mean, running_var, ...)``."""
    names = _F_BATCH_NORM if func is F.batch_norm else _TORCH_BATCH_NORM
    found: dict[str, Any] = {"weight": None, "bias": None, "training": False, "eps": 1e-5}
    found.update(zip(names, args, strict=False))  # trailing arguments may be left out
    found.update(kwargs)
    return found


def inplace_flag(func: Callable[..., Any], args: tuple, kwargs: dict) -> bool:
    """Whether a call of an ``F.*`` function with an ``inplace=`` parameter writes in place."""
    if "inplace" in kwargs:
        return bool(kwargs["inplace"])
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):
            _SIGNATURES[func] = None
    signature = _SIGNATURES[func]
    if signature is None or "inplace" not in signature.parameters:
        return False
    position = list(signature.parameters).index("inplace")
    return bool(args[position]) if len(args) > position else False


def without_inplace(func: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments of the same call with ``inplace=False``."""
    signature = _SIGNATURES.get(func)
    if signature is None:
        return args, {**kwargs, "inplace": False} if "inplace" in kwargs else kwargs
    position = list(signature.parameters).index("inplace")
    if len(args) > position:
        args = (*args[:position], False, *args[position + 1 :])
        return args, kwargs
    return args, {**kwargs, "inplace": False}

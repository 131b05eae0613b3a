"""Attention as its math, inside the propagation mode.

``F.scaled_dot_product_attention`` (Hugging Face's "sdpa" attention) and
``F.multi_head_attention_forward`` (``nn.MultiheadAttention``, torchvision's ViT,
``nn.TransformerEncoderLayer``) are one call each: the mode sees the call, not the products
and the softmax inside it, and a rule for the whole call would have to redo the attention's
algebra. So their handlers re-express the call as its math,

    A = softmax(q k^T * scale + mask),   out = A v,

and hand each part to the method's propagator (``Propagator.call``), exactly as if the model
had written it out (Hugging Face's "eager" attention does): every part gets its own rule, and
eager and SDPA models get the same relevance. Nothing on the model changes (no
``attn_implementation`` switch, no patched class).

The fused fast path of ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` in eval
mode (``torch._native_multi_head_attention``, ``torch._transformer_encoder_layer_fwd``) never
runs under the mode: PyTorch takes it only when no torch-function mode is active, so the mode
sees ``F.multi_head_attention_forward`` instead.

Masks are built as additive constants (boolean "masked" entries become the most negative
float, as Hugging Face's eager masks are, rather than ``-inf``: a fully masked row then gives
a uniform row instead of NaNs). Dropout inside attention is random and is refused; models in
eval mode (as every explanation runs them) pass ``dropout_p = 0``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F

from attrib.methods.propagation.mode import Handler, Propagator
from attrib.methods.propagation.ops import Op

__all__ = [
    "attention_handlers",
    "attention_math",
    "multi_head_attention",
    "scaled_dot_product_attention",
]

_SDPA = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_SDPA_DEFAULTS: dict[str, Any] = {
    "attn_mask": None,
    "dropout_p": 0.0,
    "is_causal": False,
    "scale": None,
    "enable_gqa": False,
}
_MHA = inspect.signature(F.multi_head_attention_forward)


def attention_math(
    propagator: Propagator,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(softmax(q k^T * scale + mask) v, softmax(...))``, each part routed."""
    call = propagator.call
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = call(torch.matmul, q, k.transpose(-2, -1))
    scores = call(torch.mul, scores, scale)
    if mask is not None:
        scores = call(torch.add, scores, mask)
    weights = call(torch.softmax, scores, -1)
    return call(torch.matmul, weights, v), weights


def _masked(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An additive mask: 0 where ``keep``, the most negative ``dtype`` value elsewhere."""
    zeros = torch.zeros(keep.shape, dtype=dtype, device=keep.device)
    return zeros.masked_fill(~keep, torch.finfo(dtype).min)


def _additive(mask: torch.Tensor, dtype: torch.dtype, keep_where: bool) -> torch.Tensor:
    """``mask`` as an additive float mask (a boolean one keeps the entries equal to
    ``keep_where``: ``True`` for SDPA's masks, ``False`` for ``nn.MultiheadAttention``'s)."""
    if mask.dtype == torch.bool:
        return _masked(mask if keep_where else ~mask, dtype)
    return mask.to(dtype)


def scaled_dot_product_attention(
    propagator: Propagator, func: Any, args: tuple, kwargs: dict
) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale,
    enable_gqa)`` as its math (PyTorch's documented reference implementation)."""
    found = dict(_SDPA_DEFAULTS)
    found.update(zip(_SDPA, args, strict=False))
    found.update(kwargs)
    q, k, v = found["query"], found["key"], found["value"]
    if not any(isinstance(t, torch.Tensor) and t.requires_grad for t in (q, k, v)):
        return func(*args, **kwargs)
    if found["dropout_p"]:
        raise propagator.unsupported(
            func,
            "Dropout inside attention is random.",
            "Explain the model in eval mode (attention dropout 0).",
        )
    if found["enable_gqa"] and k.shape[-3] != q.shape[-3]:
        repeats = q.shape[-3] // k.shape[-3]
        k = k.repeat_interleave(repeats, -3)
        v = v.repeat_interleave(repeats, -3)
    length, source = q.shape[-2], k.shape[-2]
    mask = found["attn_mask"]
    if mask is not None:
        mask = _additive(mask, q.dtype, keep_where=True)
    if found["is_causal"]:
        causal = torch.ones(length, source, dtype=torch.bool, device=q.device).tril()
        if mask is None:
            mask = _masked(causal, q.dtype)
        else:  # two masked entries add up to -inf
            mask = (mask + _masked(causal, q.dtype)).clamp(min=torch.finfo(q.dtype).min)
    out, _ = attention_math(propagator, q, k, v, mask, found["scale"])
    return out


def multi_head_attention(
    propagator: Propagator, func: Any, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``F.multi_head_attention_forward`` as its math: input projections, the heads'
    attention (``attention_math``), the output projection. Computed batch first (DeepLIFT
    pairs rows along the first dimension) and returned in the call's own layout."""
    bound = _MHA.bind(*args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    query, key, value = a["query"], a["key"], a["value"]
    if not any(isinstance(t, torch.Tensor) and t.requires_grad for t in (query, key, value)):
        return func(*args, **kwargs)
    for name, why in (
        ("bias_k", "a bias added to the keys (add_bias_kv=True)"),
        ("add_zero_attn", "add_zero_attn=True"),
        ("static_k", "static keys"),
        ("static_v", "static values"),
    ):
        if a[name] is not None and a[name] is not False:
            raise propagator.unsupported(func, f"Its rule does not cover {why}.", "")
    if a["training"] and a["dropout_p"]:
        raise propagator.unsupported(
            func, "Dropout inside attention is random.", "Explain the model in eval mode."
        )
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    call = propagator.call
    heads = int(a["num_heads"])
    embed = query.shape[-1]
    head_dim = embed // heads
    packed = not a["use_separate_proj_weight"]
    bias = a["in_proj_bias"]
    if packed and query is key and key is value:
        # one projection, as PyTorch computes self-attention (and the module keeps its name)
        qkv = call(F.linear, query.transpose(0, 1), a["in_proj_weight"], bias)
        q, k, v = qkv.chunk(3, dim=-1)
    else:
        weights = (
            a["in_proj_weight"].chunk(3)
            if packed
            else (a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"])
        )
        biases = bias.chunk(3) if bias is not None else (None, None, None)
        q, k, v = (
            call(F.linear, t.transpose(0, 1), w, b)
            for t, w, b in zip((query, key, value), weights, biases, strict=True)
        )
    n, length, source = q.shape[0], q.shape[1], k.shape[1]
    q, k, v = (t.reshape(n, -1, heads, head_dim).transpose(1, 2) for t in (q, k, v))
    mask = _mha_mask(a, n, heads, length, source, q.dtype)
    out, attention = attention_math(propagator, q, k, v, mask, None)
    out = out.transpose(1, 2).reshape(n, length, embed)
    out = call(F.linear, out, a["out_proj_weight"], a["out_proj_bias"]).transpose(0, 1)
    if not batched:
        out = out.squeeze(1)
    if not a["need_weights"]:
        return out, None
    if a["average_attn_weights"]:
        attention = call(torch.mean, attention, 1)
    return out, attention if batched else attention.squeeze(0)


def _mha_mask(
    a: dict[str, Any], n: int, heads: int, length: int, source: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """The attention and key-padding masks of ``nn.MultiheadAttention`` (``True``: masked)
    as one additive mask broadcastable to ``(n, heads, length, source)``."""
    mask: torch.Tensor | None = None
    attn_mask = a["attn_mask"]
    if attn_mask is not None:
        mask = _additive(attn_mask, dtype, keep_where=False)
        if mask.dim() == 3:
            mask = mask.view(n, heads, length, source)
    padding = a["key_padding_mask"]
    if padding is not None:
        if padding.dim() == 1:
            padding = padding.unsqueeze(0)
        extra = _additive(padding, dtype, keep_where=False).view(-1, 1, 1, source)
        mask = extra if mask is None else mask + extra
    if mask is not None:
        mask = mask.clamp(min=torch.finfo(dtype).min)  # two masked entries add to -inf
    return mask


def attention_handlers(propagator: Propagator) -> dict[str, Handler]:
    """The handlers of the two attention kinds for ``propagator``: each call re-expressed
    as its math under the propagator's own rules (what LRP and DeepLIFT both register)."""

    def sdpa(func: Any, op: Op, args: tuple, kwargs: dict) -> Any:
        return scaled_dot_product_attention(propagator, func, args, kwargs)

    def mha(func: Any, op: Op, args: tuple, kwargs: dict) -> Any:
        return multi_head_attention(propagator, func, args, kwargs)

    return {"attention": sdpa, "multi_head_attention": mha}

"""Attention rollout (Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers"),
for any model of ``nn.MultiheadAttention`` layers (torchvision's ``VisionTransformer``).

With the residual connection counted as attention to oneself, each layer's head-averaged
attention becomes ``A_hat_l = (1 - r) mean_h A^h_l + r I`` (``r = 1/2`` in the paper), rows
renormalised, and the flow from the input tokens to the last layer's is
``R = A_hat_L ... A_hat_2 A_hat_1``; a token's score is ``R_{q t}`` for a query row ``q`` (the
class token for a classifier that reads it). ``rollout`` is the formula on given maps (the
text models' ``attrib.text.attention_rollout`` uses it too).

torchvision's encoder blocks call their attention with ``need_weights=False``, so the weights
are never computed. ``attention_maps`` recomputes them, with the module's own weights, from
the input each attention call receives: a forward hook (removed in ``finally``) calls
``nn.MultiheadAttention.forward`` itself on that input with ``need_weights=True`` (the
unhooked method, so the hook does not run again). The model's output is untouched and
nothing is left on it.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError
from attrib.core.hooks import hooked, prepared

__all__ = ["attention_maps", "patch_rollout", "rollout"]


def rollout(maps: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout of ``(layers, heads, L, L)`` maps: ``A_hat_L ... A_hat_1``, ``(L, L)``."""
    if not 0.0 <= residual <= 1.0:
        raise SettingError("residual", "a weight in [0, 1]", residual, "")
    eye = torch.eye(maps.shape[-1], dtype=torch.float64, device=maps.device)
    flow = eye
    for layer in maps.to(torch.float64):
        mixed = (1 - residual) * layer.mean(0) + residual * eye
        mixed = mixed / mixed.sum(-1, keepdim=True)
        flow = mixed @ flow
    return flow


def attention_maps(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every ``nn.MultiheadAttention`` call's weights, per head, in the order the forward
    makes them: ``(N, calls, heads, L, L)``, rows summing to 1 (one forward, no graph)."""
    modules = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if not modules:
        raise LayerError(
            "model",
            "a transformer of nn.MultiheadAttention layers (torchvision's VisionTransformer)",
            type(model).__name__,
            "For Hugging Face models ask for output_attentions=True (attrib.text.attention).",
        )
    found: list[torch.Tensor] = []

    def capture(module: nn.Module, args: Any, output: Any) -> None:
        if len(args) < 3:
            raise LayerError(
                "model",
                "attention called as attention(query, key, value, ...)",
                f"{len(args)} positional arguments",
                "",
            )
        query, key, value = args[:3]
        _, weights = nn.MultiheadAttention.forward(
            module,  # type: ignore[arg-type]
            query,
            key,
            value,
            need_weights=True,
            average_attn_weights=False,
        )
        assert weights is not None  # need_weights=True
        found.append(weights.detach())

    with prepared(model), torch.no_grad(), ExitStack() as stack:
        for module in modules:
            stack.enter_context(hooked(module, forward=capture))
        model(x)
    return torch.stack(found, dim=1)


def patch_rollout(model: nn.Module, x: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """The rollout score of each patch for the class token, on the patch grid: ``(N, h, w)``
    for a torchvision ``VisionTransformer`` (class token first, patches row by row)."""
    from attrib.methods.cam.layouts import family_of

    family = family_of(model)
    if family is None or family.kind != "vit" or family.prefix != 1:
        raise LayerError(
            "model",
            "a torchvision VisionTransformer (one class token, then the patch grid)",
            type(model).__name__,
            "",
        )
    maps = attention_maps(model, x)
    h, w = x.shape[-2] // family.patch[0], x.shape[-1] // family.patch[1]
    scores = torch.stack([rollout(m, residual)[0, family.prefix :] for m in maps])
    return scores.view(x.shape[0], h, w)

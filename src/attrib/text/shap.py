"""KernelSHAP over tokens: the hook point for the perturbation module.

Players are the tokens; a coalition keeps its tokens' embeddings and replaces the others by
the baseline embedding (``[PAD]``, ``[MASK]``, ...; special tokens are never replaced, since
the baseline holds their real embeddings). KernelSHAP (Lundberg and Lee 2017) fits
``f(z) ~ phi_0 + sum_t phi_t z_t`` with the Shapley kernel weights; ``phi`` sums to
``f(E) - f(E')`` (efficiency).

The estimator itself is ``attrib.methods.perturbation.KernelSHAP``; this subclass fixes each
token's ``d`` embedding dimensions as one player with the feature mask ``(L, 1)`` (token
index, broadcast over the dimensions) and ``spread="divide"``: each dimension
holds ``phi_t / d``, so the ``"sum"`` reduction returns ``phi_t`` (as for ``LeaveOneOut``).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.settings import Count, Fixed, Setting
from attrib.core.target import Target
from attrib.methods.catalogue import register
from attrib.methods.perturbation import KernelSHAP

__all__ = ["TokenKernelSHAP", "token_feature_mask"]


def token_feature_mask(length: int) -> torch.Tensor:
    """``(L, 1)`` long: every dimension of token ``t`` (broadcast) belongs to player ``t``."""
    return torch.arange(length).view(-1, 1)


def _token_players(x: torch.Tensor) -> torch.Tensor:
    return token_feature_mask(x.shape[1]).to(x.device)


@register(
    family="text",
    paper="Lundberg and Lee 2017",
    short="KernelSHAP with one player per token",
    summary="Shapley values of the tokens by KernelSHAP's weighted regression; absent tokens "
    "take the baseline token's embedding.",
    formula="min_φ Σ_z π(z) (v(z) − φ₀ − φ·z)²,  z ∈ {0,1}^L over tokens",
    signed=True,
    completeness=True,
    inputs="tokens",
    aliases=("kernel_shap",),
)
class TokenKernelSHAP(KernelSHAP):
    """KernelSHAP (Lundberg and Lee 2017) with one player per token of ``(N, L, d)``
    embeddings: ``phi`` fits ``f(z) ~ phi_0 + sum_t phi_t z_t``, and
    ``sum_t phi_t = f(E) - f(E')`` (efficiency).

    Args:
        baseline: the embeddings of absent tokens, ``(L, d)`` (as ``explain_tokens`` passes).
        samples: coalitions per text (default 256); other settings as ``KernelSHAP``.
    """

    samples = Setting(256, Count(1, "coalitions evaluated per text"))
    feature_mask = Fixed(_token_players)
    spread = Fixed("divide")

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise SettingError("x", "token embeddings (N, L, d)", inputs, "")
        return replace(super().attribute(inputs, target), channel_dim=2)

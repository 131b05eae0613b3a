"""KernelSHAP over tokens: the hook point for the perturbation module.

Players are the tokens; a coalition keeps its tokens' embeddings and replaces the others by
the baseline embedding (``[PAD]``, ``[MASK]``, ...; special tokens are never replaced, since
the baseline holds their real embeddings). KernelSHAP (Lundberg and Lee 2017) fits
``f(z) ~ phi_0 + sum_t phi_t z_t`` with the Shapley kernel weights; ``phi`` sums to
``f(E) - f(E')`` (efficiency).

The estimator itself is ``attrib.methods.perturbation.KernelSHAP``. This adapter makes each
token's ``d`` embedding dimensions one player with the feature mask ``(L, 1)`` (token
index, broadcast over the dimensions) and asks for ``spread="divide"``: each dimension
holds ``phi_t / d``, so the ``"sum"`` reduction returns ``phi_t`` (as for ``LeaveOneOut``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.target import Target
from attrib.methods.base import Method

__all__ = ["TokenKernelSHAP", "token_feature_mask"]


def token_feature_mask(length: int) -> torch.Tensor:
    """``(L, 1)`` long: every dimension of token ``t`` (broadcast) belongs to player ``t``."""
    return torch.arange(length).view(-1, 1)


class TokenKernelSHAP(Method):
    """KernelSHAP with one player per token of ``(N, L, d)`` embeddings.

    Args:
        baseline: the embeddings of absent tokens, ``(L, d)`` (as ``explain_tokens`` passes).
        samples, seed, settings: passed to the perturbation module's ``KernelSHAP``.
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        baseline: Any = 0.0,
        samples: int = 256,
        seed: int | None = None,
        batch_size: int | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.baseline = baseline
        self.samples = samples
        self.seed = seed
        self.extra = settings

    def settings(self) -> dict[str, Any]:
        return {"samples": self.samples, "seed": self.seed, **self.extra, **super().settings()}

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        try:
            from attrib.methods.perturbation import KernelSHAP
        except ImportError:
            raise SettingError(
                "method",
                "a method that is installed",
                "kernel_shap",
                "attrib.methods.perturbation (KernelSHAP) is not available in this version.",
            ) from None
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise SettingError("x", "token embeddings (N, L, d)", inputs, "")
        estimator = KernelSHAP(
            self.model,
            baseline=self.baseline,
            feature_mask=token_feature_mask(inputs.shape[1]).to(inputs.device),
            spread="divide",
            samples=self.samples,
            seed=self.seed,
            batch_size=self.batch_size,
            **self.extra,
        )
        result = estimator(inputs, target=target)
        return Attribution(
            values=result.values,
            target=result.target,
            method=self.name,
            params=self.settings(),
            baseline=result.baseline,
            delta=result.delta,
            output=result.output,
            channel_dim=2,
        )

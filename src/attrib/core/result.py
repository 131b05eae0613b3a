"""``Attribution``: what every method returns, whatever its settings.

No flag changes the return type: the completeness gap of path methods always lives in
``delta`` (``None`` where a method has none), and the resolved target is always recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch

from attrib.core.errors import SettingError

__all__ = ["SALIENCY_REDUCTIONS", "Attribution", "SaliencyReduction"]

SaliencyReduction = Literal["max_abs", "sum", "abs_sum", "l2"]
SALIENCY_REDUCTIONS: tuple[str, ...] = get_args(SaliencyReduction)
"""The ways ``Attribution.saliency`` collapses channels; only ``"sum"`` keeps the sign."""


@dataclass(frozen=True)
class Attribution:
    """The attributions of one batch.

    Attributes:
        values: relevance per input feature, with the shape of the input (input methods),
            ``(N, H, W)`` maps (CAM methods), or a dict of those for dict inputs.
        target: the resolved target: class index per sample (``(N,)`` long tensor), the
            callable that was given, or ``None`` when the model outputs one score per sample.
        method: the method's name, e.g. ``"IntegratedGradients"``.
        params: the settings the method ran with.
        baseline: the reference input where the method has one.
        delta: the completeness gap per sample, ``sum(values) - (f(x) - f(baseline))``,
            where the method has one.
        output: the model's output at the inputs (detached).
        channel_dim: the dimension that ``saliency()`` reduces (``None`` for maps that have
            no channel dimension, such as CAM maps).
    """

    values: Any
    target: Any = None
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None
    delta: torch.Tensor | None = None
    output: Any = None
    channel_dim: int | None = 1

    def saliency(
        self, reduce: SaliencyReduction | str = "max_abs", key: str | None = None
    ) -> torch.Tensor:
        """One map per sample, reducing the channel dimension.

        ``max_abs`` is ``M_ij = max_c |w_ijc|`` (Simonyan et al. 2014); ``sum`` keeps the
        sign; ``abs_sum`` is ``sum_c |w_ijc|``; ``l2`` is ``sqrt(sum_c w_ijc^2)``.
        For dict inputs, ``key`` says which input's map to draw.
        """
        if reduce not in SALIENCY_REDUCTIONS:
            raise SettingError("reduce", f"one of {SALIENCY_REDUCTIONS}", reduce, "")
        values = self._tensor(key)
        if self.channel_dim is None or values.dim() < 3:
            # no channel dimension to collapse: the reduction acts on each value alone
            return values if reduce == "sum" else values.abs()
        dim = self.channel_dim
        if reduce == "max_abs":
            return values.abs().amax(dim=dim)
        if reduce == "sum":
            return values.sum(dim=dim)
        if reduce == "abs_sum":
            return values.abs().sum(dim=dim)
        return values.pow(2).sum(dim=dim).sqrt()

    def numpy(self, key: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """The values as numpy arrays (a dict of them for dict inputs unless ``key`` is given)."""
        if isinstance(self.values, dict) and key is None:
            return {k: v.detach().cpu().numpy() for k, v in self.values.items()}
        return self._tensor(key).detach().cpu().numpy()

    def _tensor(self, key: str | None) -> torch.Tensor:
        if isinstance(self.values, dict):
            if key is None:
                if len(self.values) == 1:
                    return next(iter(self.values.values()))
                raise SettingError("key", f"one of {list(self.values)}", key, "")
            return self.values[key]
        return self.values

    def __repr__(self) -> str:
        shape = (
            {k: tuple(v.shape) for k, v in self.values.items()}
            if isinstance(self.values, dict)
            else tuple(self.values.shape)
        )
        extra = "" if self.delta is None else f", max|delta|={float(self.delta.abs().max()):.3g}"
        return f"Attribution(method={self.method!r}, values={shape}{extra})"

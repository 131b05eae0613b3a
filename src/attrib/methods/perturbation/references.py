"""What a removed feature becomes: a baseline value, or the values of a background set.

A removal method replaces the features it removes by a reference ``b``. With several
references ``b_1 .. b_K`` (a list of baselines, or a background set of samples) the value of
a perturbation is the average over them:

    v(S) = 1/K sum_k f(x_S, (b_k)_{-S}),

which is how shap's KernelExplainer and Strumbelj and Kononenko (2014) estimate
``E[f(X) | X_S = x_S]`` from data (features independent of each other). Every estimator
here is linear in ``v``, so this equals averaging the attributions over the references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs, leaves, map_inputs, rebuild
from attrib.methods.baselines import make_baselines

__all__ = ["References", "resolve_references"]


@dataclass(frozen=True)
class References:
    """``K`` references stacked per leaf as ``(K, 1 or N, ...)``: shared or per sample."""

    stacked: Inputs
    count: int
    shown: Any  # what Attribution.baseline reports

    def rows(self, which: torch.Tensor, sample: torch.Tensor, only: int | None = None) -> Inputs:
        """Reference ``which[r]`` of sample ``sample[r]`` for each row ``r``. With one
        reference shared by all samples (or ``only``, the one sample of every row), it is a
        broadcast view ``(1, ...)`` rather than a copy per row."""

        def one(b: torch.Tensor) -> torch.Tensor:
            if self.count == 1 and b.shape[1] == 1:
                return b[0, :1]
            if self.count == 1 and only is not None:
                return b[0, only : only + 1]
            k = which.to(b.device)
            return b[k, 0] if b.shape[1] == 1 else b[k, sample.to(b.device)]

        return map_inputs(one, self.stacked)


def resolve_references(
    baseline: Any, background: Any, inputs: Inputs, *, seed: int | None = None
) -> References:
    """The references of one call, from ``baseline=`` (see ``attrib.methods.baselines``:
    a number, a name, a tensor, or a list of those) or ``background=`` (a tensor ``(B, ...)``
    of samples shaped like one input, or a dict of them; overrides ``baseline``)."""
    if background is not None:
        return _background(background, inputs)
    made = make_baselines(baseline, inputs, seed=seed)
    stacked = map_inputs(lambda *b: _stack(list(b)), *made)
    shown = made[0] if len(made) == 1 else made
    return References(stacked, len(made), shown)


def _stack(baselines: list[torch.Tensor]) -> torch.Tensor:
    # a baseline shared by every sample arrives as an expanded view (stride 0 along the batch):
    # keep one copy of it instead of N
    if all(b.shape[0] == 1 or b.stride(0) == 0 for b in baselines):
        return torch.stack([b[:1] for b in baselines])
    return torch.stack([b.expand(baselines[0].shape) for b in baselines])


def _background(background: Any, inputs: Inputs) -> References:
    expected = "a tensor (B, ...) of B samples shaped like one input (or a dict of them)"
    if isinstance(inputs, dict) != isinstance(background, dict):
        raise SettingError("background", expected, background)
    if isinstance(inputs, dict) and set(background) != set(inputs):
        raise SettingError("background", f"a dict with the keys of x {sorted(inputs)}", background)
    tensors = [background[k] for k in inputs] if isinstance(inputs, dict) else [background]
    checked = []
    for b, x in zip(tensors, leaves(inputs), strict=True):
        if not isinstance(b, torch.Tensor) or tuple(b.shape[1:]) != tuple(x.shape[1:]):
            raise SettingError(
                "background",
                f"a tensor (B, {', '.join(map(str, x.shape[1:]))}) of samples shaped like one "
                "input",
                b,
                "Pass baseline= for one reference per input sample.",
            )
        if b.shape[0] == 0:
            raise SettingError("background", "at least one background sample", b)
        checked.append(b.to(device=x.device, dtype=x.dtype).unsqueeze(1))
    count = checked[0].shape[0]
    if any(b.shape[0] != count for b in checked):
        raise SettingError("background", "the same number of samples for every input", background)
    return References(rebuild(inputs, checked), count, background)

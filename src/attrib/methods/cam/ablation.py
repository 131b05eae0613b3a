"""Ablation-CAM (Desai and Ramaswamy 2020, "Ablation-CAM: Visual Explanations for Deep
Convolutional Network via Gradient-free Localization"):

    w_k = (y_c - y_c^k) / y_c,         L = ReLU(sum_k w_k A^k),

where ``y_c^k`` is the target score with channel ``k`` of the layer's output set to zero
(``ablation_value``). Rows are (sample, channel) pairs, ``N x K`` of them, evaluated in chunks
of ``batch_size`` by the core engine; each row runs only the part of the network after the
layer (``attrib.methods.cam.tail``) where the model can be cut there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs
from attrib.core.settings import Number, Setting
from attrib.core.target import Target
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed
from attrib.methods.cam.maps import Reshape, spatial
from attrib.methods.cam.tail import Tail, forward_tail, reproduces, split_after, traced_tail
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["AblationCAM"]


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Desai and Ramaswamy 2020",
    short="channel weights from ablating channels",
    summary="Each channel's weight is the relative drop of the score when that channel is zeroed.",
    formula="α_k = (S_c − S_c^{A^k=0}) / S_c",
    inputs="image",
)
class AblationCAM(CAMMethod):
    """Ablation-CAM (Desai and Ramaswamy 2020): each channel's weight is the relative drop of
    the target score when that channel is ablated, ``w_k = (y_c - y_c^k) / y_c``,
    ``L = ReLU(sum_k w_k A^k)``.

    Args:
        ablation_value: what an ablated channel is set to (0 in the paper).
        batch_size: the most ablated rows (sample x channel) per forward.

    ``Attribution.params["tail"]`` says how the rows ran: ``"traced"`` (from the layer onward)
    or ``"full forward"`` (the whole network with the layer's output replaced).
    """

    ablation_value = Setting(0.0, Number(purpose="0 in the paper"))

    def configure(self) -> None:
        self._splits: dict[int, tuple[nn.Module, Any]] = {}  # traced cuts, per layer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_splits"] = {}  # traced graphs are a cache: rebuilt where unpickled
        return state

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        got = self.capture(inputs, target, layer)
        raw = got.activations  # the layer's own output; maps may be a reshaped view of it
        maps = self.maps(raw, name, inputs)
        # (K, h w): the flat positions of each ablated channel in the raw output
        positions = channel_positions(raw, self.layout(raw, name, inputs), name)
        n, channels = maps.shape[:2]

        def score(output: Any, sample: torch.Tensor) -> torch.Tensor:
            return got.target.rows(sample).scores(output)

        tail, kind = self._tail(inputs, layer, raw, score, got.scores)

        def evaluate(chunk: Chunk) -> torch.Tensor:
            rows = raw[chunk.sample].flatten(1)  # a copy: each row is ablated on its own
            rows.scatter_(1, positions[chunk.item], self.ablation_value)
            return score(tail(rows.view(len(chunk), *raw.shape[1:]), chunk.sample), chunk.sample)

        row_size = raw[:1] if kind == "traced" else inputs
        size = self.batch_size or default_batch_size(row_size, n * channels)
        automatic = self.batch_size is None
        ablated = run_chunks(
            evaluate, n, channels, size, "keep", device=raw.device, automatic=automatic
        )
        weights = rules.ablation_weights(got.scores, ablated)
        return Computed(
            rules.weighted_sum(weights, maps, self.reduction),
            got.target,
            got.output,
            {"tail": kind},
        )

    def _tail(
        self, inputs: Inputs, layer: nn.Module, raw: torch.Tensor, score: Any, expected: Any
    ) -> tuple[Tail, str]:
        """The traced tail when it reproduces the model's scores, else the full forward."""
        cached = self._splits.get(id(layer))
        fresh = cached is None or cached[0] is not layer
        split = split_after(self.module, layer) if cached is None or fresh else cached[1]
        tail = traced_tail(split, inputs) if split is not None else None
        works = tail is not None and reproduces(tail, raw, score, expected)
        if not works and not fresh:
            split = split_after(self.module, layer)  # the model changed since it was cut
            tail = traced_tail(split, inputs) if split is not None else None
            works = tail is not None and reproduces(tail, raw, score, expected)
        self._splits[id(layer)] = (layer, split)
        if works and tail is not None:
            return tail, "traced"
        return forward_tail(self.model, layer, inputs), "full forward"


def channel_positions(raw: torch.Tensor, reshape: Reshape | None, name: str) -> torch.Tensor:
    """For each channel ``k`` of the maps, the flat positions in one row of the layer's raw
    output that make up ``A^k``: ``(K, h w)``. Found by passing the positions themselves
    through ``reshape``, which therefore must only move values."""
    index = torch.arange(raw[0].numel(), dtype=torch.float64, device=raw.device)
    mapped = spatial(index.view(1, *raw.shape[1:]), reshape, name, 1)[0]
    positions = mapped.flatten(1)
    moved_only = bool((positions == positions.round()).all()) and (
        positions.numel() == torch.unique(positions).numel()
    )
    if not moved_only or bool((positions < 0).any()) or bool((positions >= index.numel()).any()):
        raise SettingError(
            "reshape",
            "a reshape that only moves values (indexing, reshape, permute) for Ablation-CAM",
            reshape,
            "Ablation-CAM sets the layer's own outputs to zero, so it must know where each "
            "channel of the reshaped maps comes from.",
        )
    return positions.long()

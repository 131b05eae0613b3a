"""Score-CAM (Wang et al. 2020, "Score-CAM: Score-Weighted Visual Explanations for
Convolutional Neural Networks"):

    H_k = s(Up(A^k)),   w_k = softmax_k(S_c(X * H_k) - S_c(X_b)),   L = ReLU(sum_k w_k A^k),

``Up`` the bilinear upsampling to the input and ``s`` the min-max normalisation to [0, 1]
(Algorithm 1 of the paper; the baseline score is the same for every ``k`` and cancels in the
softmax). Rows are (sample, channel) pairs, ``N x K`` masked images, built chunk by chunk
and evaluated ``batch_size`` at a time by the core engine: no more than one chunk of masked
images ever exists.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.grad import forward_scores
from attrib.core.inputs import Inputs
from attrib.core.target import OutputSelector, Target, select_output
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed, LayerSpec, check_choice, check_flag
from attrib.methods.cam.maps import Normalize, Reshape, min_max, upsample

__all__ = ["ScoreCAM"]

Weighting = Literal["softmax", "probability"]


class ScoreCAM(CAMMethod):
    """Score-CAM: each channel's weight comes from the target score of the input masked by
    that channel's (upsampled, normalised) map.

    Args:
        weighting: ``"softmax"`` (the paper's Algorithm 1: softmax over the channels of the
            masked scores) or ``"probability"`` (the authors' released code: the softmax
            probability of the target class at each masked input, over the classes, and
            0 for a constant map).
        align_corners: how the masks are upsampled; ``False`` (pixel centres, as the maps
            and the authors' code), ``True`` as ``torch.nn.UpsamplingBilinear2d``
            (pytorch-grad-cam's masks).
        batch_size: the most masked images per forward.

    A constant map (a dead channel) has no min-max normalisation; its mask is zero.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        *,
        weighting: Weighting = "softmax",
        align_corners: bool = False,
        reshape: Reshape | None = None,
        upsample: bool = True,
        normalize: Normalize = None,
        relu: bool = True,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            layer,
            reshape=reshape,
            upsample=upsample,
            normalize=normalize,
            relu=relu,
            output=output,
            batch_size=batch_size,
        )
        self.weighting = check_choice("weighting", weighting, ("softmax", "probability"))
        self.align_corners = check_flag("align_corners", align_corners)

    def settings(self) -> dict[str, Any]:
        return {
            "weighting": self.weighting,
            "align_corners": self.align_corners,
            **super().settings(),
        }

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            raise SettingError("x", "one batch of images (N, C, H, W) for Score-CAM", inputs, "")
        got = self.capture(inputs, target, layer)
        maps = self.maps(got.activations, name, inputs)
        n, channels = maps.shape[:2]
        if self.weighting == "probability" and got.target.indices is None:
            raise SettingError(
                "weighting",
                "'softmax' unless the target is a class index ('probability' is a class's "
                "softmax probability)",
                self.weighting,
                "",
            )
        size = (inputs.shape[-2], inputs.shape[-1])

        def evaluate(chunk: Chunk) -> torch.Tensor:
            up = upsample(maps[chunk.sample, chunk.item], size, self.align_corners)
            masked = inputs[chunk.sample] * min_max(up).unsqueeze(1).to(inputs.dtype)
            rows = got.target.rows(chunk.sample)
            scores, output, _ = forward_scores(self.model, masked, rows, self.output)
            if self.weighting == "softmax":
                return scores
            logits = select_output(output, self.output)
            probability = logits.softmax(dim=1).gather(1, rows.indices.view(-1, 1))[:, 0]
            flat = up.flatten(1)
            constant = flat.amax(1) == flat.amin(1)
            return torch.where(constant, torch.zeros_like(probability), probability)

        rows = self.batch_size or default_batch_size(inputs, n * channels)
        scores = run_chunks(evaluate, n, channels, rows, "keep", device=inputs.device)
        weights = rules.score_weights(scores) if self.weighting == "softmax" else scores
        return Computed(rules.weighted_sum(weights, maps), got.target, got.output)

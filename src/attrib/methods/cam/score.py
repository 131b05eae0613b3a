"""Score-CAM (Wang et al. 2020, "Score-CAM: Score-Weighted Visual Explanations for
Convolutional Neural Networks"):

    H_k = s(Up(A^k)),   w_k = softmax_k(S_c(X * H_k) - S_c(X_b)),   L = ReLU(sum_k w_k A^k),

``Up`` the bilinear upsampling to the input and ``s`` the min-max normalisation to [0, 1]
(Algorithm 1 of the paper; the baseline score is the same for every ``k`` and cancels in the
softmax). Rows are (sample, channel) pairs, up to ``N x K`` masked images, built chunk by
chunk and evaluated ``batch_size`` at a time by the core engine: no more than one chunk of
masked images ever exists. A constant map (a dead channel) masks the image to zero whatever
the channel, so the zero image is evaluated once per sample for all of them (``masked_rows``);
``Attribution.params["masked_forwards"]`` counts the rows that ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.grad import forward_scores
from attrib.core.inputs import Inputs
from attrib.core.settings import FLAG, Choice, Setting
from attrib.core.target import Target, select_output
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed
from attrib.methods.cam.maps import min_max, upsample
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["MaskedRows", "ScoreCAM", "masked_rows"]

Weighting = Literal["softmax", "probability"]


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Wang et al. 2020",
    short="channel weights from masked-input scores",
    summary="Each channel's weight is the score of the input masked by that channel's map "
    "(normalised, upsampled): no gradients.",
    formula="α_k = softmax_k S_c(x ⊙ norm(up(A^k)))",
    inputs="image",
)
class ScoreCAM(CAMMethod):
    """Score-CAM (Wang et al. 2020): each channel's weight comes from the target score of the
    input masked by that channel's (upsampled, normalised) map,
    ``w_k = softmax_k S_c(x * s(Up(A^k)))``, ``L = ReLU(sum_k w_k A^k)``.

    Args:
        weighting: ``"softmax"`` (the paper's Algorithm 1: softmax over the channels of the
            masked scores) or ``"probability"`` (the authors' released code: the softmax
            probability of the target class at each masked input, over the classes, and
            0 for a constant map).
        align_corners: how the masks are upsampled; ``False`` (pixel centres, as the maps
            and the authors' code), ``True`` as ``torch.nn.UpsamplingBilinear2d``
            (pytorch-grad-cam's masks).
        batch_size: the most masked images per forward; by default the engine's (8
            ImageNet-sized rows on CPU: on 2 cores resnet18's forward cost the same per row
            at 8 rows as at 16, 19.4 s and 20.9 s for 2 images x 512 channels, with half the
            memory).

    A constant map (a dead channel) has no min-max normalisation; its mask is zero, and its
    masked image (the zero image) runs once per sample, not once per constant channel.
    """

    weighting = Setting("softmax", Choice(("softmax", "probability")))
    align_corners = Setting(False, FLAG)

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
        rows = masked_rows(maps, zero_image=self.weighting == "softmax")
        row_sample, row_channel, live = rows.sample, rows.channel, rows.live

        def evaluate(chunk: Chunk) -> torch.Tensor:
            sample, channel = row_sample[chunk.sample], row_channel[chunk.sample]
            up = upsample(maps[sample, channel], size, self.align_corners)
            # a constant map's mask is zero (min_max would scale its rounding noise)
            mask = torch.where(live[sample, channel].view(-1, 1, 1), min_max(up), 0)
            masked = inputs[sample] * mask.unsqueeze(1).to(inputs.dtype)
            target_rows = got.target.rows(sample)
            scores, output, _ = forward_scores(self.model, masked, target_rows, self.output)
            if self.weighting == "softmax":
                return scores
            logits = select_output(output, self.output)
            classes = target_rows.indices
            assert classes is not None  # checked above: "probability" needs class indices
            return logits.softmax(dim=1).gather(1, classes.view(-1, 1))[:, 0]

        total = len(row_sample)
        if total:
            batch = self.batch_size or default_batch_size(inputs, total)
            found = run_chunks(
                evaluate,
                total,
                1,
                batch,
                "keep",
                device=inputs.device,
                origin=row_sample,
                automatic=self.batch_size is None,
            )
            found = found.reshape(total)
        else:  # every map constant, and constant maps weigh 0: nothing to evaluate
            found = inputs.new_zeros(0)
        # dead channels: 0 for "probability", else the score of the sample's zero image
        scores = torch.zeros(n, channels, dtype=found.dtype, device=found.device)
        if self.weighting == "softmax" and rows.zero_rows.numel():
            zero_scores = torch.zeros(n, dtype=found.dtype, device=found.device)
            zero_scores[row_sample[rows.zero_rows]] = found[rows.zero_rows]
            scores = zero_scores.view(n, 1).expand(n, channels).clone()
        scores[live] = found[rows.live_rows]
        weights = rules.score_weights(scores) if self.weighting == "softmax" else scores
        params = {"masked_forwards": total}
        return Computed(
            rules.weighted_sum(weights, maps, self.reduction), got.target, got.output, params
        )


@dataclass(frozen=True)
class MaskedRows:
    """The (sample, channel) rows Score-CAM evaluates: one masked image per forward row.

    ``live`` ``(N, K)``: the channels whose map is not constant. Their rows come first, in
    the order of ``live.nonzero()`` (``live_rows`` indexes them); then, where asked, one row
    per sample that has a constant map, its mask zero (``zero_rows``): the zero image, whose
    score every constant channel of that sample shares.
    """

    sample: torch.Tensor  # (rows,) long
    channel: torch.Tensor  # (rows,) long
    live: torch.Tensor  # (N, K) bool
    live_rows: torch.Tensor  # (live,) long: positions in the rows
    zero_rows: torch.Tensor  # (samples with a constant map,) long, or empty


def masked_rows(maps: torch.Tensor, zero_image: bool) -> MaskedRows:
    """Which masked images of ``maps`` ``(N, K, h, w)`` need a forward.

    A constant map (a dead channel: all zeros after a ReLU) min-max normalises to the zero
    mask, so its masked image is the zero image, whatever the channel: its score is computed
    once per sample (``zero_image=True``) instead of once per constant channel, or not at all
    (``zero_image=False``, when constant maps get weight 0 anyway). Deciding at the layer's
    resolution also keeps bilinear rounding of a nonzero constant from being scaled up into a
    mask.
    """
    flat = maps.flatten(2)
    live = flat.amax(2) != flat.amin(2)
    pairs = live.nonzero()
    sample, channel = pairs[:, 0], pairs[:, 1]
    live_rows = torch.arange(len(pairs), device=maps.device)
    zero_rows = live_rows[:0]
    if zero_image:
        dead_samples = (~live).any(1).nonzero()[:, 0]
        first_dead = (~live).int().argmax(1)[dead_samples]
        zero_rows = torch.arange(len(dead_samples), device=maps.device) + len(pairs)
        sample = torch.cat([sample, dead_samples])
        channel = torch.cat([channel, first_dead])
    return MaskedRows(sample, channel, live, live_rows, zero_rows)

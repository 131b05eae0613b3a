"""Faithfulness curves: perturb the features an explanation ranks first, watch the score fall.

All four metrics rank the features by relevance and score copies of each input in which the
first ``m_k`` features (``k = 0 .. K``) are perturbed; they differ in the order, the
perturbation and the score:

- ``deletion`` (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation of
  Black-box Models"): most relevant first, replaced by a substrate (0 by default), scoring the
  target's softmax probability; the area under the curve (lower is better).
- ``insertion`` (Petsiuk et al. 2018): start from the substrate (a blurred copy by default)
  and put the most relevant features back first; the area under the curve (higher is better).
- ``pixel_flipping`` (Samek et al. 2017, "Evaluating the Visualization of What a Deep Neural
  Network Has Learned"): most (MoRF) or least (LeRF) relevant first, features (or
  ``patch x patch`` regions) replaced by uniform noise, scoring the logit; the area over the
  perturbation curve ``AOPC = 1/(K+1) sum_k (f(x) - f(x^(k)))`` (higher is better for MoRF,
  lower for LeRF).
- ``road`` (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
  Methods"): MoRF or LeRF at fixed fractions, removed pixels filled by noisy linear
  imputation (``attrib.metrics.imputation``) rather than a constant, scoring whether the
  target class is still predicted (the accuracy curve; lower is better for MoRF).

Each returns a ``Curve``: the fractions perturbed, one row of scores per sample, and the score
at the clean input. Areas are trapezoids over the fraction perturbed, in [0, 1] on the x axis.

Rows go through the core engine: every (sample, point) pair is one row, built inside the
chunk that scores it, so memory is bounded by ``batch_size``; the clean input is item 0 of
each sample (see ``attrib.metrics._rows``), so a curve of ``K + 1`` points over ``N`` samples
costs exactly ``ceil(N (K + 1) / batch_size)`` forwards, ``target="predicted"`` included.
Ties in relevance are broken by position (a stable sort).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from attrib.core.batching import Chunk, check_batch_size, run_chunks
from attrib.core.errors import InputError, SettingError
from attrib.core.hooks import prepared
from attrib.core.target import OutputSelector, Target
from attrib.methods.baselines import make_baselines
from attrib.metrics._inputs import AttributionLike, attribution_tensor, check_x, features
from attrib.metrics._random import check_seed, generator
from attrib.metrics._rows import RowScores, Score, rows_per_call
from attrib.metrics.imputation import linear_imputation

__all__ = ["Curve", "deletion", "insertion", "perturbation_curve", "pixel_flipping", "road"]

Order = Literal["morf", "lerf"]
# a fill makes perturbed rows: fill(clean rows, element mask of what to perturb, chunk)
Fill = Callable[[torch.Tensor, torch.Tensor, Chunk], torch.Tensor]


@dataclass(frozen=True)
class Curve:
    """Scores of perturbed copies of each sample against the fraction of features perturbed.

    Attributes:
        fractions: ``(K + 1,)`` the fraction of features perturbed at each point (for
            insertion: the fraction put back).
        scores: ``(N, K + 1)`` the score of each sample's copy at each point.
        clean: ``(N,)`` the score at the unperturbed input.
        kind: ``"deletion"``, ``"insertion"``, ``"pixel_flipping"`` or ``"road"``.
        order: ``"morf"`` (most relevant first) or ``"lerf"``.
        classes: the class each sample was scored for (``None`` for a single-score model
            or a callable target).
    """

    fractions: torch.Tensor
    scores: torch.Tensor
    clean: torch.Tensor
    kind: str
    order: str
    classes: torch.Tensor | None = None

    def area(self) -> torch.Tensor:
        """Area under the curve per sample: the trapezoid rule over ``fractions``."""
        widths = self.fractions[1:] - self.fractions[:-1]
        heights = (self.scores[:, 1:] + self.scores[:, :-1]) / 2
        return (heights * widths).sum(dim=1)

    def aopc(self) -> torch.Tensor:
        """Area over the perturbation curve per sample (Samek et al. 2017):
        ``1/(K+1) sum_k (clean - scores_k)``, the mean drop from the clean score."""
        return (self.clean.view(-1, 1) - self.scores).mean(dim=1)

    def mean(self) -> torch.Tensor:
        """The mean curve over samples, ``(K + 1,)``."""
        return self.scores.mean(dim=0)


def _counts(n_features: int, steps: int | None, features_per_step: int | None) -> torch.Tensor:
    """How many features are perturbed at each point: ``0, ..., n_features``."""
    if steps is not None and features_per_step is not None:
        raise SettingError(
            "steps", "either steps or features_per_step, not both", (steps, features_per_step)
        )
    if features_per_step is not None:
        if isinstance(features_per_step, bool) or not isinstance(features_per_step, int):
            raise SettingError("features_per_step", "a positive int", features_per_step, "")
        if features_per_step < 1:
            raise SettingError("features_per_step", "a positive int", features_per_step, "")
        points = -(-n_features // features_per_step)
        counts = [min(k * features_per_step, n_features) for k in range(points + 1)]
        return torch.tensor(counts, dtype=torch.long)
    if steps is None:
        steps = min(n_features, 100)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= n_features:
        raise SettingError(
            "steps", f"an int from 1 to the number of features ({n_features})", steps, ""
        )
    return torch.tensor([k * n_features // steps for k in range(steps + 1)], dtype=torch.long)


def _fraction_counts(n_features: int, fractions: Sequence[float]) -> torch.Tensor:
    values = [float(f) for f in fractions]
    if not values or any(not 0 <= f <= 1 for f in values) or values != sorted(values):
        raise SettingError("fractions", "increasing fractions in [0, 1]", fractions, "")
    # rounding first keeps 0.07 * 784 = 54.88000000000001 from becoming 55 or 54 by chance
    counts = [int(round(f * n_features, 9)) for f in values]
    if counts[0] != 0:
        counts = [0, *counts]
    return torch.tensor(counts, dtype=torch.long)


def _ranks(relevance: torch.Tensor, order: str) -> torch.Tensor:
    """Position of each feature in the perturbation order (0 = perturbed first)."""
    if order not in ("morf", "lerf"):
        raise SettingError("order", "'morf' (most relevant first) or 'lerf'", order, "")
    ordering = relevance.argsort(dim=1, descending=order == "morf", stable=True)
    positions = torch.arange(relevance.shape[1], device=relevance.device)
    return torch.empty_like(ordering).scatter_(1, ordering, positions.expand_as(ordering))


def _substrate(
    spec: Any,
    x: torch.Tensor,
    *,
    seed: int,
    blur_sigma: float | None,
    value_range: tuple[float, float] | None,
) -> torch.Tensor:
    """What perturbed features are replaced with, one full copy per sample.

    A number, ``"black"`` / ``"white"`` / ``"gray"`` (each sample's min, max, midpoint, or of
    ``value_range``), ``"mean"`` (each sample's mean), ``"blur"`` (Gaussian, ``blur_sigma``),
    ``"uniform"`` (noise over the value range, drawn with ``seed``), or a tensor of the
    input's (or one sample's) shape: the same forms as a path method's ``baseline``.
    """
    if isinstance(spec, str) and spec == "mean":
        dims = tuple(range(1, x.dim()))
        return x.mean(dim=dims, keepdim=True).expand_as(x).clone()
    if isinstance(spec, (list, tuple)):
        raise SettingError("substrate", "one substrate (not a list)", spec, "")
    made = make_baselines(spec, x, value_range=value_range, blur_sigma=blur_sigma, seed=seed)[0]
    assert isinstance(made, torch.Tensor)  # x is one tensor
    return made.detach()


def _replace_with(substrate: torch.Tensor) -> Fill:
    def fill(rows: torch.Tensor, mask: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        return torch.where(mask, substrate[chunk.sample], rows)

    return fill


def perturbation_curve(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    kind: str = "deletion",
    order: Order = "morf",
    counts: torch.Tensor | None = None,
    steps: int | None = None,
    features_per_step: int | None = None,
    fill: Fill | None = None,
    substrate: Any = 0.0,
    insert: bool = False,
    patch: int = 1,
    score: Score = "logit",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
    value_range: tuple[float, float] | None = None,
) -> Curve:
    """The general curve the four metrics are made of (see the module docstring).

    ``insert=False``: at point ``k`` the first ``m_k`` features (in ``order``) are perturbed;
    ``insert=True``: all but the first ``m_k`` are (the substrate with features put back).
    ``fill`` perturbs rows (default: replace with ``substrate``).
    """
    x = check_x(x)
    feats = features(attributions, x, patch)
    seed = check_seed(seed)
    check_batch_size(batch_size)
    if counts is None:
        counts = _counts(feats.count, steps, features_per_step)
    if fill is None:
        fill = _replace_with(
            _substrate(substrate, x, seed=seed, blur_sigma=blur_sigma, value_range=value_range)
        )
    rank = _ranks(feats.relevance, order)
    n, points = x.shape[0], counts.shape[0]
    # item 0 must be the clean input: the first point of a deletion, the last of an insertion
    point_of_item = torch.arange(points)
    if insert:
        point_of_item = point_of_item.flip(0)
    scorer = RowScores(model, target, n, score, output)
    counts = counts.to(x.device)

    def evaluate(chunk: Chunk) -> torch.Tensor:
        m = counts[point_of_item.to(x.device)[chunk.item]].view(-1, 1)
        r = rank[chunk.sample]
        selected = r >= m if insert else r < m
        rows = fill(x[chunk.sample], feats.expand(selected), chunk)
        return scorer(rows, chunk).to(torch.float64)

    size = rows_per_call(x, n * points, batch_size)
    with prepared(model):  # eval mode and frozen parameters once, not per chunk
        kept = run_chunks(evaluate, n, points, size, "keep", device=x.device)
    scores = kept[:, point_of_item.argsort().to(kept.device)]
    clean = scores[:, -1] if insert else scores[:, 0]
    fractions = counts.double().cpu() / feats.count
    return Curve(fractions, scores.cpu(), clean.cpu(), kind, order, scorer.classes)


def deletion(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    substrate: Any = 0.0,
    steps: int | None = None,
    features_per_step: int | None = None,
    patch: int = 1,
    score: Score = "probability",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
    value_range: tuple[float, float] | None = None,
) -> Curve:
    """Deletion curve (Petsiuk et al. 2018): the most relevant features replaced first.

    ``Curve.area()`` is the deletion score, lower is better. Defaults follow the paper:
    features replaced by 0 (``substrate``), the target's softmax probability (``score``).
    ``steps`` points (default ``min(features, 100)``) or ``features_per_step`` (the paper:
    224 pixels per step at 224 x 224). Attributions of the input's shape rank input elements;
    maps ``(N, H, W)`` rank pixels, all channels together (the paper's setting).
    """
    return perturbation_curve(
        model,
        x,
        attributions,
        target,
        kind="deletion",
        order="morf",
        steps=steps,
        features_per_step=features_per_step,
        substrate=substrate,
        patch=patch,
        score=score,
        output=output,
        batch_size=batch_size,
        seed=seed,
        blur_sigma=blur_sigma,
        value_range=value_range,
    )


def insertion(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    substrate: Any = "blur",
    blur_sigma: float | None = None,
    steps: int | None = None,
    features_per_step: int | None = None,
    patch: int = 1,
    score: Score = "probability",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
) -> Curve:
    """Insertion curve (Petsiuk et al. 2018): from the substrate, the most relevant first.

    ``Curve.area()`` is the insertion score, higher is better. The substrate is a Gaussian
    blur of the input (``blur_sigma``, default a tenth of the image side; the paper blurs with
    sigma 5 in an 11 x 11 window at 224 pixels).
    """
    return perturbation_curve(
        model,
        x,
        attributions,
        target,
        kind="insertion",
        order="morf",
        steps=steps,
        features_per_step=features_per_step,
        substrate=substrate,
        insert=True,
        patch=patch,
        score=score,
        output=output,
        batch_size=batch_size,
        seed=seed,
        blur_sigma=blur_sigma,
        value_range=value_range,
    )


def pixel_flipping(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    order: Order = "morf",
    substrate: Any = "uniform",
    steps: int | None = None,
    features_per_step: int | None = None,
    patch: int = 1,
    score: Score = "logit",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
) -> Curve:
    """Pixel flipping / region perturbation (Samek et al. 2017), MoRF or LeRF.

    ``Curve.aopc()`` is the AOPC; MoRF: higher is better, LeRF: lower is better. Features (or
    ``patch x patch`` regions, relevance summed; the paper uses 9 x 9) are replaced by uniform
    noise over each sample's value range (``substrate="uniform"``, drawn once per sample with
    ``seed``, so a flipped feature keeps its value along the curve).
    """
    return perturbation_curve(
        model,
        x,
        attributions,
        target,
        kind="pixel_flipping",
        order=order,
        steps=steps,
        features_per_step=features_per_step,
        substrate=substrate,
        patch=patch,
        score=score,
        output=output,
        batch_size=batch_size,
        seed=seed,
        value_range=value_range,
    )


def road(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    order: Order = "morf",
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    noise: float = 0.01,
    score: Score = "accuracy",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> Curve:
    """ROAD: remove and debias (Rong et al. 2022), MoRF or LeRF.

    At each fraction of pixels (ranked by a map ``(N, H, W)``; input-shaped attributions of
    one-channel images also do), the removed pixels are imputed from their neighbours and
    ``noise * N(0, 1)`` is added to them (drawn per row from ``seed``). The curve starts at
    fraction 0 (the clean input) and scores whether the target class is still predicted
    (``score="accuracy"``; its mean over samples is the paper's accuracy curve). MoRF: lower
    is better; LeRF: higher is better.
    """
    x = check_x(x)
    if x.dim() != 4:
        raise InputError("x", "images (N, C, H, W) for ROAD's imputation", x, "")
    feats = features(attributions, x)
    if not feats.per_location and x.shape[1] != 1:
        raise InputError(
            "attributions",
            f"one value per pixel {(x.shape[0], *x.shape[2:])} (ROAD removes whole pixels)",
            attribution_tensor(attributions),
            "Reduce channels first, e.g. attribution.saliency().",
        )
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or noise < 0:
        raise SettingError("noise", "a standard deviation >= 0", noise, "")
    seed = check_seed(seed)
    counts = _fraction_counts(feats.count, fractions)

    def fill(rows: torch.Tensor, mask: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        removed = mask[:, 0]
        out = linear_imputation(rows, removed)
        if noise > 0:
            draws = torch.stack(
                [
                    torch.randn(rows.shape[1:], generator=generator(seed, i, j), dtype=rows.dtype)
                    for i, j in zip(chunk.sample.tolist(), chunk.item.tolist(), strict=True)
                ]
            ).to(rows.device)
            out = out + noise * draws * removed.unsqueeze(1)
        return out

    return perturbation_curve(
        model,
        x,
        attributions,
        target,
        kind="road",
        order=order,
        counts=counts,
        fill=fill,
        score=score,
        output=output,
        batch_size=batch_size,
        seed=seed,
    )

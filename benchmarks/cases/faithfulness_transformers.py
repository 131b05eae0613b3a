"""Faithfulness of explanations of transformers (issue 21): deletion curves, as a report.

Not a race: it measures how fast the explained class's probability falls when the features an
explanation ranks first are deleted (Petsiuk et al. 2018's deletion metric; lower area under
the curve is better), per method, over held-out inputs of two trained transformers.

- **text**: the shipped MiniLM sentiment classifier (``load_minilm_sentiment``) on the first
  ``N`` held-out Rotten Tomatoes snippets of at most ``MAX_TOKENS`` tokens
  (``attrib.text.datasets.held_out_texts``: movies the head was not trained on). Token
  relevance is the method's token score (``TokenAttribution.scores()``: the sum over the
  embedding for gradient x input, IG and LRP; attention rollout's score of the mean query,
  which is what the mean-pooled head reads). ``[CLS]`` and ``[SEP]`` are never deleted.
  Deleting a token **removes it from the attention mask**: no layer attends to it and the
  mean pooling skips it, which is deleting it from the text except that the others keep
  their positions. This is how attrib's erasure tests remove an input
  (``attrib.text.erasure``: zero weight, the softmax renormalised); a ``[PAD]`` or
  ``[MASK]`` embedding in its place would still be attended to, an input the model never saw
  in training, and would measure the reaction to that token as much as the deletion.
- **image**: the shipped ground-truth ViT (``attrib.data.gt_vit``, torchvision's
  ``VisionTransformer``, patch 8 with a convolutional stem) on ``N`` ground-truth images of
  its held-out seed (1; training used seeds 100 and up). Patch relevance is the attribution
  summed over the channels and the 8 x 8 pixels of each of the 16 patches (attention
  rollout's scores are per patch already). A deleted patch takes **each image's mean value**
  (one grey per image): a constant carries no shape, which is what decides the class,
  whereas a blurred copy keeps the object's coarse outline.

Both delete the most relevant features first, ``0, 10, ..., 100%`` of them (of the content
tokens; of the 16 patches), score the softmax probability of the class the model predicts on
the clean input, and report the area under that curve (trapezoids over the fraction
deleted), mean +- standard error (``std / sqrt(N)``) over the inputs.

Methods: integrated gradients (32 Gauss-Legendre steps; the ``[PAD]`` baseline for text,
special tokens kept; black for images), gradient x input, attention rollout (Abnar and
Zuidema 2020, ``r = 1/2``; text: ``attrib.text.attention_rollout``; ViT:
``attrib.methods.attention.patch_rollout``), random (seeded), and AttnLRP and CP-LRP
(``LRP(model, composite="attnlrp")`` / ``"cp-lrp"``; text ``explain_tokens(clf, texts,
"lrp", composite=...)``).

``BENCH_FAITHFULNESS_N`` (default 250) sets ``N`` for both parts; ``make bench
BENCH_ARGS="--only faithfulness-transformers"`` runs it and prints a markdown table for the
README.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.target import select_output
from benchmarks.cases import Report, ReportContext, ReportResult, register_report

N = int(os.environ.get("BENCH_FAITHFULNESS_N", "250"))
MAX_TOKENS = 64
STEPS = 32
FRACTIONS = tuple(k / 10 for k in range(11))
SEED = 0
METHODS = ("AttnLRP", "CP-LRP", "integrated gradients", "gradient x input", "attention rollout")
METHODS += ("random",)
LRP_COMPOSITES = {"AttnLRP": "attnlrp", "CP-LRP": "cp-lrp"}


def mean_and_error(areas: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error ``std / sqrt(N)`` (``N - 1`` in the variance)."""
    values = areas.double()
    n = values.numel()
    error = float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    return float(values.mean()), error


def counts_for(n_features: int) -> torch.Tensor:
    """How many features are deleted at each of ``FRACTIONS`` (rounded, 0 first)."""
    # rounding to 9 places first keeps 0.3 * 10 = 3.0000000000000004 from counting as more
    return torch.tensor([round(round(f * n_features, 9)) for f in FRACTIONS], dtype=torch.long)


# ---- text -------------------------------------------------------------------------------


class DeletedTokens(nn.Module):
    """The classifier on ``x = token id + 1``, one text per row: a 0 is a deleted token,
    which is left out of the attention mask (and so of every layer and of the pooling)."""

    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        present = x > 0
        ids = torch.where(present, x.long() - 1, self.pad_id)
        return select_output(self.model(input_ids=ids, attention_mask=present.long()))


def token_relevance(clf: Any, enc: Any, target: torch.Tensor) -> dict[str, Any]:
    """Each method's token scores ``(N, L)``."""
    from attrib.text import attention_rollout, explain_tokens

    found: dict[str, Any] = {}
    for name, composite in LRP_COMPOSITES.items():
        got = explain_tokens(clf, enc, "lrp", composite=composite, target=target)
        found[name] = got.scores().scores
    ig = explain_tokens(
        clf, enc, "integrated_gradients", steps=STEPS, target=target, baseline="pad"
    )
    found["integrated gradients"] = ig.scores().scores
    found["gradient x input"] = explain_tokens(clf, enc, "gradient_x_input", target=target)
    found["gradient x input"] = found["gradient x input"].scores().scores
    found["attention rollout"] = attention_rollout(clf, enc).scores
    g = torch.Generator().manual_seed(SEED)
    found["random"] = torch.rand(enc.input_ids.shape, generator=g, dtype=torch.float64)
    return found


def token_deletion_areas(clf: Any, enc: Any, relevance: torch.Tensor, target: torch.Tensor):
    """Area under the deletion curve per text (special tokens kept, ranked last)."""
    from attrib.metrics.faithfulness import perturbation_curve

    model = DeletedTokens(clf.model, clf.pad_id).eval()
    areas = torch.zeros(len(enc), dtype=torch.float64)
    for group in enc.groups():
        ids = enc.ids_of(group)
        length = ids.shape[1]
        special = enc.special[group][:, :length]
        scores = relevance[group][:, :length].double()
        # special tokens below every content token: the counts never reach them
        lowest = scores.masked_fill(special, float("inf")).amin(1, keepdim=True) - 1.0
        scores = torch.where(special, lowest, scores)
        content = int((~special[0]).sum())
        curve = perturbation_curve(
            model,
            (ids + 1).double(),
            scores,
            target[group],
            kind="deletion",
            counts=counts_for(content),
            substrate=0.0,
            score="probability",
            batch_size=256,
        )
        areas[group] = curve.area()
    return areas


def run_text(ctx: ReportContext) -> dict[str, Any]:
    from attrib.text import load_minilm_sentiment
    from attrib.text.datasets import held_out_texts

    ctx.progress("loading all-MiniLM-L6-v2 and the sentiment head")
    clf = load_minilm_sentiment()
    clf.model.to(ctx.device)
    texts = held_out_texts(clf, N, MAX_TOKENS)
    enc = clf.encode(texts)
    target = clf.logits(enc).argmax(1).cpu()
    ctx.progress(f"token relevance of {len(texts)} snippets")
    relevance = token_relevance(clf, enc, target)
    out: dict[str, Any] = {"n": len(texts), "rows": {}}
    for name in METHODS:
        found = relevance[name]
        ctx.progress(f"token deletion: {name}")
        out["rows"][name] = mean_and_error(token_deletion_areas(clf, enc, found.cpu(), target))
    return out


# ---- image ------------------------------------------------------------------------------


def patch_relevance(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
    """Each method's relevance per pixel location ``(N, H, W)`` (channels summed)."""
    from attrib import GradientXInput, IntegratedGradients
    from attrib.methods.attention import patch_rollout
    from attrib.methods.propagation import LRP

    found: dict[str, Any] = {}
    for name, composite in LRP_COMPOSITES.items():
        found[name] = LRP(model, composite=composite)(x, target=target).values.sum(1)
    ig = IntegratedGradients(model, steps=STEPS, batch_size=256)(x, target=target)
    found["integrated gradients"] = ig.values.sum(1)
    found["gradient x input"] = GradientXInput(model)(x, target=target).values.sum(1)
    rolled = patch_rollout(model, x)
    side = x.shape[-1] // rolled.shape[-1]
    found["attention rollout"] = rolled.repeat_interleave(side, 1).repeat_interleave(side, 2)
    g = torch.Generator().manual_seed(SEED)
    found["random"] = torch.rand(x.shape[0], *x.shape[2:], generator=g, dtype=torch.float64)
    return found


def run_image(ctx: ReportContext) -> dict[str, Any]:
    from attrib.data.ground_truth import make_ground_truth
    from attrib.data.gt_vit import CONFIG, load_ground_truth_vit, training_record
    from attrib.metrics.faithfulness import perturbation_curve

    model = load_ground_truth_vit().to(ctx.device)
    x = make_ground_truth(N, seed=training_record()["test"]["seed"]).images.to(ctx.device)
    with torch.no_grad():
        target = model(x).argmax(1)
    ctx.progress(f"patch relevance of {N} images")
    relevance = patch_relevance(model, x, target)
    patch = int(CONFIG["patch_size"])
    patches = (x.shape[-2] // patch) * (x.shape[-1] // patch)
    out: dict[str, Any] = {"n": N, "rows": {}, "patches": patches}
    for name in METHODS:
        found = relevance[name]
        ctx.progress(f"patch deletion: {name}")
        curve = perturbation_curve(
            model,
            x,
            found.to(x.device),
            target,
            kind="deletion",
            counts=counts_for(patches),
            patch=patch,
            substrate="mean",
            score="probability",
            batch_size=512,
        )
        out["rows"][name] = mean_and_error(curve.area())
    return out


# ---- the report -------------------------------------------------------------------------


def cell(found: Any) -> str:
    mean, error = found
    return f"{mean:.3f} ± {error:.3f}"


def markdown(text: dict[str, Any], image: dict[str, Any]) -> list[str]:
    head = (
        f"| method | token deletion AUC, MiniLM sentiment (N={text.get('n', '-')}) "
        f"| patch deletion AUC, gt ViT (N={image.get('n', '-')}) |"
    )
    lines = [head, "| --- | --- | --- |"]
    for name in METHODS:
        left = cell(text["rows"][name]) if "rows" in text else text.get("skipped", "-")
        right = cell(image["rows"][name]) if "rows" in image else image.get("skipped", "-")
        lines.append(f"| {name} | {left} | {right} |")
    return lines


def run_faithfulness(ctx: ReportContext) -> ReportResult:
    title = f"== faithfulness-transformers: deletion AUC (lower is better), N={N} =="
    torch.manual_seed(SEED)
    parts: dict[str, dict[str, Any]] = {}
    runners: dict[str, Callable[[ReportContext], dict[str, Any]]] = {
        "text": run_text,
        "image": run_image,
    }
    for part, run in runners.items():
        try:
            parts[part] = run(ctx)
        except ImportError as error:  # transformers or the encoder package is missing
            parts[part] = {"skipped": f"skipped ({error})"}
    notes = [
        "  most relevant first, 0..100% in steps of 10%; score: softmax probability of the "
        "predicted class; mean ± standard error over inputs",
        "  text: deleted tokens leave the attention mask ([CLS]/[SEP] kept); image: deleted "
        "ViT patches take the image's mean value",
    ]
    lines = [title, *markdown(parts["text"], parts["image"]), *notes]
    return ReportResult("faithfulness-transformers", lines, {"n": N, **parts})


register_report(Report("faithfulness-transformers", family="faithfulness", run=run_faithfulness))

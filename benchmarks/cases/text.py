"""Text (issue 7): integrated gradients on the real MiniLM sentiment model, as a report.

8 sentences of one token length (14 tokens with ``[CLS]`` and ``[SEP]``: one group, so no
padding anywhere) x 32 Gauss-Legendre steps from the ``[PAD]`` baseline (special tokens
kept), on all-MiniLM-L6-v2 with the shipped sentiment head (``load_minilm_sentiment``).

- **ours**: ``explain_tokens(clf, texts, "integrated_gradients", steps=32, baseline="pad")``,
  the user's call: encoding, baseline, 256 gradient rows (default ``batch_size``) and the two
  forwards per sentence (input and baseline) for ``delta``.
- **captum**: ``LayerIntegratedGradients`` on the word-embedding layer, the same baseline ids
  (``[PAD]`` at ordinary positions), ``n_steps=32``, ``method="gausslegendre"``, with its
  default ``internal_batch_size=None`` (all 256 rows in one forward) and, as
  ``captum ibs=R``, at the best rows per forward of the limit curve. It interpolates the
  word embeddings only and the model adds position and token-type embeddings after them, as
  ours does with ``inputs_embeds``: the same path, so the values agree to float rounding.
- **limit**: 256 rows of bare forward and backward to the input embeddings (parameters
  frozen) in passes of the cheapest ``r`` rows, timed in the same rounds as ours and Captum.
  ``r`` comes from the curve ``cost(r)``, the median time of one such pass on ``r`` rows (the
  sentences tiled) divided by ``r``, for ``r`` in 8 .. 256, timed first; **curve** is its
  estimate ``256 x min_r cost(r)`` (timed earlier: see ``benchmarks/README.md``). Target: ours
  within 1.2x of the limit and no slower than Captum.
- memory: peak extra memory of one call; **bare** is one bare pass on the 8 sentences.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from attrib.core.errors import SettingError
from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.limits import frozen
from benchmarks.memory import peak_memory_mib
from benchmarks.report import text_table
from benchmarks.timing import interleaved, median_ms

SENTENCES = (
    "A gripping, beautifully acted drama that never lets you go.",
    "Tedious, overlong and far less clever than it thinks",
    "The cast is wonderful and the script is sharp and funny.",
    "The plot makes no sense and the jokes fall completely flat.",
    "One of the warmest and most charming comedies this year.",
    "Even the great actors cannot save this clumsy, boring story.",
    "An intelligent thriller that keeps you guessing until the very end.",
    "A slow and joyless mess that goes nowhere at all.",
)
STEPS = 32
ROWS = (8, 16, 32, 64, 128, 256)
REPEATS = 5
CURVE_REPEATS = 5
LIMIT_TARGET = 1.2


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _bare_pass(
    embedding_model: torch.nn.Module, embeds: torch.Tensor, target: torch.Tensor, rows: int
) -> Callable[[], torch.Tensor]:
    """One forward and backward to the input embeddings on ``rows`` rows (sentences tiled)."""
    reps = -(-rows // embeds.shape[0])
    x = embeds.repeat(reps, 1, 1)[:rows].contiguous()
    t = target.repeat(reps)[:rows]

    def run() -> torch.Tensor:
        with torch.enable_grad():
            tracked = x.detach().requires_grad_(True)
            score = embedding_model(tracked).gather(1, t[:, None]).sum()
            (grad,) = torch.autograd.grad(score, tracked)
        return grad

    return run


def run_text_ig(ctx: ReportContext) -> ReportResult:
    title = f"== text-ig: IntegratedGradients, MiniLM sentiment, 8 sentences x {STEPS} steps =="
    try:
        from attrib.text import explain_tokens, load_minilm_sentiment
        from attrib.text.baselines import baseline_embeddings, replacement_embedding

        ctx.progress("loading all-MiniLM-L6-v2 and the sentiment head")
        clf = load_minilm_sentiment()
    except (ImportError, SettingError) as error:  # transformers or the encoder is missing
        return ReportResult("text-ig", [title, f"  skipped: {error}"], {"skipped": str(error)})
    from captum.attr import LayerIntegratedGradients

    warnings.filterwarnings("ignore", message=".*required_grads has been set automatically.*")
    device = ctx.device
    clf.model.to(device)
    texts = list(SENTENCES)
    enc = clf.encode(texts)
    if len(enc.groups()) != 1:
        raise RuntimeError(f"the sentences must have one token length, got {enc.lengths}")
    ids = enc.input_ids.to(device)
    special = enc.special.to(device)
    embeds = clf.embed(ids)
    base = baseline_embeddings(embeds[0], special[0], replacement_embedding(clf, "pad"))
    base_ids = torch.where(special, ids, torch.full_like(ids, clf.tokenizer.pad_token_id))
    with torch.no_grad():
        target = clf.embedding_model(embeds).argmax(1)
    model = clf.model
    layer = clf.embedding_layer

    def ours() -> torch.Tensor:
        got = explain_tokens(
            clf, texts, "integrated_gradients", steps=STEPS, target=target, baseline="pad"
        )
        return got.values

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids=input_ids).logits

    lig = LayerIntegratedGradients(forward, layer)

    def captum(internal_batch_size: int | None) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            return lig.attribute(
                ids,
                baselines=base_ids,
                target=target,
                n_steps=STEPS,
                method="gausslegendre",
                internal_batch_size=internal_batch_size,
            )

        return run

    # the baseline explain_tokens builds is the one Captum's baseline ids look up
    base_check = float((clf.embed(base_ids) - base).abs().max())
    total = len(texts) * STEPS

    # 1. the limit curve: bare fwd+bwd to the embeddings at each r, interleaved
    ctx.progress("limit curve (fwd+bwd to the input embeddings)")
    bare = {r: _bare_pass(clf.embedding_model, embeds, target, r) for r in ROWS}
    with frozen(model):
        curve_s = interleaved(
            {f"r{r}": bare[r] for r in ROWS},
            {f"r{r}": max(3, CURVE_REPEATS * 8 // r) for r in ROWS},
            device,
            progress=ctx.progress,
        )
    per_row = {r: median_ms(curve_s[f"r{r}"], r) for r in ROWS}
    best_r = min((r for r in ROWS if r <= total), key=lambda r: per_row[r])
    curve_limit = total * per_row[best_r]

    # 2. ours, Captum (default and best), the limit's schedule: interleaved
    ibs = best_r - best_r % len(texts) or len(texts)
    schedule_passes = [
        _bare_pass(clf.embedding_model, embeds, target, min(best_r, total - s))
        for s in range(0, total, best_r)
    ]

    def schedule() -> None:
        with frozen(model):
            for fn in schedule_passes:
                fn()

    fns: dict[str, Callable[[], Any]] = {
        "ours": ours,
        "captum": captum(None),
        "captum-best": captum(ibs),
        "limit": schedule,
    }
    ctx.progress("agreement")
    ours_values = ours()
    diffs = {}
    for name in ("captum", "captum-best"):
        theirs = fns[name]().to(ours_values.dtype)
        diffs[name] = float((ours_values - theirs).abs().max() / theirs.abs().max())
    ctx.progress("ours, captum, limit (interleaved)")
    samples = interleaved(fns, REPEATS, device, progress=ctx.progress)
    ms = {name: median_ms(s) for name, s in samples.items()}
    limit = ms["limit"]
    ctx.progress("peak memory")
    mib = {name: peak_memory_mib(fns[name], device) for name in ("ours", "captum", "captum-best")}
    with frozen(model):
        bare_mib = peak_memory_mib(_bare_pass(clf.embedding_model, embeds, target, 8), device)

    curve_header = ["rows per forward", *map(str, ROWS)]
    curve_row = ["fwd+bwd to embeddings ms/row", *(_cell(per_row[r], 2) for r in ROWS)]
    header = ["method", "peer", "ours ms", "peer ms", "limit ms", "ours/limit", "curve ms"]
    header += ["ours/curve", "ours/peer", "ours MiB", "peer MiB", "bare MiB", "max rel diff"]
    rows = []
    for name, label in (("captum", "captum lig"), ("captum-best", f"captum lig ibs={ibs}")):
        rows.append(
            [
                "text-ig",
                label,
                _cell(ms["ours"]),
                _cell(ms[name]),
                _cell(limit),
                _cell(ms["ours"] / limit, 2),
                _cell(curve_limit),
                _cell(ms["ours"] / curve_limit, 2),
                _cell(ms["ours"] / ms[name], 2),
                _cell(mib["ours"]),
                _cell(mib[name]),
                _cell(bare_mib),
                f"{diffs[name]:.1e}",
            ]
        )
    length = int(enc.lengths[0])
    notes = [
        f"  limit: {total} rows in passes of r={best_r} (curve: {per_row[best_r]:.2f} ms/row); "
        f"target ours/limit <= {LIMIT_TARGET:.2f}: "
        + ("met" if ms["ours"] / limit <= LIMIT_TARGET else "NOT met")
        + "; ours/captum <= 1: "
        + ("met" if ms["ours"] <= min(ms["captum"], ms["captum-best"]) else "NOT met"),
        f"  {len(texts)} sentences of {length} tokens, {STEPS} Gauss-Legendre steps, [PAD] "
        f"baseline (ours and Captum's baseline embeddings differ by {base_check:.1e}); "
        f"torch threads {torch.get_num_threads()}, device {device}",
    ]
    lines = [title, *text_table(curve_header, [curve_row]), *text_table(header, rows), *notes]
    data = {
        "sentences": texts,
        "tokens": length,
        "steps": STEPS,
        "ms_per_row": {str(r): v for r, v in per_row.items()},
        "curve_samples_s": {str(r): curve_s[f"r{r}"] for r in ROWS},
        "best_rows": best_r,
        "limit_ms": limit,
        "curve_limit_ms": curve_limit,
        "ms": ms,
        "samples_s": samples,
        "mib": mib,
        "bare_mib": bare_mib,
        "max_rel_diff": diffs,
        "captum_best_internal_batch_size": ibs,
    }
    return ReportResult("text-ig", lines, data)


register_report(Report("text-ig", family="text", run=run_text_ig))

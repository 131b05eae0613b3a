"""AttnLRP (issue 21): LRP through transformer blocks against the bare gradient pass.

``LRP(model, composite="attnlrp")`` runs the forward in the propagation mode (attention
re-expressed as its math, softmax and layer norm with AttnLRP's rules) and one backward to
the input embeddings; with no stabiliser (the default) the backward is a modified gradient
(``Composite.in_gradient_form``). Two setups:

- **minilm**: the shipped sentiment classifier (all-MiniLM-L6-v2, 6 layers of 384, and the
  trained head), 8 snippets of 64 tokens cut from movie reviews, at the input embeddings
  (``classifier.embedding_model``), the predicted class;
- **bert-base**: ``BertForSequenceClassification`` from a BERT-base config (12 layers, hidden
  768, 12 heads, MLP 3072, SDPA attention, random weights), a batch of 4 x 128 random
  embeddings, class 1.

- **ours**: ``LRP(model, composite=AttnLRP())(embeds, target=t)``, the user's call;
- **bare**: one forward and one backward to the same embeddings for the same target, the
  parameters frozen (what any gradient method pays), timed in the same interleaved rounds.

Target: ours/bare <= 1.5. ``conservation`` is the median over rows of ``|sum R - f_c(x)| /
|f_c(x)|`` of ours (biases, position embeddings and the softmax rule absorb relevance).
``BENCH_ATTNLRP_TINY=1`` runs 2-layer, 64-wide models on 16 tokens: a check that the case
runs, not a measurement.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.methods.propagation import LRP, AttnLRP
from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.limits import frozen
from benchmarks.report import text_table
from benchmarks.timing import interleaved, median_ms

TINY = bool(os.environ.get("BENCH_ATTNLRP_TINY"))
REPEATS = int(os.environ.get("BENCH_ATTNLRP_REPEATS", "2" if TINY else "7"))
TARGET = 1.5
REVIEWS = (
    "A gripping, beautifully acted drama that never lets you go. The cast is wonderful and "
    "the script is sharp and funny, one of the warmest and most charming comedies this year. "
    "Tedious, overlong and far less clever than it thinks; the plot makes no sense and the "
    "jokes fall completely flat. Even the great actors cannot save this clumsy, boring story. "
    "An intelligent thriller that keeps you guessing until the very end, although a slow and "
    "joyless middle goes nowhere at all. "
)


class _Logits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=embeds).logits


def _minilm(device: torch.device) -> tuple[nn.Module, torch.Tensor, str]:
    from attrib.text import load_minilm_sentiment

    clf = load_minilm_sentiment()
    clf.model.to(device)
    snippets, tokens = (2, 16) if TINY else (8, 64)
    words = clf.tokenizer(REVIEWS * 8, add_special_tokens=False)["input_ids"]
    inner = tokens - 2
    cls, sep = clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id
    rows = [[cls, *words[i * inner : (i + 1) * inner], sep] for i in range(snippets)]
    embeds = clf.embed(torch.tensor(rows, device=device))
    return clf.embedding_model, embeds, f"MiniLM sentiment, {snippets} snippets x {tokens} tokens"


def _bert_base(device: torch.device) -> tuple[nn.Module, torch.Tensor, str]:
    from transformers import BertConfig, BertForSequenceClassification

    if TINY:
        size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
        size.update(intermediate_size=256)
        batch, tokens = 2, 16
    else:
        size = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
        size.update(intermediate_size=3072)
        batch, tokens = 4, 128
    torch.manual_seed(0)
    config = BertConfig(attn_implementation="sdpa", **size)
    model = _Logits(BertForSequenceClassification(config)).eval().to(device)
    embeds = torch.randn(batch, tokens, size["hidden_size"], device=device)
    label = f"BERT-{'tiny' if TINY else 'base'} config, {batch} x {tokens} tokens"
    return model, embeds, label


def _bare(model: nn.Module, embeds: torch.Tensor, target: torch.Tensor) -> Callable[[], Any]:
    def run() -> torch.Tensor:
        with frozen(model), torch.enable_grad():
            tracked = embeds.detach().requires_grad_(True)
            score = model(tracked).gather(1, target[:, None]).sum()
            (grad,) = torch.autograd.grad(score, tracked)
        return grad

    return run


def _measure(
    name: str, setup: Callable[[torch.device], tuple[nn.Module, torch.Tensor, str]], ctx: Any
) -> tuple[list[str], dict[str, Any]]:
    ctx.progress(f"{name}: building")
    model, embeds, label = setup(ctx.device)
    with torch.no_grad():
        target = (
            model(embeds).argmax(1)
            if name == "minilm"
            else torch.ones_like(embeds[:, 0, 0], dtype=torch.long)
        )
    method = LRP(model, composite=AttnLRP())
    result = method(embeds, target=target)
    scores = result.output.gather(1, target[:, None])[:, 0].to(torch.float64)
    conservation = float((result.delta.abs() / scores.abs()).median())

    def ours() -> torch.Tensor:
        return method(embeds, target=target).values

    ctx.progress(f"{name}: ours and the bare pass (interleaved)")
    samples = interleaved(
        {"ours": ours, "bare": _bare(model, embeds, target)}, REPEATS, ctx.device,
        progress=ctx.progress,
    )  # fmt: skip
    ms = {k: median_ms(v) for k, v in samples.items()}
    ratio = ms["ours"] / ms["bare"]
    row = [
        name,
        label,
        f"{ms['ours']:.1f}",
        f"{ms['bare']:.1f}",
        f"{ratio:.2f}",
        "met" if ratio <= TARGET else "NOT met",
        f"{conservation:.1e}",
    ]
    data = {"label": label, "ms": ms, "samples_s": samples, "ratio": ratio}
    data["relative_conservation_error"] = conservation
    return row, data


def run_attnlrp(ctx: ReportContext) -> ReportResult:
    title = "== attnlrp: LRP(composite='attnlrp') vs one forward + backward to the embeddings =="
    rows, data = [], {}
    for name, setup in (("minilm", _minilm), ("bert-base", _bert_base)):
        try:
            row, found = _measure(name, setup, ctx)
        except (ImportError, SettingError) as error:  # transformers or the encoder missing
            rows.append([name, f"skipped: {error}", "-", "-", "-", "-", "-"])
            continue
        rows.append(row)
        data[name] = found
    header = ["setup", "model and inputs", "ours ms", "bare ms", "ours/bare"]
    header += [f"<= {TARGET}", "conservation"]
    notes = [
        f"  medians of {REPEATS} interleaved rounds; torch threads {torch.get_num_threads()}, "
        f"device {ctx.device}" + ("; TINY sizes (a check, not a measurement)" if TINY else "")
    ]
    return ReportResult("attnlrp", [title, *text_table(header, rows), *notes], data)


register_report(Report("attnlrp", family="propagation", run=run_attnlrp))

"""Generation (issue 21): gradient x input over 64 generated tokens of a GPT-2-small-sized LM.

``GPT2LMHeadModel`` from ``GPT2Config()`` (12 layers, 12 heads, 768 wide, 50257 tokens: GPT-2
small's sizes) with RANDOM weights (seeded; nothing is downloaded): the time of a pass does
not depend on the weights, so random ones time the same. The tokenizer is a word-level one
over ``t0 .. t50256`` built in code; the prompt is 32 random tokens and the forced
continuation 64 more (teacher forcing, so every step is explained whatever the model would
have written).

- **ours**: ``explain_generation(model, tokenizer, prompt, continuation=...,
  method="gradient_x_input")``, the user's call (default ``batch_size``).
- **bare**: the passes that call needs, bare: one forward with the embeddings tracked over
  the 95 input tokens, and 64 vector-Jacobian products of the steps' log-probabilities in
  batched backwards (``is_grads_batched``) of the same number of steps as ours' default
  chunk. Target: ours / bare <= 1.2.
- **loop**: the literal per-step loop (what a generation explainer without shared forwards
  does): for each step, a forward over its prefix and a backward. Target: loop / ours >= 3.
- memory: peak extra memory of one call of each.

``BENCH_GENERATION_TINY=1`` runs a 2-layer, 64-wide model with 4 + 8 tokens: a check that
the case runs, not a figure.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.limits import frozen
from benchmarks.memory import peak_memory_mib
from benchmarks.report import text_table
from benchmarks.timing import interleaved, median_ms

REPEATS = int(os.environ.get("BENCH_GENERATION_REPEATS", "5"))
BARE_TARGET = 1.2
LOOP_TARGET = 3.0


def _sizes() -> dict[str, int]:
    if os.environ.get("BENCH_GENERATION_TINY"):
        return {"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab": 512, "prompt": 4, "new": 8}
    return {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab": 50257, "prompt": 32, "new": 64}


def _tokenizer(vocab: int) -> Any:
    import tokenizers
    import transformers

    words = {f"t{i}": i for i in range(vocab)}
    inner = tokenizers.Tokenizer(tokenizers.models.WordLevel(words, unk_token="t0"))
    inner.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="t0")


def run_generation(ctx: ReportContext) -> ReportResult:
    size = _sizes()
    title = (
        f"== generation: gradient x input, {size['new']} generated tokens after "
        f"{size['prompt']}, GPT-2-small-sized LM ({size['n_layer']} layers, width "
        f"{size['n_embd']}, random weights) =="
    )
    try:
        import transformers

        from attrib.core.batching import default_batch_size
        from attrib.text import explain_generation
    except ImportError as error:
        return ReportResult("generation", [title, f"  skipped: {error}"], {"skipped": str(error)})
    warnings.filterwarnings("ignore", message=".*attention mask.*")
    device = ctx.device
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=size["vocab"],
        n_layer=size["n_layer"],
        n_head=size["n_head"],
        n_embd=size["n_embd"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    ctx.progress("building the model")
    model = transformers.GPT2LMHeadModel(config).eval().to(device)
    tokenizer = _tokenizer(size["vocab"])
    ids = torch.randint(1, size["vocab"], (size["prompt"] + size["new"],)).tolist()
    prompt = " ".join(f"t{i}" for i in ids[: size["prompt"]])
    continuation = " " + " ".join(f"t{i}" for i in ids[size["prompt"] :])
    start, length, steps = size["prompt"], len(ids), size["new"]
    layer = model.get_input_embeddings()
    with torch.no_grad():
        embeds = layer(torch.tensor([ids], device=device))[0]
    targets = torch.tensor(ids[start:], device=device)
    positions = torch.arange(start - 1, length - 1, device=device)
    chunk = default_batch_size(embeds[None], steps)

    def ours() -> torch.Tensor:
        return explain_generation(
            model, tokenizer, prompt, continuation=continuation, method="gradient_x_input"
        ).matrix

    def bare() -> torch.Tensor:
        with torch.enable_grad():
            x = embeds[None, :-1].detach().clone().requires_grad_(True)
            logp = torch.log_softmax(model(inputs_embeds=x, use_cache=False).logits[0], -1)
            scores = logp[positions, targets]
            eye = torch.eye(steps, dtype=scores.dtype, device=device)
            out = []
            for a in range(0, steps, chunk):
                (g,) = torch.autograd.grad(
                    scores, x, eye[a : a + chunk], retain_graph=True, is_grads_batched=True
                )
                out.append((g[:, 0] * embeds[None, :-1]).sum(-1))
        return torch.cat(out)

    def loop() -> torch.Tensor:
        rows = torch.zeros(steps, length, device=device)
        for s, p in enumerate(range(start, length)):
            with torch.enable_grad():
                x = embeds[None, :p].detach().clone().requires_grad_(True)
                logits = model(inputs_embeds=x, use_cache=False).logits[0, -1]
                score = torch.log_softmax(logits, -1)[ids[p]]
                (g,) = torch.autograd.grad(score, x)
            rows[s, :p] = (g[0] * embeds[:p]).sum(-1)
        return rows

    ctx.progress("agreement")
    with frozen(model):
        reference = loop()
    got = ours().to(reference)
    diff = float((got.nan_to_num() - reference).abs().max() / reference.abs().max())

    fns: dict[str, Callable[[], Any]] = {"ours": ours}
    fns["bare"] = lambda: _frozen_call(model, bare)
    fns["loop"] = lambda: _frozen_call(model, loop)
    ctx.progress("ours, bare passes, per-step loop (interleaved)")
    samples = interleaved(fns, REPEATS, device, progress=ctx.progress)
    ms = {name: median_ms(s) for name, s in samples.items()}
    ctx.progress("peak memory")
    mib = {name: peak_memory_mib(fn, device) for name, fn in fns.items()}
    header = ["case", "ours ms", "bare ms", "loop ms", "ours/bare", "loop/ours"]
    header += ["ours MiB", "bare MiB", "loop MiB", "max rel diff"]
    row = [
        "generation gxi",
        f"{ms['ours']:.1f}",
        f"{ms['bare']:.1f}",
        f"{ms['loop']:.1f}",
        f"{ms['ours'] / ms['bare']:.2f}",
        f"{ms['loop'] / ms['ours']:.2f}",
        f"{mib['ours']:.1f}",
        f"{mib['bare']:.1f}",
        f"{mib['loop']:.1f}",
        f"{diff:.1e}",
    ]
    met_bare = ms["ours"] / ms["bare"] <= BARE_TARGET
    met_loop = ms["loop"] / ms["ours"] >= LOOP_TARGET
    notes = [
        f"  targets: ours/bare <= {BARE_TARGET}: {'met' if met_bare else 'NOT met'}; "
        f"loop/ours >= {LOOP_TARGET}: {'met' if met_loop else 'NOT met'}",
        f"  {length} tokens, {steps} steps in backwards of {chunk} steps; random weights "
        f"(timing only); torch threads {torch.get_num_threads()}, device {device}",
    ]
    lines = [title, *text_table(header, [row]), *notes]
    data = {
        "sizes": size,
        "chunk": chunk,
        "ms": ms,
        "samples_s": samples,
        "mib": mib,
        "max_rel_diff": diff,
    }
    return ReportResult("generation", lines, data)


def _frozen_call(model: torch.nn.Module, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    with frozen(model):
        return fn()


register_report(Report("generation", family="text", run=run_generation))

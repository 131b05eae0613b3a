"""Generation (issue 21): gradient x input over 64 generated tokens of a GPT-2-small-sized LM.

``GPT2LMHeadModel`` from ``GPT2Config()`` (12 layers, 12 heads, 768 wide, 50257 tokens: GPT-2
small's sizes) with RANDOM weights (seeded; nothing is downloaded): the time of a pass does
not depend on the weights, so random ones time the same. The tokenizer is a word-level one
over ``t0 .. t50256`` built in code; the prompt is 32 random tokens and the forced
continuation 64 more (teacher forcing, so every step is explained whatever the model would
have written).

- **ours**: ``explain_generation(model, tokenizer, prompt, continuation=...,
  method="gradient_x_input")``, the user's call (default ``batch_size``).
- **bare**: the passes that call needs, bare (its algorithm, ``_shared_forward_rows``):
  the steps in chunks of ours' default size (16); per group of chunks that share a forward
  (``_extends``: here each chunk has its own, over the 48, 64, 80, 96 positions its steps
  need), a forward of the body (``model.transformer``) with the embeddings tracked, the LM
  head at the chunk's 16 positions only, one backward through the head to the last hidden
  state, and the 16 vector-Jacobian products through the body in one batched backward
  (``is_grads_batched``). Target: ours / bare <= 1.2.
- **loop**: the literal per-step loop (what a generation explainer without shared forwards
  does, e.g. inseq): for each step, a forward of the full model over its prefix and the
  gradient of that step's log-probability with respect to the prefix's embeddings only.
  Target: loop / ours >= 3.
- memory: peak extra memory of one call of each.
- **long**: a second row, GPT-2-small sizes with ``n_positions=2048``: the last 16 of 2,048
  tokens explained with gradient x input at the default ``batch_size`` (seconds of one call
  and its peak memory; no loop).

Multiply-accumulates (``torch.utils.flop_counter``, counted at 1 and 2 layers and 1,024 and
2,048 words and extrapolated linearly to 12 layers and 50,257 words): loop 1,004 G (314 G of
them the LM head: full-vocabulary logits at every prefix position, forward and backward);
the previous algorithm (one shared forward, full logits, 64 VJPs through all 95 positions)
763 G (1.32x fewer); ours 415 G (2.42x fewer). The floor for exact per-step gradients is one
VJP per step through the body over its prefix, 85 M MACs per position and step, times
``sum_s p_s = 4,064`` positions: 345 G, so at equal efficiency the loop can be at most
1,004 / 353 = 2.8x slower than any algorithm that computes the same gradients; 3x needs the
batched products to run faster per MAC than the loop's small ones.

``BENCH_GENERATION_TINY=1`` runs a 2-layer, 64-wide model with 4 + 8 tokens (and the last 4
of 256 for the long row): a check that
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
        return {
            "n_layer": 2,
            "n_head": 2,
            "n_embd": 64,
            "vocab": 512,
            "prompt": 4,
            "new": 8,
            "long": 256,
            "long_new": 4,
        }
    return {
        "n_layer": 12,
        "n_head": 12,
        "n_embd": 768,
        "vocab": 50257,
        "prompt": 32,
        "new": 64,
        "long": 2048,
        "long_new": 16,
    }


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
        from attrib.text.generation import _extends
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
    groups, first = [], 0
    while first < steps:  # the forwards ours shares between chunks, as ours plans them
        stop = _extends([0] * steps, positions.tolist(), first, chunk)
        groups.append((first, stop))
        first = stop

    def ours() -> torch.Tensor:
        return explain_generation(
            model, tokenizer, prompt, continuation=continuation, method="gradient_x_input"
        ).matrix

    def bare() -> torch.Tensor:
        out = []
        for first, stop in groups:
            cut = int(positions[stop - 1]) + 1
            with torch.enable_grad():
                x = embeds[None, :cut].detach().clone().requires_grad_(True)
                hidden = model.transformer(inputs_embeds=x, use_cache=False).last_hidden_state
                for a in range(first, stop, chunk):
                    b = min(a + chunk, stop)
                    picked = hidden[0, positions[a:b]]
                    logp = torch.log_softmax(model.lm_head(picked), -1)
                    scores = logp[torch.arange(b - a), targets[a:b]]
                    (outer,) = torch.autograd.grad(scores.sum(), picked, retain_graph=True)
                    cot = hidden.new_zeros((b - a, *hidden.shape))
                    cot[torch.arange(b - a), 0, positions[a:b]] = outer
                    (g,) = torch.autograd.grad(
                        hidden, x, cot, retain_graph=True, is_grads_batched=True
                    )
                    out.append((g[:, 0] * embeds[None, :cut]).sum(-1))
        return out  # type: ignore[return-value]

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
    ctx.progress("long sequence")
    long = _long_sequence(size, device)
    lines = [title, *text_table(header, [row]), *notes]
    lines += text_table(
        ["long sequence", "tokens", "steps", "seconds", "peak MiB"],
        [
            [
                "gxi, default batch_size",
                str(long["tokens"]),
                str(long["steps"]),
                f"{long['seconds']:.1f}",
                f"{long['mib']:.1f}",
            ]
        ],
    )
    data = {
        "long": long,
        "sizes": size,
        "chunk": chunk,
        "ms": ms,
        "samples_s": samples,
        "mib": mib,
        "max_rel_diff": diff,
    }
    return ReportResult("generation", lines, data)


def _long_sequence(size: dict[str, int], device: torch.device) -> dict[str, float]:
    """One call explaining the last ``long_new`` of ``long`` tokens (the model's whole
    context): seconds and peak memory."""
    import time

    import transformers

    from attrib.text import explain_generation

    torch.manual_seed(1)
    config = transformers.GPT2Config(
        vocab_size=size["vocab"],
        n_layer=size["n_layer"],
        n_head=size["n_head"],
        n_embd=size["n_embd"],
        n_positions=size["long"],
    )
    model = transformers.GPT2LMHeadModel(config).eval().to(device)
    tokenizer = _tokenizer(size["vocab"])
    ids = torch.randint(1, size["vocab"], (size["long"],)).tolist()
    start = size["long"] - size["long_new"]
    prompt = " ".join(f"t{i}" for i in ids[:start])
    continuation = " " + " ".join(f"t{i}" for i in ids[start:])

    def call() -> torch.Tensor:
        return explain_generation(model, tokenizer, prompt, continuation=continuation).matrix

    began = time.perf_counter()
    matrix = call()
    seconds = time.perf_counter() - began
    assert matrix.shape == (size["long_new"], size["long"])
    mib = peak_memory_mib(call, device)
    return {"tokens": size["long"], "steps": size["long_new"], "seconds": seconds, "mib": mib}


def _frozen_call(model: torch.nn.Module, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    with frozen(model):
        return fn()


register_report(Report("generation", family="text", run=run_generation))

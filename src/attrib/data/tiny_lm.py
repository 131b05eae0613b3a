"""A tiny GPT-2-style language model trained on Python's own documentation, shipped.

``load()`` returns ``(model, tokenizer)``: a ``transformers.GPT2LMHeadModel`` (4 layers, 4
heads, width 128, 256 positions) and its byte-level BPE tokenizer, from the files beside this
module (``tiny_lm.pt``, ``tiny_lm_tokenizer.json``), made by ``scripts/train_tiny_lm.py``;
``tiny_lm.json`` records the command, the time and the validation perplexity against a
unigram baseline. Nothing is downloaded: the text is ``pydoc_data.topics``, the help topics
that ship with every CPython (about 0.5 MB of English prose about Python), so the model
writes Python-manual English ("The ``return`` statement ...") rather than random tokens.

The split is fixed: the last tenth (in characters, cut at a line break) of every topic is
held out for validation (``corpus()``), so the held-out text is never trained on and tests
can rebuild it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "EOS",
    "RECORD",
    "TOKENIZER",
    "WEIGHTS",
    "corpus",
    "load",
    "perplexity",
    "training_record",
    "unigram_perplexity",
]

WEIGHTS = Path(__file__).with_name("tiny_lm.pt")
TOKENIZER = Path(__file__).with_name("tiny_lm_tokenizer.json")
RECORD = Path(__file__).with_name("tiny_lm.json")
EOS = "<|endoftext|>"
HELD_OUT = 0.1  # the last tenth of every topic


def corpus() -> tuple[str, str]:
    """``(training text, held-out text)``: the help topics of ``pydoc_data.topics`` (sorted by
    name), each followed by ``EOS``; the last tenth of every topic, from the first line break
    after 90 % of its characters, is held out."""
    from pydoc_data.topics import topics

    train, held = [], []
    for name in sorted(topics):
        text = topics[name].strip()
        cut = text.find("\n", int(len(text) * (1 - HELD_OUT)))
        cut = len(text) if cut < 0 else cut
        train.append(text[:cut].strip())
        if text[cut:].strip():
            held.append(text[cut:].strip())
    return EOS.join(train) + EOS, EOS.join(held) + EOS


def load() -> tuple[Any, Any]:
    """``(model, tokenizer)``: the shipped model in eval mode (float32, CPU) and its tokenizer
    (``transformers.PreTrainedTokenizerFast``, end of text ``<|endoftext|>``)."""
    import transformers

    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZER), eos_token=EOS, bos_token=EOS, unk_token=EOS
    )
    config = transformers.GPT2Config(**training_record()["config"])
    model = transformers.GPT2LMHeadModel(config)
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    model.tie_weights()
    return model.eval(), tokenizer


def training_record() -> dict[str, Any]:
    """What the training script recorded: command, sizes, seconds, validation perplexity."""
    return dict(json.loads(RECORD.read_text()))


def unigram_perplexity(train_ids: Sequence[int], held_ids: Sequence[int], vocab: int) -> float:
    """``exp(-mean_t log q(x_t))`` of the held-out tokens under the training tokens'
    frequencies with add-one smoothing, ``q(v) = (count(v) + 1) / (N + V)``: what a model
    that ignores context can do."""
    counts = Counter(train_ids)
    total = len(train_ids) + vocab
    nll = -sum(math.log((counts[t] + 1) / total) for t in held_ids) / len(held_ids)
    return math.exp(nll)


def perplexity(model: Any, ids: Sequence[int], block: int | None = None) -> float:
    """``exp`` of the mean next-token cross-entropy of ``model`` over ``ids``, cut into
    non-overlapping blocks of ``block`` tokens (default: the model's context)."""
    block = block or int(model.config.n_positions)
    data = torch.tensor(list(ids), dtype=torch.long)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data) - 1, block):
            piece = data[start : start + block + 1]
            if len(piece) < 2:
                break
            logits = model(piece[None, :-1]).logits[0]
            loss = torch.nn.functional.cross_entropy(logits, piece[1:], reduction="sum")
            total += float(loss)
            count += len(piece) - 1
    return math.exp(total / count)

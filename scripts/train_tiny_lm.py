"""Train the tiny language model of ``attrib.data.tiny_lm`` and write its files.

    PYTHONPATH=src .venv/bin/python scripts/train_tiny_lm.py

1. A byte-level BPE tokenizer (``tokenizers``, 1,024 tokens) trained on the training part of
   ``attrib.data.tiny_lm.corpus()`` (CPython's ``pydoc_data.topics``; the last tenth of
   every topic is held out).
2. A ``GPT2LMHeadModel`` (4 layers, 4 heads, width 128, 256 positions, tied embeddings)
   trained with AdamW on random 64-token windows for ``--minutes`` of wall time (one or two
   CPU threads), with a cosine learning-rate decay over that time.
3. Writes ``tiny_lm.pt`` (float16 weights), ``tiny_lm_tokenizer.json`` and ``tiny_lm.json``
   (command, config, seconds, steps, validation perplexity and the unigram baseline's) under
   ``src/attrib/data/``.

The run stops on wall time, so two runs on different machines train for different numbers of
steps; the record says how many.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from attrib.data.tiny_lm import EOS, RECORD, TOKENIZER, WEIGHTS, corpus, unigram_perplexity

CONFIG = {
    "vocab_size": 1024,
    "n_positions": 256,
    "n_embd": 128,
    "n_layer": 4,
    "n_head": 4,
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "bos_token_id": 0,
    "eos_token_id": 0,
}


def train_tokenizer(text: str, vocab: int) -> object:
    import tokenizers

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOS],  # id 0
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # the documents one by one, so no merge crosses a document boundary
    bpe.train_from_iterator([doc for doc in text.split(EOS) if doc], trainer=trainer)
    return bpe


def encode(bpe: object, text: str) -> list[int]:
    eos = bpe.token_to_id(EOS)  # type: ignore[attr-defined]
    ids: list[int] = []
    for doc in text.split(EOS):
        if doc:
            ids += [*bpe.encode(doc).ids, eos]  # type: ignore[attr-defined]
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=7.0, help="wall time of training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--window", type=int, default=64, help="tokens per training row")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--out", type=Path, default=WEIGHTS.parent)
    args = parser.parse_args(argv)

    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.time()
    train_text, held_text = corpus()
    bpe = train_tokenizer(train_text, CONFIG["vocab_size"])
    train_ids = torch.tensor(encode(bpe, train_text))
    held_ids = torch.tensor(encode(bpe, held_text))
    print(f"tokens: {len(train_ids)} training, {len(held_ids)} held out", file=sys.stderr)

    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**CONFIG))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    block = args.window  # shorter than the context: more steps in the time on 2 shared cores
    budget = args.minutes * 60
    train_start = time.time()
    steps = 0
    model.train()
    while (elapsed := time.time() - train_start) < budget:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for group in optimizer.param_groups:
            group["lr"] = max(lr, args.lr * 0.02)
        starts = torch.randint(0, len(train_ids) - block, (args.batch,))
        windows = torch.stack([train_ids[s : s + block] for s in starts.tolist()])
        loss = model(windows, labels=windows).loss  # the model shifts the labels itself
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
        if steps % 100 == 0:
            print(f"step {steps} loss {float(loss):.3f} {elapsed:.0f}s", file=sys.stderr)
    seconds = time.time() - train_start
    model.eval()

    from attrib.data.tiny_lm import perplexity

    validation = perplexity(model, held_ids.tolist())
    unigram = unigram_perplexity(train_ids.tolist(), held_ids.tolist(), CONFIG["vocab_size"])
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    torch.save(state, args.out / WEIGHTS.name)
    bpe.save(str(args.out / TOKENIZER.name))  # type: ignore[attr-defined]
    record = {
        "command": "PYTHONPATH=src python scripts/train_tiny_lm.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "text": "pydoc_data.topics (CPython help topics); the last tenth of each held out",
        "python": sys.version.split()[0],
        "config": CONFIG,
        "tokens": {"train": len(train_ids), "held_out": len(held_ids)},
        "steps": steps,
        "batch": args.batch,
        "window": args.window,
        "lr": args.lr,
        "threads": args.threads,
        "train_seconds": round(seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "weights_dtype": "float16",
        "validation_perplexity": round(validation, 3),
        "unigram_perplexity": round(unigram, 3),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    (args.out / RECORD.name).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

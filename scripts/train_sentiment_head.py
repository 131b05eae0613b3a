"""Train the sentiment head of the demo text model and record its held-out accuracy.

    .venv/bin/python scripts/train_sentiment_head.py

The model is all-MiniLM-L6-v2 (frozen), mean pooling over tokens as sentence-transformers
does, then one linear layer ``384 -> 2`` (class 0 "rotten", class 1 "fresh"). The data are
the Rotten Tomatoes snippets (7403 fresh, 5405 rotten; duplicate texts dropped), split by
movie (``attrib.text.datasets``: about 20% of the movies held out).

Training is L2-regularised logistic regression on the cached sentence features (full-batch
L-BFGS). The regularisation strength is chosen on a validation part of the training movies
(a second hash of the movie name), the head is refitted on all training movies with it, and
the held-out movies are scored once, at the end. The encoder's features are computed once and
cached (``--cache``), so a rerun takes seconds; the first run encodes ~12.7k snippets, a few
minutes on two CPU cores.

Writes ``src/attrib/data/minilm_sentiment_head.pt`` (the head's state dict, ~3 KB) and
``minilm_sentiment_head.json`` (accuracy, split sizes, settings, this command).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attrib.text.datasets import LABELS, rotten_tomatoes
from attrib.text.minilm import HEAD_FILE, INFO_FILE, MAX_LENGTH, encoder_path, load_encoder

DATA_DIR = Path(__file__).resolve().parents[1] / "src" / "attrib" / "data"
STRENGTHS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "attrib" / "minilm_rotten_tomatoes_features.pt"


@torch.no_grad()
def sentence_features(
    texts: list[str], encoder: nn.Module, tokenizer, batch_size: int
) -> torch.Tensor:
    """Mean of the last hidden states over real tokens, ``(N, 384)``; texts cut at 256 tokens."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
    out = torch.empty(len(texts), encoder.config.hidden_size)
    start = time.perf_counter()
    for k in range(0, len(order), batch_size):
        rows = order[k : k + batch_size]
        batch = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )
        hidden = encoder(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out[rows] = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if (k // batch_size) % 20 == 0:
            print(f"  encoded {k + len(rows)}/{len(texts)} ({time.perf_counter() - start:.0f}s)")
    return out


def cached_features(texts: list[str], cache: Path, batch_size: int) -> torch.Tensor:
    key = hashlib.sha256(("\n".join(texts) + f"|{MAX_LENGTH}").encode()).hexdigest()
    if cache.exists():
        stored = torch.load(cache, weights_only=True)
        if stored.get("key") == key:
            print(f"features from cache {cache}")
            return stored["features"]
    encoder, tokenizer = load_encoder()
    torch.manual_seed(0)
    features = sentence_features(texts, encoder, tokenizer, batch_size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, "features": features}, cache)
    return features


def fit_logistic(x: torch.Tensor, y: torch.Tensor, strength: float) -> nn.Linear:
    """Minimise ``mean CE(W x + b, y) + strength/2 ||W||^2`` by full-batch L-BFGS."""
    torch.manual_seed(0)
    head = nn.Linear(x.shape[1], len(LABELS)).double()
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )
    xd = x.double()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(xd), y) + 0.5 * strength * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def accuracy(head: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((head(x.double()).argmax(1) == y).double().mean())


def validation_part(movie: str) -> bool:
    return hashlib.sha1(("validation:" + movie).encode()).digest()[0] < 256 // 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.perf_counter()

    train, test = rotten_tomatoes("train"), rotten_tomatoes("test")
    print(f"train: {len(train)} snippets, held out: {len(test)} snippets")
    features = cached_features(train.texts + test.texts, args.cache, args.batch_size)
    x_train, x_test = features[: len(train)], features[len(train) :]
    y_train, y_test = torch.tensor(train.labels), torch.tensor(test.labels)

    is_val = torch.tensor([validation_part(m) for m in train.movies])
    scores = {}
    for strength in STRENGTHS:
        head = fit_logistic(x_train[~is_val], y_train[~is_val], strength)
        scores[strength] = accuracy(head, x_train[is_val], y_train[is_val])
        print(f"  L2 strength {strength:g}: validation accuracy {scores[strength]:.4f}")
    best = max(STRENGTHS, key=lambda s: (scores[s], s))  # ties: the stronger regularisation
    head = fit_logistic(x_train, y_train, best)
    held_out = accuracy(head, x_test, y_test)
    majority = float((y_test == torch.mode(y_train).values).double().mean())
    print(f"held-out accuracy {held_out:.4f} (majority class {majority:.4f}), L2 {best:g}")

    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.float().contiguous() for k, v in head.state_dict().items()}
    torch.save(state, args.out / HEAD_FILE)
    info = {
        "encoder": "sentence-transformers/all-MiniLM-L6-v2",
        "encoder_folder_name": Path(encoder_path()).name,
        "pooling": "mean over real tokens (special tokens included), no normalisation",
        "labels": list(LABELS),
        "max_length": MAX_LENGTH,
        "train_snippets": len(train),
        "held_out_snippets": len(test),
        "held_out_movies": len(set(test.movies)),
        "split": "by movie: SHA-1(movie)[0] < 51.2 held out (attrib.text.datasets)",
        "l2_strength": best,
        "validation_accuracy": scores,
        "held_out_accuracy": round(held_out, 4),
        "majority_class_accuracy": round(majority, 4),
        "command": "python scripts/train_sentiment_head.py",
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / HEAD_FILE} and {INFO_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

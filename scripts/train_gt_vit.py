"""Train the ground-truth ViT and write src/attrib/data/gt_vit.pt and gt_vit.json.

    .venv/bin/python scripts/train_gt_vit.py

Trains ``attrib.data.gt_vit.GroundTruthViT`` (torchvision's ``VisionTransformer``, patch 8
with a convolutional stem, 4 layers, hidden 64) on the ground-truth images
(``attrib.data.ground_truth``). A transformer has no convolution's bias towards local shapes
and needs more images than the CNN: every epoch draws fresh ones
(``make_ground_truth(n, seed=100 + epoch)``, 5 s for 10,000), so no image is seen twice.
AdamW with a one-cycle schedule; left-right flips on odd epochs (they keep every class). The
held-out accuracy is measured on the CNN's test set (seed 1, never a training seed). A few
minutes on one CPU thread; seeded, so the same machine and library versions give the same
weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attrib.data.ground_truth import make_ground_truth
from attrib.data.gt_vit import RECORD, WEIGHTS, GroundTruthViT

TRAIN_SEED_BASE = 100  # epoch k trains on make_ground_truth(n, seed=100 + k)


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in images.split(500)])
    return float((predicted == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10000, help="fresh images per epoch")
    parser.add_argument("--test", type=int, default=2000, help="held-out images")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--test-seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.time()
    test = make_ground_truth(args.test, seed=args.test_seed)
    model = GroundTruthViT()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * ((args.train + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    order = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        train = make_ground_truth(args.train, seed=TRAIN_SEED_BASE + epoch)
        model.train()
        for batch in torch.randperm(args.train, generator=order).split(args.batch):
            images = train.images[batch]
            if epoch % 2:
                images = images.flip(-1)
            loss = F.cross_entropy(model(images), train.labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f}, "
            f"held-out accuracy {accuracy(model, test.images, test.labels):.4f}, "
            f"{time.time() - start:.0f} s",
            flush=True,
        )
    held_out = accuracy(model, test.images, test.labels)
    seconds = time.time() - start
    model.eval()
    torch.save(model.state_dict(), args.out)
    record = {
        "command": " ".join(
            ["python scripts/train_gt_vit.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "train": {"n_per_epoch": args.train, "seeds": f"{TRAIN_SEED_BASE} + epoch"},
        "test": {"n": args.test, "seed": args.test_seed},
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "threads": args.threads,
        "held_out_accuracy": round(held_out, 4),
        "chance_accuracy": 0.25,
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
    }
    if args.out == WEIGHTS:
        RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the ground-truth CNN and write src/attrib/data/gt_cnn.pt and gt_cnn.json.

    .venv/bin/python scripts/train_ground_truth_cnn.py

Trains ``attrib.data.gt_cnn.GroundTruthCNN`` on freshly generated images
(``attrib.data.ground_truth.make_ground_truth``, training seed 0) with Adam, then reports the
accuracy on a test set drawn with another seed (1). About a minute on two CPU cores; the run
is seeded, so it gives the same weights on the same machine and library versions.
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
from attrib.data.gt_cnn import RECORD, WEIGHTS, GroundTruthCNN


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in images.split(500)])
    return float((predicted == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10000, help="training images")
    parser.add_argument("--test", type=int, default=2000, help="test images")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    start = time.time()
    train = make_ground_truth(args.train, seed=args.train_seed)
    test = make_ground_truth(args.test, seed=args.test_seed)
    model = GroundTruthCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * ((args.train + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    order = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        model.train()
        for batch in torch.randperm(args.train, generator=order).split(args.batch):
            # a left-right flip keeps every class (the triangle's apex stays up) and doubles
            # the variety of positions seen
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
            f"test accuracy {accuracy(model, test.images, test.labels):.4f}",
            flush=True,
        )
    test_accuracy = accuracy(model, test.images, test.labels)
    seconds = time.time() - start
    model.eval()
    torch.save(model.state_dict(), args.out)
    record = {
        "command": "python scripts/train_ground_truth_cnn.py",
        "train": {"n": args.train, "seed": args.train_seed},
        "test": {"n": args.test, "seed": args.test_seed},
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "test_accuracy": round(test_accuracy, 4),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
    }
    if args.out == WEIGHTS:
        RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

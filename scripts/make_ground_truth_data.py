"""Write a ground-truth dataset (images, labels, object masks) to an .npz file.

    .venv/bin/python scripts/make_ground_truth_data.py --n 2000 --seed 1 --out gt_test.npz

The images come from ``attrib.data.ground_truth.make_ground_truth`` (seeded, deterministic):
a shape (square, disk, triangle, cross) decides the class, on a random texture. They are
stored exactly, as uint8 ``images`` ``(n, 3, H, W)``, int64 ``labels`` and bool ``masks``
``(n, H, W)``; ``classes`` holds the class names. Seed 0 is the training set of the shipped
model and seed 1 its test set (``scripts/train_ground_truth_cnn.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from attrib.data.ground_truth import CLASSES, make_ground_truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of images")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    batch = make_ground_truth(args.n, seed=args.seed, size=args.size)
    np.savez_compressed(
        args.out,
        images=np.round(batch.images.numpy() * 255).astype(np.uint8),
        labels=batch.labels.numpy(),
        masks=batch.masks.numpy(),
        classes=np.array(CLASSES),
        seed=np.array(args.seed),
    )
    counts = np.bincount(batch.labels.numpy(), minlength=len(CLASSES))
    per_class = dict(zip(CLASSES, counts.tolist(), strict=True))
    print(f"wrote {args.n} images to {args.out}; per class {per_class}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

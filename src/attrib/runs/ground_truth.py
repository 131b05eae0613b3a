"""The synthetic ground-truth images (``attrib.data.ground_truth``) as files a run reads.

from attrib.runs.ground_truth import write_ground_truth_folder
manifest = write_ground_truth_folder("gt", n=2000, seed=0)   # gt/manifest.csv
# attrib run gt/manifest.csv --model gt_cnn ...   (or Manifest(manifest, preset="none"))
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from attrib.data.ground_truth import CLASSES, make_ground_truth
from attrib.viz._deps import pil_image

__all__ = ["write_ground_truth_folder"]


def write_ground_truth_folder(
    root: str | os.PathLike, n: int = 2000, seed: int = 0, size: int = 32
) -> Path:
    """Write ``make_ground_truth(n, seed, size)`` under ``root`` and return the manifest's path.

    - ``images/NNNNN.png``: the images (lossless: they are multiples of 1/255);
    - ``masks/NNNNN.png``: the objects' masks (255 on the object, 0 elsewhere);
    - ``manifest.csv``: columns ``id``, ``path``, ``mask``, ``label`` (the index into
      ``CLASSES``, the order of the shipped ``GroundTruthCNN``) and ``class`` (its name).

    Read it with ``Manifest(path, preset="none")`` (the images are model-sized already).
    The images are not in class folders, so that an ``ImageFolder`` of ``images/`` has no
    labels rather than labels in another order than the model's.
    """
    batch = make_ground_truth(n, seed=seed, size=size)
    folder = Path(root)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    pil = pil_image()
    pictures = (batch.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    masks = batch.masks.numpy().astype(np.uint8) * 255
    width = max(5, len(str(n - 1)))
    rows = []
    for i in range(n):
        name = f"{i:0{width}d}"
        pil.fromarray(pictures[i]).save(folder / "images" / f"{name}.png")
        pil.fromarray(masks[i]).save(folder / "masks" / f"{name}.png")
        label = int(batch.labels[i])
        rows.append((name, f"images/{name}.png", f"masks/{name}.png", label, CLASSES[label]))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id", "path", "mask", "label", "class"))
        writer.writerows(rows)
    return manifest

"""Synthetic run directories for the explorer's tests and benchmark, written through the run
store's own writer (``RunStore.open`` and ``commit``) in seconds, with no model: the maps are
smooth random fields, the scores random, the predictions right for three samples in four.

- ``write_image_run(root, n)``: ``n`` ground-truth images (``write_ground_truth_folder``) as
  the source, two methods with maps, two metrics, one error row in fifty, and class names
  that include markup (``<script>alert(1)</script>``) which the page must show as text;
- ``write_text_run(root)``: a few texts and their token scores, one token of which is
  ``<img src=x onerror=alert(1)>``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.manifest import Manifest
from attrib.runs.sources import open_source
from attrib.runs.store import RunStore, ShardResult

SCRIPT_CLASS = "<script>alert(1)</script>"
IMG_TOKEN = "<img src=x onerror=alert(1)>"
CLASS_NAMES = ["square", SCRIPT_CLASS, "triangle", "cross"]
METHODS = ("GradCAM", "IntegratedGradients")
METRICS = ("deletion", "insertion")


def _manifest(
    source: Any, methods: tuple[str, ...], metrics: tuple[str, ...], shard: int, names: list[str]
) -> Manifest:
    return Manifest(
        attrib_version="test",
        torch_version=torch.__version__,
        model={"spec": "synthetic", "sha256": "0" * 64},
        methods={m: {"class": m, "settings": {}} for m in methods},
        metrics=list(metrics),
        source=source.describe(),
        seed=0,
        shard_size=shard,
        target="predicted",
        maps={"keep": "2d", "format": "zarr", "dtype": "float16"},
        sanity={},
        device="cpu",
        extra={"class_names": names},
    )


def _smooth_maps(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    """Random fields on a 4 x 4 grid, upsampled: maps that look like maps."""
    coarse = torch.from_numpy(rng.standard_normal((n, 1, 4, 4)).astype(np.float32))
    fine = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")
    return fine[:, 0].numpy()


def write_image_run(
    root: str | Path,
    n: int = 24,
    *,
    shard_size: int = 64,
    seed: int = 0,
    error_every: int = 50,
    data: str | Path | None = None,
) -> Path:
    """A run of ``n`` synthetic samples under ``root/run`` (its source under ``root/data``,
    or ``data``: a folder ``write_ground_truth_folder`` wrote, reused)."""
    root = Path(root)
    manifest_csv = (
        Path(data) / "manifest.csv"
        if data is not None
        else write_ground_truth_folder(root / "data", n=n, seed=seed)
    )
    source = open_source(manifest_csv, preset="none")
    rng = np.random.default_rng(seed)
    store = RunStore.open(
        root / "run", _manifest(source, METHODS, METRICS, shard_size, CLASS_NAMES)
    )
    labels = [source[i].label for i in range(n)] if n <= 200 else _labels(manifest_csv, n)
    for shard, start in enumerate(range(0, n, shard_size)):
        indices = list(range(start, min(n, start + shard_size)))
        samples, scores, ok_ids = [], [], []
        for i in indices:
            sample_id = f"{i:05d}"
            label = int(labels[i])
            failed = error_every and i % error_every == error_every - 1
            prediction = label if i % 4 else (label + 1) % len(CLASS_NAMES)
            probabilities = rng.dirichlet(np.ones(len(CLASS_NAMES)))
            order = [prediction, *[c for c in range(len(CLASS_NAMES)) if c != prediction]]
            samples.append(
                {
                    "index": i,
                    "id": sample_id,
                    "source": str(manifest_csv.parent / "images" / f"{sample_id}.png"),
                    "label": label,
                    "prediction": None if failed else prediction,
                    "top_classes": None if failed else order,
                    "top_probabilities": None
                    if failed
                    else sorted(probabilities.tolist(), reverse=True),
                    "status": "error" if failed else "ok",
                    "error": "UnreadableError: a truncated file" if failed else None,
                    "shard": shard,
                }
            )
            if failed:
                continue
            ok_ids.append(sample_id)
            for method in (*METHODS, "random map"):
                for metric in METRICS:
                    value = float(rng.uniform(0, 1))
                    scores.append(
                        {
                            "id": sample_id,
                            "index": i,
                            "method": method,
                            "metric": metric,
                            "value": value,
                        }
                    )
        maps = {m: (ok_ids, _smooth_maps(rng, len(ok_ids), 32)) for m in METHODS if ok_ids}
        store.commit(ShardResult(shard, samples, scores, maps))
    return store.root


def _labels(manifest_csv: Path, n: int) -> list[int]:
    with open(manifest_csv, newline="", encoding="utf-8") as handle:
        return [int(row["label"]) for row in csv.DictReader(handle)][:n]


TEXTS = [
    (
        "t0",
        "a truly wonderful film",
        1,
        ["[CLS]", "a", "truly", "wonder", "##ful", "film", "[SEP]"],
    ),
    ("t1", "the worst plot ever", 0, ["[CLS]", "the", "worst", "plot", "ever", "[SEP]"]),
    ("t2", IMG_TOKEN + " in a review", 1, ["[CLS]", IMG_TOKEN, "in", "a", "review", "[SEP]"]),
]


def write_text_run(root: str | Path) -> Path:
    """A text run of ``TEXTS`` with token scores for two methods."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    table = root / "texts.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id", "text", "label"))
        writer.writerows((i, text, label) for i, text, label, _ in TEXTS)
    source = open_source(table, text_column="text", class_names=["negative", SCRIPT_CLASS])
    methods = ("IntegratedGradients", "Saliency")
    store = RunStore.open(
        root / "run", _manifest(source, methods, (), 64, ["negative", SCRIPT_CLASS])
    )
    rng = np.random.default_rng(0)
    samples, tokens = [], {m: [] for m in methods}
    for k, (sample_id, _, label, pieces) in enumerate(TEXTS):
        samples.append(
            {
                "index": k,
                "id": sample_id,
                "source": f"{table}[{k}]",
                "label": label,
                "prediction": label,
                "top_classes": [label, 1 - label],
                "top_probabilities": [0.9, 0.1],
                "status": "ok",
                "error": None,
                "shard": 0,
            }
        )
        for method in methods:
            values = rng.standard_normal(len(pieces)).astype(np.float32)
            if method == "Saliency":
                values = np.abs(values)
            tokens[method].append({"id": sample_id, "tokens": pieces, "scores": values.tolist()})
    store.commit(ShardResult(0, samples, [], {}, tokens=tokens))
    return store.root

"""The synthetic ground-truth data set written as files reads back through ``Manifest``
exactly as ``make_ground_truth`` draws it: images, labels and masks."""

from __future__ import annotations

import csv

import torch

from attrib.data.ground_truth import CLASSES, make_ground_truth
from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.sources import ImageFolder, Manifest, open_source


def test_the_ground_truth_folder_round_trips_through_a_manifest(tmp_path):
    n, seed = 60, 3
    path = write_ground_truth_folder(tmp_path / "gt", n=n, seed=seed)
    drawn = make_ground_truth(n, seed=seed)
    source = open_source(path, preset="none")
    assert isinstance(source, Manifest) and len(source) == n
    for i in range(n):
        sample = source[i]
        assert sample.error is None and sample.id == f"{i:05d}"
        assert torch.equal(sample.input, drawn.images[i])  # PNG keeps multiples of 1/255
        assert torch.equal(sample.mask, drawn.masks[i])
        assert sample.label == int(drawn.labels[i])
    with open(path, newline="") as handle:
        names = [row["class"] for row in csv.DictReader(handle)]
    assert names == [CLASSES[int(k)] for k in drawn.labels]


def test_its_images_folder_reads_the_same_pictures_without_labels(tmp_path):
    path = write_ground_truth_folder(tmp_path / "gt", n=12, seed=0)
    folder = ImageFolder(path.parent / "images", preset="none")
    manifest = Manifest(path, preset="none")
    assert folder.class_names is None and len(folder) == 12
    for i in range(12):
        assert folder[i].label is None
        assert torch.equal(folder[i].input, manifest[i].input)

"""The shipped ground-truth ViT (``attrib.data.gt_vit``): it loads offline from the package's
own file, bit for bit, has learnt the task (the recorded held-out accuracy, above chance and
reproduced here), and CAM methods find its token layout by themselves."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")

from attrib.data.ground_truth import CLASSES, make_ground_truth
from attrib.data.gt_vit import (
    WEIGHTS,
    GroundTruthViT,
    load_ground_truth_vit,
    training_record,
)

CHANCE = 1 / len(CLASSES)


def test_the_weights_load_bit_for_bit_from_the_shipped_file():
    assert WEIGHTS.stat().st_size < 1_500_000
    model = load_ground_truth_vit()
    assert isinstance(model, GroundTruthViT) and not model.training
    stored = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state = model.state_dict()
    assert set(state) == set(stored)
    for name, value in stored.items():
        assert torch.equal(state[name], value), name


def test_the_recorded_held_out_accuracy_is_above_chance_and_reproduced():
    record = training_record()
    assert record["held_out_accuracy"] > CHANCE + 0.25
    assert record["command"].startswith("python scripts/train_gt_vit.py")
    assert record["seconds"] > 0
    # the held-out seed is none of the training seeds (100 + epoch)
    assert record["test"]["seed"] < 100
    test = make_ground_truth(record["test"]["n"], seed=record["test"]["seed"])
    model = load_ground_truth_vit()
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in test.images.split(500)])
    accuracy = float((predicted == test.labels).float().mean())
    # another machine's float rounding may flip a prediction or two of the 2000
    assert accuracy == pytest.approx(record["held_out_accuracy"], abs=0.005)


def test_cam_finds_its_layout():
    from attrib.methods.cam import GradCAM

    model = load_ground_truth_vit()
    x = make_ground_truth(2, seed=7).images
    got = GradCAM(model, upsample=False)(x, target="predicted")
    assert got.params["layer"] == "encoder.layers.encoder_layer_3.ln_1"
    assert got.values.shape == (2, 4, 4)  # patch 8 on 32 x 32

"""The ground-truth dataset and its shipped CNN: a deterministic generator, the shipped
weights' accuracy on fresh images, and localization metrics that rank gradient maps above a
random map."""

from __future__ import annotations

import functools

import pytest
import torch

from attrib import GradientXInput, IntegratedGradients, Saliency
from attrib.core.errors import SettingError
from attrib.data.ground_truth import CLASSES, make_ground_truth
from attrib.data.gt_cnn import WEIGHTS, load_ground_truth_cnn, training_record
from attrib.metrics import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy
from tests.metrics.helpers import optional_method


def test_generator_is_deterministic_and_seeded():
    a, b = make_ground_truth(64, seed=3), make_ground_truth(64, seed=3)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)
    c = make_ground_truth(64, seed=4)
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (64, 3, 32, 32) and a.masks.shape == (64, 32, 32)
    # pixel values are exact multiples of 1/255 (storable as uint8)
    assert torch.equal(torch.round(a.images * 255) / 255, a.images)
    assert a.images.min() >= 0 and a.images.max() <= 1


def test_the_object_is_one_flat_colour_inside_its_mask():
    batch = make_ground_truth(32, seed=0)
    assert set(batch.labels.tolist()) <= set(range(len(CLASSES)))
    for image, mask in zip(batch.images, batch.masks, strict=True):
        assert 9 <= int(mask.sum()) < 32 * 32 // 4  # an object, never the whole image
        inside = image[:, mask]  # (3, pixels)
        assert torch.equal(inside, inside[:, :1].expand_as(inside))
        # the object differs from the background around it by a visible margin
        assert float((inside[:, 0].view(3, 1) - image[:, ~mask]).abs().amax(0).median()) > 0.1


def test_generator_settings_are_checked():
    with pytest.raises(SettingError):
        make_ground_truth(0)
    with pytest.raises(SettingError):
        make_ground_truth(4, size=8)


@functools.lru_cache(maxsize=1)
def _model():
    return load_ground_truth_cnn()


def _accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((_model()(images).argmax(1) == labels).float().mean())


def test_shipped_weights_are_small_and_classify_fresh_images():
    assert WEIGHTS.stat().st_size < 400_000
    record = training_record()
    # fresh images, a seed used neither for training (0) nor for the recorded test (1)
    fresh = make_ground_truth(400, seed=2024)
    assert _accuracy(fresh.images, fresh.labels) >= 0.97
    # the recorded test accuracy is reproduced on the recorded test set
    test = make_ground_truth(record["test"]["n"], seed=record["test"]["seed"])
    assert _accuracy(test.images, test.labels) == pytest.approx(record["test_accuracy"], abs=0.005)


def _localization_methods():
    model = _model()
    methods = {
        "Saliency": Saliency(model),
        "GradientXInput": GradientXInput(model),
        "IntegratedGradients": IntegratedGradients(model, steps=16),
    }
    grad_cam = optional_method("attrib.methods.cam", "GradCAM")
    if grad_cam is not None:
        methods["GradCAM"] = grad_cam(model, layer="features.9")
    return methods


def test_localization_ranks_gradient_maps_above_a_random_map():
    batch = make_ground_truth(48, seed=99)
    generator = torch.Generator().manual_seed(0)
    draws = 10  # random maps per image, so that chance is measured closely
    random_maps = torch.rand(draws * 48, 32, 32, generator=generator)
    masks = batch.masks.repeat(draws, 1, 1)
    metrics = (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy)
    random_scores = [float(m(random_maps, masks).mean()) for m in metrics]
    # chance is the object's share of the image (about 9%) for all three
    share = float(batch.masks.float().mean())
    assert all(abs(s - share) < 0.03 for s in random_scores), (random_scores, share)
    for name, method in _localization_methods().items():
        maps = method(batch.images, target=batch.labels).saliency()
        for metric, chance in zip(metrics, random_scores, strict=True):
            score = float(metric(maps, batch.masks).mean())
            assert score > 2 * chance, (name, metric.__name__, score, chance)

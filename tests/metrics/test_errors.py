"""Bad input is an AttribError subclass that names the argument, for every metric."""

from __future__ import annotations

import pytest
import torch

from attrib import Saliency
from attrib.core.errors import AttribError, InputError
from attrib.metrics import (
    completeness,
    deletion,
    infidelity,
    insertion,
    max_sensitivity,
    model_randomization,
    pixel_flipping,
    pointing_game,
    random_logit,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    road,
)
from tests.models import GapCNN

MODEL = GapCNN().eval()
X = torch.randn(2, 3, 8, 8)
CURVES = [deletion, insertion, pixel_flipping, road, infidelity]
LOCALIZATION = [pointing_game, relevance_mass_accuracy, relevance_rank_accuracy]


@pytest.mark.parametrize("metric", CURVES)
@pytest.mark.parametrize(
    "shape", [(2, 3, 8, 7), (3, 8, 8), (2, 2, 8, 8), (1, 3, 8, 8), (2, 64)], ids=str
)
def test_attributions_that_do_not_match_the_inputs(metric, shape):
    with pytest.raises(InputError, match="attributions") as info:
        metric(MODEL, X, torch.rand(shape), 0)
    assert "expected" in str(info.value)


@pytest.mark.parametrize("metric", LOCALIZATION)
@pytest.mark.parametrize("shape", [(2, 8, 7), (2, 3, 8, 8), (1, 8, 8)], ids=str)
def test_masks_of_the_wrong_shape(metric, shape):
    with pytest.raises(InputError, match="masks"):
        metric(torch.rand(2, 8, 8), torch.ones(shape, dtype=torch.bool))


@pytest.mark.parametrize("metric", CURVES)
def test_empty_batch_for_curves(metric):
    with pytest.raises(InputError):
        metric(MODEL, X[:0], torch.rand(0, 8, 8), 0)


@pytest.mark.parametrize("metric", LOCALIZATION)
def test_empty_batch_for_localization(metric):
    with pytest.raises(InputError):
        metric(torch.rand(0, 8, 8), torch.ones(0, 8, 8, dtype=torch.bool))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: completeness(Saliency(MODEL), x, 0),
        lambda x: max_sensitivity(Saliency(MODEL), x, 0),
        lambda x: model_randomization(Saliency(MODEL), x, 0),
        lambda x: random_logit(Saliency(MODEL), x, 0),
    ],
)
def test_empty_batch_for_method_metrics(call):
    with pytest.raises(InputError):
        call(X[:0])


def test_non_finite_attributions_and_dict_inputs():
    bad = torch.rand(2, 8, 8)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="finite"):
        deletion(MODEL, X, bad, 0)
    with pytest.raises(AttribError):
        deletion(MODEL, {"x": X}, torch.rand(2, 8, 8), 0)

"""Localization metrics on maps whose scores follow from the definitions by hand."""

from __future__ import annotations

import pytest
import torch

from attrib.core.errors import AttribWarning, InputError
from attrib.core.result import Attribution
from attrib.metrics import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy


def _mask(*cells: tuple[int, int], size: int = 4) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    for r, c in cells:
        mask[r, c] = True
    return mask


def test_pointing_game_hit_and_miss():
    maps = torch.zeros(2, 4, 4)
    maps[0, 1, 1] = 1.0  # on the object
    maps[1, 3, 3] = 1.0  # off it
    masks = torch.stack([_mask((1, 1), (1, 2)), _mask((1, 1), (1, 2))])
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0]


def test_pointing_game_ties_score_the_share_of_tied_maxima_on_the_object():
    masks = _mask((0, 0), (0, 1), (0, 2), (0, 3)).unsqueeze(0)  # a quarter of 16
    constant = torch.ones(1, 4, 4)
    assert float(pointing_game(constant, masks)) == pytest.approx(4 / 16)
    two = torch.zeros(1, 4, 4)
    two[0, 0, 0] = two[0, 3, 3] = 5.0  # one tied maximum on, one off
    assert float(pointing_game(two, masks)) == pytest.approx(0.5)


def test_pointing_game_tolerance_counts_maxima_near_the_object():
    maps = torch.zeros(1, 9, 9)
    maps[0, 4, 6] = 1.0  # two pixels right of the object's pixel (4, 4)
    masks = torch.zeros(1, 9, 9, dtype=torch.bool)
    masks[0, 4, 4] = True
    assert float(pointing_game(maps, masks)) == 0.0
    assert float(pointing_game(maps, masks, tolerance=1.5)) == 0.0
    assert float(pointing_game(maps, masks, tolerance=2)) == 1.0


def test_relevance_mass_accuracy_by_hand():
    maps = torch.tensor([[[3.0, 1.0], [-2.0, 4.0]]])
    masks = torch.tensor([[[True, False], [True, False]]])
    # positive relevance 3 + 1 + 4 = 8, of which 3 on the object (the -2 is left out)
    assert float(relevance_mass_accuracy(maps, masks)) == pytest.approx(3 / 8)
    assert float(relevance_mass_accuracy(torch.zeros(1, 2, 2), masks)) == 0.0


def test_relevance_rank_accuracy_by_hand():
    maps = torch.arange(16.0).view(1, 4, 4)  # the top 4 are (3, 0..3)
    masks = _mask((3, 3), (3, 2), (3, 1), (0, 0)).unsqueeze(0)
    assert float(relevance_rank_accuracy(maps, masks)) == pytest.approx(3 / 4)


def test_relevance_rank_accuracy_ties_take_the_expected_share():
    # K = 2; one location strictly above the 2nd value (on the object), three tied for the
    # second place of which one is on the object: 1 + 1 x (2 - 1) / 3 hits out of 2
    maps = torch.tensor([[[9.0, 5.0], [5.0, 5.0]]])
    masks = torch.tensor([[[True, True], [False, False]]])
    assert float(relevance_rank_accuracy(maps, masks)) == pytest.approx((1 + 1 / 3) / 2)
    constant = torch.ones(1, 4, 4)
    quarter = _mask((0, 0), (0, 1), (0, 2), (0, 3)).unsqueeze(0)
    assert float(relevance_rank_accuracy(constant, quarter)) == pytest.approx(4 / 16)


def test_attribution_objects_are_reduced_to_maps_and_channel_one_is_accepted():
    values = torch.zeros(1, 3, 4, 4)
    values[0, 2, 1, 1] = -7.0  # largest |value|, on the object
    attribution = Attribution(values=values)
    masks = _mask((1, 1)).view(1, 1, 4, 4)
    assert float(pointing_game(attribution, masks)) == 1.0
    assert float(relevance_mass_accuracy(values.abs().sum(1, keepdim=True), masks)) == 1.0


def test_empty_mask_gives_nan_with_a_warning():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, 0, 0] = True
    with pytest.warns(AttribWarning, match="empty"):
        scores = relevance_rank_accuracy(torch.rand(2, 4, 4), masks)
    assert not torch.isnan(scores[0]) and torch.isnan(scores[1])


@pytest.mark.parametrize(
    "metric", [pointing_game, relevance_mass_accuracy, relevance_rank_accuracy]
)
def test_bad_masks_are_input_errors(metric):
    with pytest.raises(InputError, match="masks"):
        metric(torch.rand(2, 4, 4), torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(InputError, match="0/1"):
        metric(torch.rand(2, 4, 4), torch.full((2, 4, 4), 0.5))
    with pytest.raises(InputError):
        metric(torch.rand(0, 4, 4), torch.ones(0, 4, 4, dtype=torch.bool))

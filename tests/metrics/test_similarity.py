"""Similarity measures: identities that follow from their definitions, then the references
(scipy's spearmanr, scikit-image's structural_similarity and hog)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attrib.core.errors import AttribError, InputError, SettingError
from attrib.metrics.similarity import hog, hog_similarity, pearson, ranks, spearman, ssim


def test_spearman_of_reversed_rankings_is_minus_one_and_of_identical_is_one():
    a = torch.randn(4, 30)
    assert torch.allclose(spearman(a, -a), torch.full((4,), -1.0, dtype=torch.float64))
    assert torch.allclose(spearman(a, a), torch.ones(4, dtype=torch.float64))
    # any increasing transform keeps the ranks
    assert torch.allclose(spearman(a, a.exp()), torch.ones(4, dtype=torch.float64))


def test_ranks_average_ties():
    # sorted: 1, 2, 2, 2, 5 -> ranks 1, 3, 3, 3, 5 (the ties share (2 + 3 + 4) / 3)
    got = ranks(torch.tensor([[2.0, 5.0, 2.0, 1.0, 2.0]], dtype=torch.float64))
    assert got.tolist() == [[3.0, 5.0, 3.0, 1.0, 3.0]]


def test_spearman_matches_scipy_with_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    a = torch.randint(0, 5, (6, 40)).double()  # many ties
    b = a + torch.randint(0, 3, (6, 40)).double()
    expected = [scipy_stats.spearmanr(a[i], b[i])[0] for i in range(6)]
    assert np.allclose(spearman(a, b).numpy(), expected, atol=1e-12)


def test_pearson_of_a_line_and_of_a_constant():
    a = torch.arange(10.0).view(1, 10)
    assert float(pearson(a, 3 * a + 1)) == pytest.approx(1.0)
    assert torch.isnan(pearson(a, torch.ones(1, 10))).all()


def test_ssim_of_identical_maps_is_one():
    a = torch.rand(3, 16, 16)
    assert torch.allclose(ssim(a, a), torch.ones(3, dtype=torch.float64))
    constant = torch.full((2, 8, 8), 0.3)
    assert torch.allclose(ssim(constant, constant), torch.ones(2, dtype=torch.float64))


def test_ssim_by_hand_on_one_window():
    # one 3 x 3 window: mu_a = 1, mu_b = 2, var_a = 1.5, var_b = 6 (b = 2a), cov = 3 (sample
    # covariances over the 9 values 0 0 0 1 1 1 2 2 2)
    a = torch.tensor([[0.0, 1.0, 2.0]] * 3).T.reshape(1, 3, 3)
    b = 2 * a
    data_range = 4.0  # max(a, b) - min(a, b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    var_a = 6 / 8  # sum of squared deviations 6, over n - 1 = 8
    var_b, cov = 4 * var_a, 2 * var_a
    expected = ((2 * 1 * 2 + c1) * (2 * cov + c2)) / ((1 + 4 + c1) * (var_a + var_b + c2))
    assert float(ssim(a, b, win_size=3)) == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_scikit_image_in_2d_and_1d():
    metrics = pytest.importorskip("skimage.metrics")
    a = torch.rand(3, 20, 24, dtype=torch.float64)
    b = a + 0.3 * torch.randn(3, 20, 24, dtype=torch.float64)
    for ours, x, y in [
        (ssim(a, b), a, b),
        (ssim(a.flatten(1), b.flatten(1)), a.flatten(1), b.flatten(1)),
    ]:
        for i in range(3):
            joint = torch.cat([x[i].flatten(), y[i].flatten()])
            expected = metrics.structural_similarity(
                x[i].numpy(), y[i].numpy(), data_range=float(joint.max() - joint.min())
            )
            assert float(ours[i]) == pytest.approx(expected, abs=1e-7)


def test_hog_matches_scikit_image():
    feature = pytest.importorskip("skimage.feature")
    maps = torch.randn(3, 32, 40, dtype=torch.float64)
    maps[0, :10] = 0.0  # flat regions: zero gradients, orientation 0
    for settings in ({}, {"orientations": 7, "pixels_per_cell": 4, "cells_per_block": 2}):
        ours = hog(maps, **settings).numpy()
        kwargs = {}
        if settings:
            kwargs = {
                "orientations": 7,
                "pixels_per_cell": (4, 4),
                "cells_per_block": (2, 2),
            }
        expected = np.stack([feature.hog(m.numpy(), **kwargs) for m in maps])
        assert ours.shape == expected.shape
        # scikit-image accumulates its histograms in single precision
        assert np.abs(ours - expected).max() < 1e-6


def test_hog_similarity_of_identical_maps_is_one():
    maps = torch.randn(2, 24, 24)
    assert torch.allclose(hog_similarity(maps, maps), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("function", [spearman, ssim, hog_similarity, pearson])
def test_shape_mismatch_is_an_input_error(function):
    with pytest.raises(InputError):
        function(torch.rand(2, 24, 24), torch.rand(2, 24, 25))
    with pytest.raises(AttribError):
        function(torch.rand(0, 24, 24), torch.rand(0, 24, 24))


def test_ssim_window_larger_than_the_map_is_a_setting_error():
    with pytest.raises(SettingError):
        ssim(torch.rand(1, 5, 5), torch.rand(1, 5, 5))


def test_a_constant_map_has_no_rank_order_so_its_similarity_is_defined_not_nan():
    """A constant map (Grad-CAM after the top layer is randomized) made Spearman NaN, and the
    sanity check's line stopped there. No rank order shares none of another map's: 0; two
    constant maps have the same (all-tied) ranking: 1."""
    from attrib.metrics.similarity import constant_maps

    ordered = torch.arange(64.0).view(1, 8, 8)
    flat = torch.zeros(1, 8, 8)
    other_flat = torch.full((1, 8, 8), 3.0)
    assert constant_maps(torch.cat([ordered, flat])).tolist() == [False, True]
    assert spearman(ordered, flat).tolist() == [0.0]
    assert spearman(flat, ordered).tolist() == [0.0]
    assert spearman(flat, other_flat).tolist() == [1.0]
    assert torch.isnan(pearson(ordered, flat)).all()  # the plain statistic stays undefined
    # HOG of a constant map is all zeros (no gradients): the same rule
    big = torch.arange(24 * 24.0).view(1, 24, 24).sin()
    zero = torch.zeros(1, 24, 24)
    assert hog_similarity(big, zero).tolist() == [0.0]
    assert hog_similarity(zero, torch.ones(1, 24, 24)).tolist() == [1.0]
    # a batch mixes both: each sample by its own rule
    both = spearman(torch.cat([ordered, ordered]), torch.cat([ordered, flat]))
    assert both.tolist() == [1.0, 0.0]

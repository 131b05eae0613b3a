"""Faithfulness curves on models with known responses.

For a linear model ``f(x) = w . x`` and attributions ``a = w * x`` (gradient x input), deleting
features (replacing them by 0) in the order of ``a`` lowers ``f`` by exactly the deleted
``a_i``: the curve is ``f(x) - cumsum(sorted a)``, and its area and AOPC follow.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from attrib.core.errors import InputError, SettingError
from attrib.metrics import deletion, insertion, linear_imputation, pixel_flipping, road
from tests.conftest import assert_state_restored, model_state
from tests.metrics.helpers import Counting, linear
from tests.models import absolute_forward


def _example():
    # w = (1, 2, 3, 4), x = 1: f(x) = 10, a = (1, 2, 3, 4)
    model = linear([[1.0, 2.0, 3.0, 4.0]])
    x = torch.ones(1, 4, dtype=torch.float64)
    return model, x, x * model.linear.weight.detach()


def test_deletion_of_a_known_attribution_on_a_linear_model():
    model, x, a = _example()
    curve = deletion(model, x, a, None, features_per_step=1, score="logit")
    # most relevant first: 10, 10 - 4, 10 - 4 - 3, ... ; trapezoids of width 1/4
    assert curve.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve.scores.tolist() == [[10.0, 6.0, 3.0, 1.0, 0.0]]
    assert float(curve.area()) == pytest.approx(0.25 * (8 + 4.5 + 2 + 0.5))  # 3.75
    # AOPC: mean drop over the 5 points, (0 + 4 + 7 + 9 + 10) / 5
    assert float(curve.aopc()) == pytest.approx(6.0)


def test_lerf_and_insertion_of_the_same_example():
    model, x, a = _example()
    lerf = pixel_flipping(model, x, a, None, order="lerf", substrate=0.0, features_per_step=1)
    assert lerf.scores.tolist() == [[10.0, 9.0, 7.0, 4.0, 0.0]]
    assert float(lerf.aopc()) == pytest.approx((0 + 1 + 3 + 6 + 10) / 5)
    ins = insertion(model, x, a, None, substrate=0.0, features_per_step=1, score="logit")
    assert ins.scores.tolist() == [[0.0, 4.0, 7.0, 9.0, 10.0]]
    assert float(ins.area()) == pytest.approx(0.25 * (2 + 5.5 + 8 + 9.5))  # 6.25
    assert float(ins.clean) == 10.0


def test_deletion_curve_of_random_linear_models_is_f_minus_the_cumulative_sorted_relevance():
    torch.manual_seed(3)
    w = torch.randn(3, 12, dtype=torch.float64)
    model = linear(w)
    x = torch.randn(5, 12, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0, 1])
    a = x * w[target]
    curve = deletion(model, x, a, target, steps=4, score="logit")
    removed = torch.tensor([0, 3, 6, 9, 12])
    for i in range(5):
        contributions = a[i].sort(descending=True).values
        f = float(a[i].sum())
        expected = [f - float(contributions[:m].sum()) for m in removed]
        assert curve.scores[i].tolist() == pytest.approx(expected, abs=1e-12)
        heights = [(expected[k] + expected[k + 1]) / 2 for k in range(4)]
        assert float(curve.area()[i]) == pytest.approx(sum(heights) / 4, abs=1e-12)


def test_maps_move_all_channels_of_a_location_together():
    torch.manual_seed(0)
    w = torch.randn(1, 2 * 3 * 3, dtype=torch.float64)
    model = linear(w)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    contribution = (x.flatten(1) * w).view(2, 3, 3).sum(0)  # per location, channels summed
    curve = deletion(model, x, contribution.unsqueeze(0), None, features_per_step=1, score="logit")
    order = contribution.flatten().sort(descending=True).values
    expected = [float(contribution.sum() - order[:m].sum()) for m in range(10)]
    assert curve.scores[0].tolist() == pytest.approx(expected, abs=1e-12)
    # (N, 1, H, W) maps are the same thing
    again = deletion(
        model, x, contribution.view(1, 1, 3, 3), None, features_per_step=1, score="logit"
    )
    assert torch.equal(again.scores, curve.scores)


def test_patches_rank_regions_by_their_summed_relevance():
    # a 4 x 4 one-channel image, 2 x 2 patches; the bottom-right patch holds the most relevance
    w = torch.ones(1, 16, dtype=torch.float64)
    model = linear(w)
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    maps = torch.zeros(1, 4, 4, dtype=torch.float64)
    maps[0, 2:, 2:] = 1.0
    maps[0, 0, 0] = 3.0  # one bright pixel, but its patch sums to 3 < 4
    curve = deletion(model, x, maps, None, patch=2, features_per_step=1, score="logit")
    assert curve.scores.tolist() == [[16.0, 12.0, 8.0, 4.0, 0.0]]
    assert curve.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_probability_score_is_the_softmax_of_the_target():
    model = linear([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    curve = deletion(model, x, torch.tensor([[1.0, 0.0]]), 0, features_per_step=1)
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    assert curve.scores[0].tolist() == pytest.approx(logits.softmax(1)[:, 0].tolist())


@pytest.mark.parametrize("batch_size", [1, 7, 16, 1000])
@pytest.mark.parametrize("target", ["predicted", 1])
@pytest.mark.parametrize("metric", ["deletion", "insertion", "pixel_flipping"])
def test_forwards_are_ceil_rows_over_batch_size_and_results_do_not_depend_on_it(
    batch_size, target, metric
):
    torch.manual_seed(1)
    counting = Counting(linear(torch.randn(3, 10, dtype=torch.float64)))
    x = torch.randn(6, 10, dtype=torch.float64)
    a = torch.randn(6, 10, dtype=torch.float64)
    function = {"deletion": deletion, "insertion": insertion, "pixel_flipping": pixel_flipping}
    kwargs = {"substrate": 0.0} if metric == "insertion" else {}
    curve = function[metric](
        counting, x, a, target, steps=5, batch_size=batch_size, seed=4, **kwargs
    )
    rows = 6 * (5 + 1)
    assert counting.calls == math.ceil(rows / batch_size)
    assert counting.rows == rows
    reference = function[metric](counting, x, a, target, steps=5, seed=4, **kwargs)
    assert torch.allclose(curve.scores, reference.scores, atol=1e-12)
    if target == "predicted":
        predicted = counting.model(x).argmax(1)
        assert torch.equal(curve.classes, predicted)


def test_uniform_substrate_is_seeded():
    torch.manual_seed(2)
    model = linear(torch.randn(2, 8, dtype=torch.float64))
    x = torch.randn(3, 8, dtype=torch.float64)
    a = torch.randn(3, 8, dtype=torch.float64)
    first = pixel_flipping(model, x, a, 0, steps=4, seed=11).scores
    assert torch.equal(first, pixel_flipping(model, x, a, 0, steps=4, seed=11).scores)
    assert not torch.equal(first, pixel_flipping(model, x, a, 0, steps=4, seed=12).scores)


def test_curves_leave_the_model_as_it_was():
    from tests.models import GapCNN

    model = GapCNN().eval()
    before = model_state(model)
    x = torch.randn(2, 3, 8, 8)
    deletion(model, x, torch.rand(2, 8, 8), "predicted", steps=4)
    road(model, x, torch.rand(2, 8, 8), "predicted", fractions=[0.5])
    assert_state_restored(model, before)


def test_linear_imputation_reproduces_an_affine_image_away_from_the_border():
    # with symmetric neighbour weights, the weighted mean of an affine function's neighbours
    # is its value at the centre, so the imputed block must equal the removed values
    rows = torch.arange(10, dtype=torch.float64).view(10, 1)
    cols = torch.arange(12, dtype=torch.float64).view(1, 12)
    image = (0.3 * rows - 0.7 * cols + 2.0).expand(10, 12)
    x = torch.stack([image, 2 * image]).unsqueeze(0)  # two channels
    mask = torch.zeros(1, 10, 12, dtype=torch.bool)
    mask[0, 2:8, 3:10] = True
    out = linear_imputation(x, mask, tolerance=1e-12)
    assert torch.allclose(out, x, atol=1e-9)
    untouched = linear_imputation(x, torch.zeros_like(mask))
    assert torch.equal(untouched, x)


def test_road_accuracy_curve_counts_pixels_and_noise_is_seeded():
    from tests.models import GapCNN

    model = GapCNN().eval()
    x = torch.randn(3, 3, 10, 10)
    maps = torch.rand(3, 10, 10)
    curve = road(model, x, maps, "predicted", fractions=[0.2, 0.5], seed=5)
    assert curve.fractions.tolist() == [0.0, 0.2, 0.5]
    assert curve.scores[:, 0].tolist() == [1.0, 1.0, 1.0]  # the clean input is predicted
    assert set(curve.scores.flatten().tolist()) <= {0.0, 1.0}

    def logits(model, x, seed=5, batch_size=None):
        kwargs = {"fractions": [0.5], "seed": seed, "score": "logit", "batch_size": batch_size}
        return road(model, x, maps, "predicted", **kwargs).scores

    # The same call twice is the same arithmetic: equal to the bit.
    first = logits(model, x)
    assert torch.equal(first, logits(model, x))
    assert not torch.equal(first, logits(model, x, seed=6))
    # Other chunkings score the same rows (ROAD's noise is drawn per sample and fraction, the
    # imputation solves each image on its own), but a forward over other batches may add its
    # terms in another order. Each layer's output sums its terms and rounds once more (bias
    # or division): 27 + 1, 72 + 1 and 108 + 1 for the 3 x 3 convolutions over 3, 8 and 12
    # channels, 25 + 1 for the average pool of the 5 x 5 map, 16 + 1 for the head (253), and
    # the eval batch norm rounds about 5 times. To first order one forward is then off by at
    # most 258 u M (u = eps / 2; M = the forward with every term by its absolute value,
    # absolute_forward), two forwards differ by at most 258 eps M, and one more eps M covers
    # the float32 cast of imputed pixels that could round apart. M is taken at a constant
    # image that bounds every row: imputed pixels are weighted means of kept ones (|.| <=
    # max |x|) and the noise is 0.01 times N(0, 1) draws below 10 (torch's Box-Muller
    # normals stay under 8.6), so |row| <= max |x| + 0.1 < max |x| + 1.
    bound = torch.full_like(x[:1], float(x.abs().max()) + 1)
    m = float(absolute_forward(model, bound).max())
    tolerance = {
        dtype: 259 * torch.finfo(dtype).eps * m for dtype in (torch.float32, torch.float64)
    }
    for dtype in (torch.float32, torch.float64):  # float32: ~1e-2, loose; float64: ~2e-11
        typed_model, typed_x = copy.deepcopy(model).to(dtype), x.to(dtype)
        whole = logits(typed_model, typed_x)
        for batch_size in (1, 2, 4):
            got = logits(typed_model, typed_x, batch_size=batch_size)
            torch.testing.assert_close(got, whole, rtol=0, atol=tolerance[dtype])
    # in float64 the bound is far below what another draw of the noise changes (~1e-5), so
    # rows scored with another sample's or fraction's noise would fail the check above
    other = logits(typed_model, typed_x, seed=6)
    assert float((whole - other).abs().max()) > 1e3 * tolerance[torch.float64]
    # float64 with one fixed chunking: the same arithmetic again, to the bit
    assert torch.equal(got, logits(typed_model, typed_x, batch_size=4))


def test_linear_imputation_of_an_image_does_not_depend_on_the_images_beside_it():
    # One stopping rule for the whole batch let an image's conjugate gradients run on while
    # another's had not converged: its imputation moved with the batch by ~1e-8 (the solver's
    # tolerance), and ROAD's scores with batch_size. Each system now stops on its own, so an
    # image's steps are the same arithmetic alone or in a batch: element-wise operations and
    # sums over its own 100 pixels. Were those sums ordered otherwise, each step would move
    # by at most about 100 eps relative, and k steps (k <= the hole's size) by k * 100 eps:
    # at most 1e-12 relative here, far below what the shared stopping rule let through.
    torch.manual_seed(4)
    x = torch.randn(4, 3, 10, 10, dtype=torch.float64)
    fractions = torch.tensor([0.1, 0.3, 0.5, 0.0]).view(-1, 1, 1)
    mask = torch.rand(4, 10, 10) < fractions
    together = linear_imputation(x, mask)
    assert not torch.equal(together, x)
    for i in range(4):
        alone = linear_imputation(x[i : i + 1], mask[i : i + 1])
        steps = max(1, int(mask[i].sum()))
        tolerance = steps * 100 * torch.finfo(torch.float64).eps * float(x[i].abs().max())
        torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=tolerance)


def test_road_needs_one_value_per_pixel():
    from tests.models import GapCNN

    with pytest.raises(InputError, match="per pixel"):
        road(GapCNN().eval(), torch.randn(1, 3, 8, 8), torch.rand(1, 3, 8, 8), 0)


def test_settings_are_checked():
    model, x, a = _example()
    with pytest.raises(SettingError):
        deletion(model, x, a, None, steps=0, score="logit")
    with pytest.raises(SettingError):
        deletion(model, x, a, None, steps=2, features_per_step=1, score="logit")
    with pytest.raises(SettingError):
        pixel_flipping(model, x, a, None, order="random")
    with pytest.raises(SettingError, match="score"):
        deletion(model, x, a, None)  # a probability needs a class

"""Occlusion and feature ablation: literal loops, linear models, Captum, bad windows."""

from __future__ import annotations

import math

import pytest
import torch

from attrib.core.errors import AttribError, SettingError
from attrib.methods.perturbation import FeatureAblation, Occlusion, grid
from tests.models import GapCNN, LinearModel, TwoInputNet
from tests.peers import assert_matches_peer


def starts(size, window, stride):
    """Slide by ``stride`` from 0 until the window reaches the border (the last window may
    stick out and is cut)."""
    out = [0]
    while out[-1] + window < size:
        out.append(out[-1] + stride)
    return out


def literal_occlusion(model, x, target, window, strides, fill):
    """Zeiler and Fergus's definition, one window at a time, over the last two dimensions:
    the mean score drop over the windows covering each pixel (all channels)."""
    n, _, h, w = x.shape
    with torch.no_grad():
        clean = model(x).gather(1, target.view(-1, 1))[:, 0]
    total = torch.zeros(n, h, w, dtype=torch.float64)
    covers = torch.zeros(h, w, dtype=torch.float64)
    for top in starts(h, window[0], strides[0]):
        for left in starts(w, window[1], strides[1]):
            occluded = x.clone()
            occluded[:, :, top : top + window[0], left : left + window[1]] = fill
            with torch.no_grad():
                score = model(occluded).gather(1, target.view(-1, 1))[:, 0]
            drop = (clean - score).view(-1, 1, 1)
            total[:, top : top + window[0], left : left + window[1]] += drop
            covers[top : top + window[0], left : left + window[1]] += 1
    return (total / covers).unsqueeze(1).expand_as(x)


@pytest.mark.parametrize(
    ("window", "strides"),
    [((4, 4), (4, 4)), ((5, 5), (3, 3)), ((3, 5), (2, 5)), ((12, 12), (1, 1))],
)
def test_occlusion_matches_the_literal_loop(window, strides):
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    target = torch.tensor([1, 3])
    got = Occlusion(model, window=window, strides=strides, baseline=0.25, batch_size=7)(
        x, target=target
    )
    expected = literal_occlusion(model, x, target, window, strides, 0.25)
    torch.testing.assert_close(got.values, expected, rtol=0, atol=1e-12)
    positions = tuple(math.ceil((12 - w) / s) + 1 for w, s in zip(window, strides, strict=True))
    assert got.params["positions"] == positions
    assert got.delta is None


def test_occlusion_on_a_linear_model_with_one_feature_windows_is_w_times_x_minus_fill():
    model = LinearModel(n_in=7, n_out=2).double().eval()
    x = torch.randn(3, 7, dtype=torch.float64)
    got = Occlusion(model, window=1, strides=1, baseline=0.5)(x, target=1)
    w = model.linear.weight.detach()[1]
    torch.testing.assert_close(got.values, w * (x - 0.5), rtol=0, atol=1e-12)
    # windows of 3 features every 2: each feature gets the mean drop of the windows over it
    got = Occlusion(model, window=3, strides=2)(x, target=1)
    drops = torch.stack([(w * x)[:, s : s + 3].sum(1) for s in (0, 2, 4)], dim=1)  # 3 windows
    expected = torch.stack(
        [drops[:, [k for k in range(3) if 2 * k <= i < 2 * k + 3]].mean(1) for i in range(7)],
        dim=1,
    )
    torch.testing.assert_close(got.values, expected, rtol=0, atol=1e-12)


def test_occlusion_window_over_channels_too():
    model = GapCNN().double().eval()
    x = torch.randn(1, 3, 12, 12, dtype=torch.float64)
    got = Occlusion(model, window=(1, 6, 6), strides=(1, 6, 6))(x, target=0)
    # 3 x 2 x 2 disjoint windows: each feature's value is its own window's drop
    with torch.no_grad():
        clean = model(x)[0, 0]
        occluded = x.clone()
        occluded[:, 1, 6:, :6] = 0
        drop = clean - model(occluded)[0, 0]
    torch.testing.assert_close(got.values[0, 1, 6:, :6], drop.expand(6, 6))


def test_occlusion_with_a_per_sample_baseline_tensor_and_a_background():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    baseline = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    a = Occlusion(model, window=6, strides=6, baseline=baseline)(x, target=0)
    for i in range(2):
        single = Occlusion(model, window=6, strides=6, baseline=baseline[i])(x[i : i + 1], 0)
        torch.testing.assert_close(a.values[i : i + 1], single.values, rtol=0, atol=1e-12)
    both = Occlusion(model, window=6, strides=6, background=baseline)(x, target=0)
    each = [Occlusion(model, window=6, strides=6, baseline=b)(x, target=0).values for b in baseline]
    torch.testing.assert_close(both.values, torch.stack(each).mean(0), rtol=0, atol=1e-12)


def test_occlusion_agrees_with_captum():
    from captum.attr import Occlusion as CaptumOcclusion

    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    target = torch.tensor([0, 4])
    ours = Occlusion(model, window=5, strides=3, baseline=0.3)(x, target=target)
    peer = CaptumOcclusion(model).attribute(
        x, sliding_window_shapes=(3, 5, 5), strides=(3, 3, 3), baselines=0.3, target=target
    )
    assert_matches_peer(ours.values, peer, rel=1e-6)


@pytest.mark.parametrize(
    ("settings", "argument", "allowed"),
    [
        ({"window": 13}, "window", "at most the input's last dimensions (12, 12)"),
        ({"window": (3, 20)}, "window", "at most the input's last dimensions (12, 12)"),
        ({"window": 0}, "window", "positive int"),
        ({"window": (2, 2, 2, 2)}, "window", "at most 3 positive ints"),
        ({"window": 4, "strides": 5}, "strides", "at most the window"),
        ({"window": 4, "strides": (1, 2, 3)}, "strides", "tuple of 2 ints"),
    ],
)
def test_bad_windows_say_what_is_allowed(settings, argument, allowed):
    model = GapCNN().eval()
    with pytest.raises(SettingError, match=argument) as caught:
        Occlusion(model, **settings)(torch.randn(1, 3, 12, 12), target=0)
    assert allowed in str(caught.value)
    assert isinstance(caught.value, AttribError)


def test_occlusion_of_dict_inputs_slides_a_window_per_input():
    """Each input's windows are occluded with the others left as they are: every window of
    one input is a literal forward with that window zeroed (Captum's way for several
    inputs), with a window and strides per input."""
    model = TwoInputNet().eval()
    torch.manual_seed(3)
    x = {"image": torch.randn(2, 6), "extra": torch.randn(2, 3)}
    windows = {"image": 2, "extra": 1}
    got = Occlusion(model, window=windows, strides={"image": 2, "extra": 1})(x, target=1)
    full = model(**x)[:, 1]
    for key, size in windows.items():
        expected = torch.zeros_like(x[key])
        for start in range(0, x[key].shape[1], size):
            occluded = {**x, key: x[key].clone()}
            occluded[key][:, start : start + size] = 0
            drop = full - model(**occluded)[:, 1]
            expected[:, start : start + size] = drop.view(-1, 1)
        torch.testing.assert_close(got.values[key], expected, rtol=1e-5, atol=1e-6)
    assert got.params["perturbations"] == 3 + 3
    from captum.attr import Occlusion as CaptumOcclusion

    peer = CaptumOcclusion(lambda image, extra: model(image=image, extra=extra)).attribute(
        (x["image"], x["extra"]), sliding_window_shapes=((2,), (1,)), strides=((2,), (1,)), target=1
    )
    assert_matches_peer(got.values["image"], peer[0])
    assert_matches_peer(got.values["extra"], peer[1])


# ---- feature ablation ----------------------------------------------------------------------


def test_ablation_on_a_linear_model_is_w_times_x_minus_baseline():
    model = LinearModel(n_in=6, n_out=3).double().eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    baseline = torch.randn(6, dtype=torch.float64)
    got = FeatureAblation(model, baseline=baseline)(x, target=[0, 1, 2, 1])
    w = model.linear.weight.detach()[[0, 1, 2, 1]]
    torch.testing.assert_close(got.values, w * (x - baseline), rtol=0, atol=1e-12)


def test_ablation_with_groups_matches_the_literal_loop():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    mask = torch.randint(0, 5, (2, 1, 12, 12))  # one mask per sample, channels together
    got = FeatureAblation(model, feature_mask=mask, spread="copy", batch_size=3)(x, target=2)
    with torch.no_grad():
        clean = model(x)[:, 2]
        for j in range(5):
            drop = clean - model(x * (mask != j))[:, 2]
            for i in range(2):
                where = (mask[i, 0] == j).expand(3, 12, 12)
                if where.any():
                    torch.testing.assert_close(
                        got.values[i][where], drop[i].expand(int(where.sum()))
                    )
                assert math.isclose(float(got.params["player_values"][i, j]), float(drop[i]))


def test_ablation_agrees_with_captum():
    from captum.attr import FeatureAblation as CaptumAblation

    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    mask = grid(4)(x)  # (12, 12): 9 cells
    ours = FeatureAblation(model, feature_mask=mask, spread="copy", baseline=-0.5)(x, target=3)
    peer = CaptumAblation(model).attribute(
        x, feature_mask=mask.view(1, 1, 12, 12), baselines=-0.5, target=3
    )
    assert_matches_peer(ours.values, peer, rel=1e-6)
    divided = FeatureAblation(model, feature_mask=mask, baseline=-0.5)(x, target=3)
    assert_matches_peer(divided.values, peer / (3 * 4 * 4), rel=1e-6)


def test_ablation_on_dict_inputs_with_shared_labels():
    model = TwoInputNet().double().eval()
    x = {
        "image": torch.randn(2, 6, dtype=torch.float64),
        "extra": torch.randn(2, 3, dtype=torch.float64),
    }
    mask = {"image": torch.tensor([0, 0, 1, 1, 2, 2]), "extra": torch.tensor([2, 3, 3])}
    got = FeatureAblation(model, feature_mask=mask, spread="copy")(x, target=1)
    assert got.params["players"] == 4
    with torch.no_grad():
        clean = model(**x)[:, 1]
        removed = model(
            image=x["image"] * torch.tensor([1, 1, 1, 1, 0, 0]),
            extra=x["extra"] * torch.tensor([0, 1, 1]),
        )[:, 1]
    expected = clean - removed  # player 2 spans both inputs
    torch.testing.assert_close(got.values["image"][:, 4], expected)
    torch.testing.assert_close(got.values["extra"][:, 0], expected)

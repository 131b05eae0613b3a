"""Infidelity and max-sensitivity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of
Explanations").

- ``infidelity``: how well the attributions ``Phi`` predict the model's response to
  perturbations ``I`` drawn from a distribution ``mu_I``,

      INFD(Phi, f, x) = E_{I ~ mu_I} [ (I . Phi(x) - (f(x) - f(x - I)))^2 ],

  estimated from ``samples`` draws (lower is better). With ``normalize=True`` the attributions
  are first scaled by the ``beta`` that minimises it, ``beta = E[I.Phi d] / E[(I.Phi)^2]``
  with ``d = f(x) - f(x - I)`` (as Captum's ``normalize``), which makes it blind to the scale
  of the attributions. Perturbations: ``"gaussian"`` (the paper's noisy baseline,
  ``I ~ N(0, sigma^2)``), ``"square"`` (the paper's square removal: a random
  ``patch x patch`` square of the image set to 0, ``I = x * square``), a function
  ``perturbation(rows, sample, draw) -> I``, or the draws themselves, ``(N, samples, ...)``.
- ``max_sensitivity``: how much the explanation changes under small input perturbations,

      SENS_MAX(Phi, f, x, r) = max_{||y - x||_inf <= r} ||Phi(f, y) - Phi(f, x)||,

  estimated by the largest of ``samples`` draws ``y = x + U(-r, r)^d`` (lower is better);
  ``relative=True`` divides by ``||Phi(f, x)||`` (as Quantus).

Both run their rows through the core engine with the clean input as item 0 of each sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attrib.core.batching import Chunk, check_batch_size, run_chunks
from attrib.core.errors import InputError, SettingError
from attrib.core.hooks import prepared
from attrib.core.inputs import Model
from attrib.core.target import OutputSelector, Target, target_for_rows
from attrib.metrics._inputs import AttributionLike, check_positive_int, check_x, features
from attrib.metrics._random import check_seed, generator
from attrib.metrics._rows import Explainer, RowScores, Score, fixed_target, model_of, rows_per_call

__all__ = ["PerturbationFunction", "infidelity", "max_sensitivity"]

PerturbationFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``perturbation(rows, sample, draw) -> I``: the perturbation of clean rows ``x[sample]``
for draw ``draw`` (both ``(rows,)``); it must depend only on ``(sample, draw)`` and the rows."""


def _draws(
    perturbation: Any,
    x: torch.Tensor,
    samples: int,
    *,
    seed: int,
    sigma: float,
    patch: int | None,
) -> tuple[PerturbationFunction, int]:
    """The perturbation function and the number of draws per sample."""
    if isinstance(perturbation, torch.Tensor):
        given = perturbation.detach().to(device=x.device, dtype=x.dtype)
        if given.dim() != x.dim() + 1 or given.shape[0] != x.shape[0]:
            raise InputError(
                "perturbation",
                f"draws of shape (N, samples, *x.shape[1:]) = ({x.shape[0]}, samples, "
                f"{', '.join(map(str, x.shape[1:]))})",
                given,
                "",
            )
        if tuple(given.shape[2:]) != tuple(x.shape[1:]):
            raise InputError("perturbation", f"draws shaped like x {tuple(x.shape)}", given, "")
        return (lambda rows, sample, draw: given[sample, draw]), given.shape[1]
    samples = check_positive_int(samples, "samples")
    if callable(perturbation):
        return perturbation, samples
    if perturbation == "gaussian":
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or sigma <= 0:
            raise SettingError("sigma", "a positive standard deviation", sigma, "")

        def gaussian(rows: torch.Tensor, sample: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
            return sigma * _per_row(rows, sample, draw, seed, torch.randn)

        return gaussian, samples
    if perturbation == "square":
        if x.dim() != 4:
            raise SettingError("perturbation", "'gaussian' for non-image inputs", "square", "")
        h, w = x.shape[-2:]
        side = patch if patch is not None else max(1, min(h, w) // 4)
        side = check_positive_int(side, "patch")
        if side > min(h, w):
            raise SettingError("patch", f"a square side no larger than {min(h, w)}", side, "")

        def square(rows: torch.Tensor, sample: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros_like(rows)
            for r, (i, j) in enumerate(zip(sample.tolist(), draw.tolist(), strict=True)):
                g = generator(seed, i, j)
                top = int(torch.randint(h - side + 1, (), generator=g))
                left = int(torch.randint(w - side + 1, (), generator=g))
                mask[r, :, top : top + side, left : left + side] = 1
            return rows * mask

        return square, samples
    raise SettingError(
        "perturbation",
        "'gaussian', 'square', a function (rows, sample, draw) -> I, or a tensor of draws",
        perturbation,
        "",
    )


def _per_row(
    rows: torch.Tensor,
    sample: torch.Tensor,
    draw: torch.Tensor,
    seed: int,
    sampler: Callable[..., torch.Tensor],
) -> torch.Tensor:
    """One draw of ``sampler`` per row, each from its own ``(seed, sample, draw)`` generator."""
    out = [
        sampler(rows.shape[1:], generator=generator(seed, i, j), dtype=rows.dtype)
        for i, j in zip(sample.tolist(), draw.tolist(), strict=True)
    ]
    return torch.stack(out).to(rows.device)


def infidelity(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    attributions: AttributionLike,
    target: Target = None,
    *,
    perturbation: str | PerturbationFunction | torch.Tensor = "gaussian",
    samples: int = 32,
    sigma: float = 0.1,
    patch: int | None = None,
    normalize: bool = False,
    score: Score = "logit",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Infidelity per sample (Yeh et al. 2019); see the module docstring.

    ``attributions`` have the input's shape, or one value per location that applies to every
    channel. ``sigma`` is in the input's units. Costs ``ceil(N (samples + 1) / batch_size)``
    forwards (the extra row per sample is ``f(x)``).
    """
    x = check_x(x)
    feats = features(attributions, x)
    seed = check_seed(seed)
    check_batch_size(batch_size)
    draw, count = _draws(perturbation, x, samples, seed=seed, sigma=sigma, patch=patch)
    phi = feats.relevance.to(x.dtype)
    if feats.per_location:  # one value per location, the same for all channels
        phi = phi.view(x.shape[0], 1, *x.shape[2:]).expand_as(x).reshape(x.shape[0], -1)
    n = x.shape[0]
    scorer = RowScores(model, target, n, score, output)

    def evaluate(chunk: Chunk) -> dict[str, torch.Tensor]:
        rows = x[chunk.sample]
        perturbed = chunk.item > 0
        shifts = torch.zeros_like(rows)
        if bool(perturbed.any()):
            p = perturbed.to(rows.device)
            shifts[p] = draw(rows[p], chunk.sample[perturbed], chunk.item[perturbed] - 1).to(
                rows.dtype
            )
        dot = (shifts.flatten(1) * phi[chunk.sample]).sum(dim=1)
        return {"score": scorer(rows - shifts, chunk).double(), "dot": dot.double()}

    size = rows_per_call(x, n * (count + 1), batch_size)
    with prepared(model):
        kept = run_chunks(evaluate, n, count + 1, size, "keep", device=x.device)
    drop = kept["score"][:, :1] - kept["score"][:, 1:]  # f(x) - f(x - I)
    dot = kept["dot"][:, 1:]
    if normalize:
        numerator = (dot * drop).mean(dim=1, keepdim=True)
        denominator = (dot * dot).mean(dim=1, keepdim=True)
        beta = torch.where(denominator > 0, numerator / denominator, torch.ones_like(numerator))
        dot = beta * dot
    return (dot - drop).pow(2).mean(dim=1).cpu()


def max_sensitivity(
    method: Explainer,
    x: torch.Tensor,
    target: Target = None,
    *,
    radius: float = 0.2,
    samples: int = 50,
    relative: bool = False,
    perturbation: torch.Tensor | PerturbationFunction | None = None,
    model: Model | None = None,
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Max-sensitivity per sample (Yeh et al. 2019); see the module docstring.

    ``method`` is called on ``batch_size`` perturbed rows at a time (``ceil(N (samples + 1) /
    batch_size)`` calls; the extra row per sample is ``Phi(x)`` itself), always for the target
    decided at the clean input (``"predicted"`` costs one forward per chunk of ``x`` first).
    ``perturbation`` replaces the uniform draws: a function ``(rows, sample, draw) -> delta``
    or the draws ``(N, samples, ...)``. The norm is the Frobenius norm of the difference of the
    attributions' values.
    """
    x = check_x(x)
    seed = check_seed(seed)
    check_batch_size(batch_size)
    if not isinstance(radius, (int, float)) or isinstance(radius, bool) or radius < 0:
        raise SettingError("radius", "a radius >= 0 (in the input's units)", radius, "")
    r = float(radius)

    def uniform(rows: torch.Tensor, sample: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
        return r * (2 * _per_row(rows, sample, draw, seed, torch.rand) - 1)

    delta, count = _draws(
        uniform if perturbation is None else perturbation,
        x,
        samples,
        seed=seed,
        sigma=1.0,
        patch=None,
    )
    if isinstance(target, str):  # "predicted": decided once, at the clean input
        target = fixed_target(model_of(method, model), x, target, output, batch_size)
    n = x.shape[0]
    clean: dict[int, torch.Tensor] = {}

    def evaluate(chunk: Chunk) -> torch.Tensor:
        rows = x[chunk.sample].clone()
        perturbed = chunk.item > 0
        if bool(perturbed.any()):
            p = perturbed.to(rows.device)
            rows[p] = rows[p] + delta(rows[p], chunk.sample[perturbed], chunk.item[perturbed] - 1)
        result = method(rows, target=target_for_rows(target, chunk.sample))
        values = result.values.detach().flatten(1).double()
        out = torch.zeros(len(chunk), dtype=torch.float64, device=values.device)
        for r, (i, j) in enumerate(zip(chunk.sample.tolist(), chunk.item.tolist(), strict=True)):
            if j == 0:
                clean[i] = values[r]
            else:
                change = (values[r] - clean[i]).norm()
                out[r] = change / clean[i].norm() if relative else change
        return out

    size = rows_per_call(x, n * (count + 1), batch_size)
    kept = run_chunks(evaluate, n, count + 1, size, "keep", device=x.device)
    return kept[:, 1:].amax(dim=1).cpu()

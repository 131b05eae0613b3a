"""Axiom checks a user can run on any method and model (Sundararajan, Taly and Yan 2017,
"Axiomatic Attribution for Deep Networks"). Each returns the numbers, and says where the
axiom held within a tolerance.

- **Completeness**: ``sum_i A_i(x) = f(x) - f(x')`` for the baseline ``x'``.
- **Sensitivity (a)**: if ``x`` and ``x'`` differ (in one feature) and ``f(x) != f(x')``, the
  differing feature gets a non-zero attribution. Sundararajan et al.'s (2017)
  example:
  ``f(x) = 1 - ReLU(1 - x)`` at ``x = 2``, ``x' = 0``: ``f`` changes by 1, the gradient at
  ``x`` is 0, so gradient x input gives 0 and fails, while integrated gradients gives 1.
  With several differing features, we ask that some differing feature gets a non-zero one.
- **Symmetry preservation**: if swapping features ``i`` and ``j`` leaves ``f`` unchanged and
  ``x_i = x_j``, ``x'_i = x'_j``, then ``A_i = A_j`` (e.g. ``sigmoid(x1 + x2)`` at
  ``x1 = x2 = 1``). The check also measures the premise: ``max |f(z) - f(swap_ij z)|`` over
  random probes ``z``.
- **Implementation invariance**: two functionally equivalent models get identical
  attributions. The check also measures the premise: ``max |f_a(z) - f_b(z)|`` at ``x`` and
  random probes.

Methods are used through their call only (``method(x, target=...) -> Attribution``); the
implementation-invariance check builds one per model from a factory (a method class, or
``functools.partial(IntegratedGradients, steps=64)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attrib.core.batching import Chunk, check_batch_size, run_chunks
from attrib.core.errors import InputError, SettingError
from attrib.core.grad import batched_forward_scores
from attrib.core.inputs import Model
from attrib.core.target import OutputSelector, Target
from attrib.metrics._inputs import check_positive_int, check_x
from attrib.metrics._random import check_seed, generator
from attrib.metrics._rows import (
    Explainer,
    RowScores,
    explain,
    fixed_target,
    model_of,
    rows_per_call,
)

__all__ = [
    "CompletenessResult",
    "ImplementationInvarianceResult",
    "SensitivityResult",
    "SymmetryResult",
    "completeness",
    "implementation_invariance",
    "sensitivity",
    "symmetry_preservation",
]


def _baseline(baseline: Any, x: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach().to(device=x.device, dtype=x.dtype)
        if b.shape == x.shape:
            return b
        if b.shape == x.shape[1:] or b.dim() == 0:
            return b.expand_as(x).clone()
    raise InputError(
        name,
        f"a number or a tensor of the input's shape {tuple(x.shape)} (or one sample's)",
        baseline,
        "",
    )


def _scores(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    target: Target,
    output: OutputSelector,
    batch_size: int | None,
) -> torch.Tensor:
    scores, _, _ = batched_forward_scores(model, x, target, output, batch_size)
    return scores.double()


def _total(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).double().sum(dim=1)


@dataclass(frozen=True)
class CompletenessResult:
    """``total = sum_i A_i``, ``expected = f(x) - f(x')``, ``gap = total - expected``."""

    total: torch.Tensor
    expected: torch.Tensor
    gap: torch.Tensor

    @property
    def relative_gap(self) -> torch.Tensor:
        """``|gap| / |expected|`` per sample (inf where ``expected`` is 0 and the gap is not)."""
        return self.gap.abs() / self.expected.abs()

    def holds(self, rtol: float = 1e-2, atol: float = 1e-6) -> torch.Tensor:
        """Per sample: ``|gap| <= atol + rtol |expected|``."""
        return self.gap.abs() <= atol + rtol * self.expected.abs()


def completeness(
    method: Explainer,
    x: torch.Tensor,
    target: Target = None,
    *,
    baseline: Any = None,
    model: Model | None = None,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> CompletenessResult:
    """Completeness of ``method`` at ``x``: ``sum_i A_i(x)`` against ``f(x) - f(x')``.

    ``baseline`` ``x'`` defaults to the one the method reports (``Attribution.baseline``), or
    0 where it reports none (gradient x input's implicit baseline). Methods with several
    baselines (averaged) are compared with the mean of ``f`` over them.
    """
    x = check_x(x)
    check_batch_size(batch_size)
    model = model_of(method, model)
    target = fixed_target(model, x, target, output, batch_size)
    result = method(x, target=target)
    total = _total(_values(result))
    spec = baseline if baseline is not None else result.baseline
    specs = spec if isinstance(spec, (list, tuple)) else [spec if spec is not None else 0.0]
    start = torch.stack(
        [_scores(model, _baseline(s, x), target, output, batch_size) for s in specs]
    ).mean(dim=0)
    expected = _scores(model, x, target, output, batch_size) - start
    return CompletenessResult(total.cpu(), expected.cpu(), (total - expected).cpu())


def _values(result: Any) -> torch.Tensor:
    values = getattr(result, "values", None)
    if not isinstance(values, torch.Tensor):
        raise SettingError("method", "a method whose Attribution holds one tensor", result, "")
    return values.detach()


@dataclass(frozen=True)
class SensitivityResult:
    """Sensitivity (a) per sample.

    Attributes:
        output_change: ``f(x) - f(x')``.
        differing: ``(N, ...)`` bool, the features where ``x != x'``.
        attribution: ``sum`` of ``|A_i|`` over the differing features.
        violated: ``|output_change| > atol`` and ``attribution <= atol``.
    """

    output_change: torch.Tensor
    differing: torch.Tensor
    attribution: torch.Tensor
    violated: torch.Tensor


def sensitivity(
    method: Explainer,
    x: torch.Tensor,
    baseline: Any,
    target: Target = None,
    *,
    atol: float = 1e-6,
    model: Model | None = None,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> SensitivityResult:
    """Sensitivity (a) of ``method`` for inputs ``x`` against ``baseline`` ``x'``.

    The method must be configured with the same baseline where it has one
    (``IntegratedGradients(model, baseline=...)``); gradient x input's is 0.
    """
    x = check_x(x)
    model = model_of(method, model)
    start = _baseline(baseline, x)
    target = fixed_target(model, x, target, output, batch_size)
    change = _scores(model, x, target, output, batch_size) - _scores(
        model, start, target, output, batch_size
    )
    values, _ = explain(method, x, target, batch_size)
    differing = x != start
    mass = (values.abs().double() * differing).flatten(1).sum(dim=1)
    violated = (change.abs() > atol) & (mass <= atol)
    return SensitivityResult(change.cpu(), differing.cpu(), mass.cpu(), violated.cpu())


@dataclass(frozen=True)
class SymmetryResult:
    """Symmetry preservation per sample and pair.

    Attributes:
        pairs: the pairs checked, as flat feature indices ``(P, 2)``.
        difference: ``(N, P)`` ``|A_i - A_j|``.
        scale: ``(N,)`` the largest ``|A|`` of each sample (to read ``difference`` against).
        applies: ``(N, P)`` bool, ``x_i = x_j`` and ``x'_i = x'_j`` (where the axiom applies).
        model_asymmetry: ``(P,)`` ``max |f(z) - f(swap_ij z)|`` over the probes: 0 when the
            model is symmetric in the pair, the axiom's premise.
    """

    pairs: torch.Tensor
    difference: torch.Tensor
    scale: torch.Tensor
    applies: torch.Tensor
    model_asymmetry: torch.Tensor

    def holds(self, rtol: float = 1e-6, atol: float = 1e-8) -> torch.Tensor:
        """``(N, P)``: the difference is within ``atol + rtol * scale`` (where it applies)."""
        bound = atol + rtol * self.scale.view(-1, 1)
        return (self.difference <= bound) | ~self.applies


def _flat_pairs(pairs: Sequence[Any], shape: tuple[int, ...]) -> torch.Tensor:
    size = 1
    for s in shape:
        size *= s
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise SettingError("pairs", "pairs of feature indices (i, j)", pair, "")
        flat = []
        for index in pair:
            if isinstance(index, int) and not isinstance(index, bool):
                position = index
            elif isinstance(index, (tuple, list)) and len(index) == len(shape):
                position = 0
                for i, s in zip(index, shape, strict=True):
                    position = position * s + int(i)
            else:
                raise SettingError(
                    "pairs",
                    f"flat feature indices or index tuples of one sample's shape {shape}",
                    pair,
                    "",
                )
            if not 0 <= position < size:
                raise SettingError("pairs", f"indices inside one sample ({size} features)", pair)
            flat.append(position)
        out.append(flat)
    if not out:
        raise SettingError("pairs", "at least one pair", pairs, "")
    return torch.tensor(out, dtype=torch.long)


def symmetry_preservation(
    method: Explainer,
    x: torch.Tensor,
    pairs: Sequence[Any],
    target: Target = None,
    *,
    baseline: Any = 0.0,
    probes: int = 16,
    model: Model | None = None,
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> SymmetryResult:
    """Symmetry preservation of ``method`` for feature ``pairs`` (flat indices or index tuples).

    Probes ``z`` are drawn uniformly between each feature's min and max over ``x`` and the
    baseline; the model is scored at ``z`` and at ``z`` with each pair swapped, through the
    core engine (``ceil(probes * (P + 1) / batch_size)`` forwards).
    """
    x = check_x(x)
    seed = check_seed(seed)
    probes = check_positive_int(probes, "probes")
    model = model_of(method, model)
    flat = _flat_pairs(pairs, tuple(x.shape[1:]))
    start = _baseline(baseline, x).flatten(1)
    target = fixed_target(model, x, target, output, batch_size)
    values, _ = explain(method, x, target, batch_size)
    a = values.flatten(1).double()
    i, j = flat[:, 0], flat[:, 1]
    difference = (a[:, i] - a[:, j]).abs()
    xs = x.flatten(1)
    applies = (xs[:, i] == xs[:, j]) & (start[:, i] == start[:, j])
    asymmetry = _asymmetry(model, x, start, flat, target, probes, output, batch_size, seed)
    scale = a.abs().amax(dim=1)
    return SymmetryResult(flat, difference.cpu(), scale.cpu(), applies.cpu(), asymmetry.cpu())


def _asymmetry(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    start: torch.Tensor,
    flat: torch.Tensor,
    target: Target,
    probes: int,
    output: OutputSelector,
    batch_size: int | None,
    seed: int,
) -> torch.Tensor:
    """``max |f(z) - f(swap z)|`` per pair over ``probes`` random points.

    Row ``(probe k, item 0)`` is ``z_k``, row ``(k, p + 1)`` is ``z_k`` with pair ``p``
    swapped; probes use sample ``k mod N``'s target.
    """
    both = torch.cat([x.flatten(1), start])
    low, high = both.amin(dim=0), both.amax(dim=0)
    n, n_pairs = x.shape[0], flat.shape[0]
    probe_target = target
    if isinstance(target, torch.Tensor) and target.dim() == 1:
        probe_target = target[torch.arange(probes) % n]
    elif isinstance(target, (list, tuple)):
        probe_target = [target[k % n] for k in range(probes)]
    scorer = RowScores(model, probe_target, probes, "logit", output)

    def evaluate(chunk: Chunk) -> torch.Tensor:
        rows = []
        for k, item in zip(chunk.sample.tolist(), chunk.item.tolist(), strict=True):
            u = torch.rand(low.shape, generator=generator(seed, k), dtype=torch.float64)
            z = (low + (high - low) * u.to(low.device)).to(x.dtype)
            if item > 0:
                a, b = flat[item - 1].tolist()
                z[a], z[b] = z[b].clone(), z[a].clone()
            rows.append(z)
        return scorer(torch.stack(rows).view(len(chunk), *x.shape[1:]), chunk).double()

    size = rows_per_call(x, probes * (n_pairs + 1), batch_size)
    kept = run_chunks(evaluate, probes, n_pairs + 1, size, "keep", device=x.device)
    return (kept[:, 1:] - kept[:, :1]).abs().amax(dim=0)


@dataclass(frozen=True)
class ImplementationInvarianceResult:
    """Implementation invariance per sample.

    Attributes:
        difference: ``max_i |A_i^a - A_i^b|``.
        scale: ``max_i |A_i^a|``.
        output_difference: ``max |f_a(z) - f_b(z)|`` over ``x`` and the probes: 0 when the
            models are functionally equivalent, the axiom's premise.
    """

    difference: torch.Tensor
    scale: torch.Tensor
    output_difference: torch.Tensor

    def holds(self, rtol: float = 1e-5, atol: float = 1e-7) -> torch.Tensor:
        return self.difference <= atol + rtol * self.scale


def implementation_invariance(
    make_method: Callable[[Model], Explainer],
    model_a: nn.Module | Callable[..., Any],
    model_b: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    target: Target = None,
    *,
    probes: int = 16,
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> ImplementationInvarianceResult:
    """Attributions of ``make_method(model_a)`` and ``make_method(model_b)`` at ``x``.

    The target is decided on ``model_a`` at ``x``. The premise is checked at ``x`` and at
    ``probes`` points drawn uniformly in the per-feature range of ``x`` (widened to at least
    [-1, 1] around it).
    """
    x = check_x(x)
    seed = check_seed(seed)
    probes = check_positive_int(probes, "probes")
    if not callable(make_method):
        raise SettingError("make_method", "a method class or factory model -> method", None)
    target = fixed_target(model_a, x, target, output, batch_size)
    values_a, _ = explain(make_method(model_a), x, target, batch_size)
    values_b, _ = explain(make_method(model_b), x, target, batch_size)
    if values_a.shape != values_b.shape:
        raise SettingError("make_method", "methods giving attributions of one shape", None)
    a = values_a.flatten(1).double()
    difference = (a - values_b.flatten(1).double()).abs().amax(dim=1)
    scale = a.abs().amax(dim=1)
    flat = x.flatten(1)
    centre = flat.mean(dim=0)
    half = ((flat.amax(dim=0) - flat.amin(dim=0)) / 2).clamp(min=1.0)
    u = torch.rand((probes, flat.shape[1]), generator=generator(seed, 0), dtype=torch.float64)
    z = (centre + half * (2 * u.to(x.device) - 1)).to(x.dtype).view(probes, *x.shape[1:])
    points = torch.cat([x, z])
    point_target = target
    if isinstance(target, torch.Tensor) and target.dim() == 1:
        point_target = torch.cat([target, target[torch.arange(probes) % x.shape[0]]])
    elif isinstance(target, (list, tuple)):
        point_target = [*target, *(target[k % x.shape[0]] for k in range(probes))]
    fa = _scores(model_a, points, point_target, output, batch_size)
    fb = _scores(model_b, points, point_target, output, batch_size)
    output_difference = (fa - fb).abs().amax()
    return ImplementationInvarianceResult(
        difference.cpu(), scale.cpu(), output_difference.expand(x.shape[0]).cpu()
    )

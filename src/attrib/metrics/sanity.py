"""Sanity checks (Adebayo et al. 2018, "Sanity Checks for Saliency Maps") and the random-logit
test (Sixt et al. 2020, "When Explanations Lie: Why Many Modified BP Attributions Fail").

**Model parameter randomization.** An explanation that explains the *model* must change when
the model's learned parameters are replaced by random ones. Layers are randomized from the top
(the logits) down, either *cascading* (layers 1..k randomized at step k) or *independent*
(only layer k at step k), and each step's explanation is compared with the original one by
Spearman rank correlation of the absolute maps (``spearman_abs``) and of the signed maps
(``spearman``), SSIM and HOG similarity (``attrib.metrics.similarity``). The paper's finding:
gradients and Grad-CAM decorrelate as layers are randomized; guided backpropagation (and
other modified-backprop methods) barely do, so they cannot be explaining the model's
decision.

Parameters are changed only inside ``attrib.core.hooks.params_overridden``, which restores
them in ``finally``: the user's model is never copied and never left changed. New values are
drawn without touching the model (``draw_parameters``: the layer's own initialisation on a
throw-away copy of that one layer, under a forked, seeded RNG).

Maps: ``spearman_abs`` uses ``sum_c |A_c|`` per location; ``spearman``, ``ssim`` and ``hog``
use the signed ``sum_c A_c`` (the paper computes SSIM and HOG "without absolute values"), each
map divided by its largest ``|value|`` so that scale changes (which randomization causes) do
not count as structure. Maps without a channel dimension (CAM maps) are used as they are.
By default the measures are those the maps fit: SSIM needs maps of at least 7 x 7 (its
window), HOG at least ``HOG_MIN_SIDE`` = 24 x 24 (one block of 3 x 3 cells of 8 pixels).

A map that randomization makes constant (Grad-CAM's ReLU of a class score that no longer
depends on the layer, a zero gradient) has no rank order: its rank and HOG similarities to
the original are 0 (``attrib.metrics.similarity``), and ``RandomizationResult.constant`` says
which maps were constant, so that figures and reports can say so.

**Random logit.** An explanation of class ``c`` should differ from one of another class: the
similarity (SSIM by default) between the explanation of the target and of a uniformly drawn
other class, per sample (lower is better).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attrib.core.batching import check_batch_size
from attrib.core.errors import SettingError, TargetError
from attrib.core.grad import batched_forward_scores
from attrib.core.hooks import params_overridden
from attrib.core.inputs import Model
from attrib.core.layers import resolve_layer
from attrib.core.target import OutputSelector, Target, select_output
from attrib.metrics._inputs import check_x
from attrib.metrics._random import check_seed, row_seed
from attrib.metrics._rows import Explainer, explain, fixed_target, model_of
from attrib.metrics.similarity import HOG_MIN_SIDE, constant_maps, hog_similarity, spearman, ssim

__all__ = [
    "MEASURES",
    "RandomizationResult",
    "cascading_steps",
    "draw_parameters",
    "model_randomization",
    "random_logit",
    "randomizable_layers",
    "randomization_similarity",
]

MEASURES = ("spearman_abs", "spearman", "ssim", "hog")
Init = str | Callable[[str, torch.Tensor, torch.Generator], torch.Tensor]


def randomizable_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules that own parameters, top (output) layer first.

    The order is the reverse of ``model.named_modules()``, which follows the forward order in
    sequential models and torchvision classifiers; pass ``layers=`` where it does not.
    """
    names = [
        name
        for name, module in model.named_modules()
        if name and any(True for _ in module.parameters(recurse=False))
    ]
    if not names:
        raise SettingError("model", "a model with parameters to randomize", type(model).__name__)
    return names[::-1]


def draw_parameters(
    model: nn.Module,
    layers: Sequence[str],
    *,
    seed: int = 0,
    init: Init = "default",
) -> list[dict[str, torch.Tensor]]:
    """New values for the parameters of each layer, by full dotted name; the model is unchanged.

    ``init``:
    - ``"default"``: the layer's own ``reset_parameters()`` (PyTorch's initialisation, as
      Quantus), run on a copy of that layer alone, under ``torch.random.fork_rng`` seeded with
      ``(seed, k)`` for the ``k``-th layer of ``layers``. Layers without ``reset_parameters``
      fall back to ``"normal"``.
    - ``"normal"``: a normal distribution truncated at two standard deviations, with the
      standard deviation of the original parameter (Adebayo et al. re-initialise from a
      truncated normal).
    - a function ``(name, parameter, generator) -> tensor``.
    """
    seed = check_seed(seed)
    out = []
    for k, name in enumerate(layers):
        module = resolve_layer(model, name)
        params = dict(module.named_parameters(recurse=False))
        if not params:
            raise SettingError("layers", "layers that own parameters", name, "")
        layer_seed = row_seed(seed, k)
        if init == "default" and hasattr(module, "reset_parameters"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(layer_seed)
                fresh = copy.deepcopy(module)
                fresh.reset_parameters()  # type: ignore[operator]  # checked by hasattr
            drawn = {p: v.detach() for p, v in fresh.named_parameters(recurse=False)}
        elif init in ("default", "normal") or callable(init):
            g = torch.Generator().manual_seed(layer_seed)
            drawn = {}
            for p, value in params.items():
                if callable(init) and not isinstance(init, str):
                    new = init(f"{name}.{p}", value.detach(), g)
                else:
                    new = _truncated_normal(value.detach(), g)
                drawn[p] = new
        else:
            raise SettingError("init", "'default', 'normal' or a function", init, "")
        out.append({f"{name}.{p}": v for p, v in drawn.items()})
    return out


def _truncated_normal(value: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    std = float(value.float().std()) if value.numel() > 1 else 0.0
    std = std if std > 0 else 0.01
    draw = torch.randn(value.shape, generator=g, dtype=torch.float64)
    while bool((draw.abs() > 2).any()):  # redraw the tails
        tail = draw.abs() > 2
        draw[tail] = torch.randn(int(tail.sum()), generator=g, dtype=torch.float64)
    return (draw * std).to(device=value.device, dtype=value.dtype)


@dataclass(frozen=True)
class RandomizationResult:
    """Similarity of the explanations at each randomization step to the original ones.

    Attributes:
        method: the method's name.
        mode: ``"cascading"``, ``"independent"`` or ``"custom"``.
        steps: ``("original", *labels)``: ``"original"`` compares a second explanation of the
            unchanged model (1 for a deterministic method; the noise floor of a random one).
        similarity: measure -> ``(steps, N)`` per-sample similarities.
        maps: ``(steps, K, ...)`` the signed maps of the first ``K`` samples, for drawing.
        constant: ``(steps, N)`` booleans: the map of that sample at that step (step 0: the
            original) has the same magnitude everywhere, so no rank order: its rank and HOG
            similarities are defined (0 against a map with an order), not measured.
    """

    method: str
    mode: str
    steps: tuple[str, ...]
    similarity: dict[str, torch.Tensor]
    maps: torch.Tensor | None = None
    constant: torch.Tensor | None = None

    def mean(self, measure: str = "spearman_abs") -> torch.Tensor:
        """Mean over samples per step (NaNs left out)."""
        return self.similarity[measure].nanmean(dim=1)

    def sem(self, measure: str = "spearman_abs") -> torch.Tensor:
        """Standard error of the mean over samples per step."""
        return _sem(self.similarity[measure])


def _sem(values: torch.Tensor) -> torch.Tensor:
    valid = ~torch.isnan(values)
    count = valid.sum(dim=-1).double()
    mean = values.nanmean(dim=-1, keepdim=True)
    squares = torch.where(valid, (values - mean) ** 2, torch.zeros_like(values)).sum(dim=-1)
    return (squares / (count - 1).clamp(min=1)).sqrt() / count.clamp(min=1).sqrt()


def _maps(values: torch.Tensor, channel_dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute and signed maps, as ``Attribution.saliency("abs_sum")`` and ``("sum")``."""
    values = values.double()
    if channel_dim is None or values.dim() < 3:
        return values.abs(), values
    return values.abs().sum(dim=channel_dim), values.sum(dim=channel_dim)


def _unit(maps: torch.Tensor) -> torch.Tensor:
    scale = maps.flatten(1).abs().amax(dim=1).clamp(min=1e-300)
    return maps / scale.view(-1, *([1] * (maps.dim() - 1)))


_MIN_SIDE = {"ssim": 7, "hog": HOG_MIN_SIDE}
"""The smallest 2-D maps each image measure takes: SSIM's 7 x 7 window, one HOG block."""


def _measures(requested: Sequence[str] | None, maps: torch.Tensor) -> tuple[str, ...]:
    side = min(maps.shape[1:]) if maps.dim() == 3 else 0
    if requested is None:
        return tuple(m for m in MEASURES if side >= _MIN_SIDE.get(m, 0))
    for m in requested:
        if m not in MEASURES:
            raise SettingError("measures", f"names from {MEASURES}", m, "")
        if side < _MIN_SIDE.get(m, 0):
            least = _MIN_SIDE[m]
            shape = tuple(maps.shape[1:])
            raise SettingError(
                "measures",
                f"{m!r} only for 2-D maps of at least {least} x {least} (these are {shape})",
                m,
                "Leave measures to its default: the measures the maps fit.",
            )
    return tuple(requested)


def _compare(
    measures: Sequence[str], original: tuple[torch.Tensor, torch.Tensor], other: tuple
) -> dict[str, torch.Tensor]:
    out = {}
    for m in measures:
        if m == "spearman_abs":
            out[m] = spearman(original[0], other[0])
        elif m == "spearman":
            out[m] = spearman(original[1], other[1])
        elif m == "ssim":
            out[m] = ssim(_unit(original[1]), _unit(other[1]))
        else:
            out[m] = hog_similarity(_unit(original[1]), _unit(other[1]))
    return out


def randomization_similarity(
    method: Explainer,
    x: torch.Tensor,
    target: Target,
    steps: Sequence[tuple[str, Mapping[str, torch.Tensor]]],
    *,
    model: Model | None = None,
    mode: str = "custom",
    measures: Sequence[str] | None = None,
    keep_maps: int = 2,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> RandomizationResult:
    """The functional core of the randomization test: explicit parameter values per step.

    ``steps`` is a list of ``(label, overrides)``; at each step the model's parameters named
    in ``overrides`` (full dotted names) take those values, inside ``params_overridden``, and
    the method explains ``x`` for the target decided on the original model.
    """
    x = check_x(x)
    check_batch_size(batch_size)
    model = model_of(method, model)
    if not isinstance(model, nn.Module):
        raise SettingError("model", "an nn.Module (its parameters are randomized)", model, "")
    target = fixed_target(model, x, target, output, batch_size)
    values, channel_dim = explain(method, x, target, batch_size)
    original = _maps(values, channel_dim)
    chosen = _measures(measures, original[1])
    again, _ = explain(method, x, target, batch_size)
    results = [_compare(chosen, original, _maps(again, channel_dim))]
    kept = [original[1][:keep_maps]]
    constant = [constant_maps(original[0])]
    labels = ["original"]
    for label, overrides in steps:
        with params_overridden(model, overrides):
            changed, _ = explain(method, x, target, batch_size)
        maps = _maps(changed, channel_dim)
        results.append(_compare(chosen, original, maps))
        kept.append(maps[1][:keep_maps])
        constant.append(constant_maps(maps[0]))
        labels.append(label)
    similarity = {m: torch.stack([r[m] for r in results]).cpu() for m in chosen}
    name = getattr(method, "name", type(method).__name__)
    maps_out = torch.stack(kept).cpu() if keep_maps > 0 else None
    flat = torch.stack(constant).cpu()
    return RandomizationResult(name, mode, tuple(labels), similarity, maps_out, flat)


def cascading_steps(
    model: nn.Module, checkpoints: int = 6, seed: int = 0
) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Cascading randomization of *every* layer (Adebayo et al. 2018), looked at after
    ``checkpoints`` of them: step ``k`` randomizes all layers from the top down to its label.

    Randomizing every layer but explaining only at a few depths keeps the test faithful to
    the paper (nothing below the top is left trained by accident) at a fraction of its cost.
    """
    layers = randomizable_layers(model)
    drawn = draw_parameters(model, layers, seed=seed)
    count = max(1, min(checkpoints, len(layers)))
    picks = sorted({round(k * (len(layers) - 1) / max(1, count - 1)) for k in range(count)})
    steps = []
    cumulative: dict[str, torch.Tensor] = {}
    done = 0
    for pick in picks:
        for values in drawn[done : pick + 1]:
            cumulative.update(values)
        done = pick + 1
        steps.append((f"…{layers[pick]}", dict(cumulative)))
    return steps


def model_randomization(
    method: Explainer,
    x: torch.Tensor,
    target: Target = None,
    *,
    mode: str = "cascading",
    layers: Sequence[str] | None = None,
    seed: int = 0,
    init: Init = "default",
    model: Model | None = None,
    measures: Sequence[str] | None = None,
    keep_maps: int = 2,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> RandomizationResult:
    """Model parameter randomization test (Adebayo et al. 2018), cascading or independent.

    ``layers`` (dotted names, top first) default to every module that owns parameters, from
    the output down. The model is the method's (``method.model``) unless given; it is left
    exactly as it was. Costs ``len(layers) + 2`` explanations of ``x``.
    """
    if mode not in ("cascading", "independent"):
        raise SettingError("mode", "'cascading' or 'independent'", mode, "")
    model = model_of(method, model)
    if not isinstance(model, nn.Module):
        raise SettingError(
            "model",
            "an nn.Module (model randomization draws new values for its parameters)",
            model,
            "Pass the module itself, not a function of it.",
        )
    names = list(layers) if layers is not None else randomizable_layers(model)
    drawn = draw_parameters(model, names, seed=seed, init=init)
    steps = []
    cumulative: dict[str, torch.Tensor] = {}
    for name, values in zip(names, drawn, strict=True):
        if mode == "cascading":
            cumulative = {**cumulative, **values}
            steps.append((name, cumulative))
        else:
            steps.append((name, values))
    return randomization_similarity(
        method,
        x,
        target,
        steps,
        model=model,
        mode=mode,
        measures=measures,
        keep_maps=keep_maps,
        output=output,
        batch_size=batch_size,
    )


def random_logit(
    method: Explainer,
    x: torch.Tensor,
    target: Target = "predicted",
    *,
    other: torch.Tensor | Sequence[int] | None = None,
    similarity: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "ssim",
    model: Model | None = None,
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Similarity of the explanation of the target and of a random other class, per sample.

    ``other`` gives the other classes (one per sample); by default each is drawn uniformly
    from the classes other than the target, with ``seed``. ``similarity`` is a measure name
    (see ``MEASURES``) or a function of two batches of signed maps. Lower is better.
    """
    x = check_x(x)
    seed = check_seed(seed)
    model = model_of(method, model)
    _, out, resolved = batched_forward_scores(model, x, target, output, batch_size)
    if resolved.indices is None:
        raise TargetError("target", "class indices (or 'predicted')", target, "")
    classes = resolved.indices.cpu()
    n_classes = select_output(out, output).shape[1]
    if n_classes < 2:
        raise SettingError("model", "a model with at least two classes", n_classes, "")
    if other is None:
        g = torch.Generator().manual_seed(row_seed(seed, 0))
        shift = torch.randint(1, n_classes, (x.shape[0],), generator=g)
        other = (classes + shift) % n_classes
    else:
        other = torch.as_tensor(other, dtype=torch.long).cpu()
        if other.shape != classes.shape or bool((other == classes).any()):
            raise TargetError("other", "one class per sample, differing from the target", other)
        if bool(((other < 0) | (other >= n_classes)).any()):
            raise TargetError("other", f"classes in [0, {n_classes})", other, "")
    own, channel_dim = explain(method, x, classes.to(x.device), batch_size)
    theirs, _ = explain(method, x, other.to(x.device), batch_size)
    a, b = _maps(own, channel_dim), _maps(theirs, channel_dim)
    if callable(similarity):
        return similarity(a[1], b[1])
    chosen = _measures([similarity], a[1])
    return _compare(chosen, a, b)[similarity].cpu()

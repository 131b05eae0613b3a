"""``compare(model, x, methods, metrics)``: one table of methods by metrics.

Each method explains the batch once (``batch_size`` samples per call); each metric turns
that into one number per sample; the table holds their mean and standard error
(``sd / sqrt(n)``, NaNs left out) and says for each metric whether higher or lower is better.

Metrics are given by name (``METRICS``) or as ``(name, function, direction)`` with
``function(evaluation) -> (N,) tensor`` taking an ``Evaluation`` (the model, the batch, the
target fixed at the clean inputs, the method and its attribution, the masks). Built-in
metrics run with their papers' defaults; where an attribution must become one map per
location (curves, localization), ``maps=`` says how (``Attribution.saliency``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.metrics import axioms, faithfulness, infidelity, localization, sanity
from attrib.metrics._inputs import check_x
from attrib.metrics._random import check_seed
from attrib.metrics._rows import Explainer, explain, fixed_target

__all__ = ["METRICS", "ComparisonTable", "Evaluation", "compare"]


@dataclass(frozen=True)
class Evaluation:
    """What a metric of ``compare`` may use."""

    model: nn.Module | Callable[..., Any]
    x: torch.Tensor
    target: Any
    method: Explainer | None
    attribution: Attribution
    masks: torch.Tensor | None = None
    maps: str = "max_abs"
    output: OutputSelector = None
    batch_size: int | None = None
    seed: int = 0
    steps: int | None = None
    """Points of the deletion, insertion and pixel-flipping curves (``None``: the metric's
    default, ``min(features, 100)``)."""

    def location_maps(self) -> torch.Tensor:
        """One map per location: ``attribution.saliency(maps)``."""
        return self.attribution.saliency(self.maps).detach()

    def need_method(self, metric: str) -> Explainer:
        """The method itself, for metrics that explain again (randomized models, noise)."""
        if self.method is None:
            raise SettingError(metric, "the method (it explains again: pass methods=)", None, "")
        return self.method

    def need_masks(self, metric: str) -> torch.Tensor:
        if self.masks is None:
            raise SettingError(metric, "ground-truth masks (compare(..., masks=...))", None, "")
        return self.masks


def _curve_kwargs(ev: Evaluation) -> dict[str, Any]:
    return {"output": ev.output, "batch_size": ev.batch_size, "seed": ev.seed}


def _steps(ev: Evaluation, maps: torch.Tensor) -> int | None:
    """The evaluation's curve points, at most one per feature of the maps."""
    if ev.steps is None:
        return None
    return min(ev.steps, maps[0].numel())


def _deletion(ev: Evaluation) -> torch.Tensor:
    maps = ev.location_maps()
    return faithfulness.deletion(
        ev.model, ev.x, maps, ev.target, steps=_steps(ev, maps), **_curve_kwargs(ev)
    ).area()


def _insertion(ev: Evaluation) -> torch.Tensor:
    maps = ev.location_maps()
    return faithfulness.insertion(
        ev.model, ev.x, maps, ev.target, steps=_steps(ev, maps), **_curve_kwargs(ev)
    ).area()


def _flipping(order: Literal["morf", "lerf"]) -> Callable[[Evaluation], torch.Tensor]:
    def metric(ev: Evaluation) -> torch.Tensor:
        maps = ev.location_maps()
        curve = faithfulness.pixel_flipping(
            ev.model,
            ev.x,
            maps,
            ev.target,
            order=order,
            steps=_steps(ev, maps),
            **_curve_kwargs(ev),
        )
        return curve.aopc()

    return metric


def _road(order: Literal["morf", "lerf"]) -> Callable[[Evaluation], torch.Tensor]:
    def metric(ev: Evaluation) -> torch.Tensor:
        maps = ev.location_maps()
        curve = faithfulness.road(ev.model, ev.x, maps, ev.target, order=order, **_curve_kwargs(ev))
        return curve.area()

    return metric


def _infidelity(ev: Evaluation) -> torch.Tensor:
    return infidelity.infidelity(ev.model, ev.x, ev.attribution, ev.target, **_curve_kwargs(ev))


def _max_sensitivity(ev: Evaluation) -> torch.Tensor:
    return infidelity.max_sensitivity(
        ev.need_method("max_sensitivity"), ev.x, ev.target, model=ev.model, **_curve_kwargs(ev)
    )


def _completeness(ev: Evaluation) -> torch.Tensor:
    result = axioms.completeness(
        ev.need_method("completeness"),
        ev.x,
        ev.target,
        model=ev.model,
        output=ev.output,
        batch_size=ev.batch_size,
    )
    return result.relative_gap


def _localization(function: Callable[..., torch.Tensor]) -> Callable[[Evaluation], torch.Tensor]:
    def metric(ev: Evaluation) -> torch.Tensor:
        return function(ev.location_maps(), ev.need_masks(function.__name__))

    return metric


def _random_logit(ev: Evaluation) -> torch.Tensor:
    return sanity.random_logit(
        ev.need_method("random_logit"),
        ev.x,
        ev.target,
        model=ev.model,
        output=ev.output,
        batch_size=ev.batch_size,
        seed=ev.seed,
    )


def _randomization(ev: Evaluation) -> torch.Tensor:
    result = sanity.model_randomization(
        ev.need_method("model_randomization"),
        ev.x,
        ev.target,
        model=ev.model,
        measures=["spearman_abs"],
        keep_maps=0,
        output=ev.output,
        batch_size=ev.batch_size,
        seed=ev.seed,
    )
    return result.similarity["spearman_abs"][-1]


METRICS: dict[str, tuple[Callable[[Evaluation], torch.Tensor], str]] = {
    "deletion": (_deletion, "lower"),
    "insertion": (_insertion, "higher"),
    "pixel_flipping_morf": (_flipping("morf"), "higher"),
    "pixel_flipping_lerf": (_flipping("lerf"), "lower"),
    "road_morf": (_road("morf"), "lower"),
    "road_lerf": (_road("lerf"), "higher"),
    "infidelity": (_infidelity, "lower"),
    "max_sensitivity": (_max_sensitivity, "lower"),
    "completeness_gap": (_completeness, "lower"),
    "pointing_game": (_localization(localization.pointing_game), "higher"),
    "relevance_mass": (_localization(localization.relevance_mass_accuracy), "higher"),
    "relevance_rank": (_localization(localization.relevance_rank_accuracy), "higher"),
    "random_logit": (_random_logit, "lower"),
    "randomization": (_randomization, "lower"),
}
"""Built-in metrics: name -> (function, which direction is better).

``deletion`` / ``insertion``: area under the curve; ``pixel_flipping_*``: AOPC; ``road_*``:
area under the accuracy curve; ``completeness_gap``: ``|sum A - (f(x) - f(x'))| /
|f(x) - f(x')|``; ``random_logit``: SSIM to a random other class's explanation;
``randomization``: Spearman (absolute) after randomizing every layer (cascading).
"""


@dataclass(frozen=True)
class ComparisonTable:
    """Methods by metrics: the mean and standard error of each metric over the samples.

    ``scores[(method, metric)]`` holds the per-sample numbers; ``attrib.viz.comparison_figure``
    draws the table as bar charts.
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    mean: torch.Tensor
    sem: torch.Tensor
    scores: dict[tuple[str, str], torch.Tensor] = field(repr=False)

    def value(self, method: str, metric: str) -> tuple[float, float]:
        """``(mean, standard error)`` of one cell."""
        i, j = self.methods.index(method), self.metrics.index(metric)
        return float(self.mean[i, j]), float(self.sem[i, j])

    def best(self, metric: str) -> str:
        """The method with the best mean for ``metric`` (by its direction)."""
        j = self.metrics.index(metric)
        column = self.mean[:, j]
        pick = column.nan_to_num(nan=-math.inf if self.directions[j] == "higher" else math.inf)
        i = int(pick.argmax() if self.directions[j] == "higher" else pick.argmin())
        return self.methods[i]

    def to_markdown(self, digits: int = 3) -> str:
        arrows = {"higher": "↑", "lower": "↓"}
        pairs = zip(self.metrics, self.directions, strict=True)
        header = ["method", *(f"{m} {arrows[d]}" for m, d in pairs)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, method in enumerate(self.methods):
            cells = [
                f"{float(self.mean[i, j]):.{digits}f} ± {float(self.sem[i, j]):.{digits}f}"
                for j in range(len(self.metrics))
            ]
            lines.append("| " + " | ".join([method, *cells]) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def _metric_specs(metrics: Any) -> list[tuple[str, Callable[[Evaluation], torch.Tensor], str]]:
    if isinstance(metrics, (str, tuple)):
        metrics = [metrics]
    specs = []
    for spec in metrics:
        if isinstance(spec, str):
            if spec not in METRICS:
                raise SettingError("metrics", f"names from {sorted(METRICS)}", spec, "")
            specs.append((spec, *METRICS[spec]))
        elif (
            isinstance(spec, tuple)
            and len(spec) == 3
            and callable(spec[1])
            and spec[2] in ("higher", "lower")
        ):
            specs.append((str(spec[0]), spec[1], spec[2]))
        else:
            raise SettingError(
                "metrics",
                "metric names or (name, function(evaluation) -> scores, 'higher'|'lower')",
                spec,
                "",
            )
    if not specs:
        raise SettingError("metrics", "at least one metric", metrics, "")
    return specs


def _named_methods(methods: Any) -> dict[str, Explainer]:
    if isinstance(methods, Mapping):
        named = dict(methods)
    else:
        named = {}
        for method in methods:
            name = getattr(method, "name", type(method).__name__)
            if name in named:
                raise SettingError("methods", "distinct names (pass a dict)", name, "")
            named[name] = method
    if not named or not all(callable(m) for m in named.values()):
        raise SettingError("methods", "methods: called as method(x, target=...)", methods, "")
    return named


def _sem(values: torch.Tensor) -> float:
    valid = values[~torch.isnan(values)]
    if valid.numel() < 2:
        return math.nan
    return float(valid.std(unbiased=True) / math.sqrt(valid.numel()))


def compare(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    methods: Mapping[str, Explainer] | Sequence[Explainer],
    metrics: Sequence[Any] = ("deletion", "insertion", "infidelity"),
    target: Target = "predicted",
    *,
    masks: torch.Tensor | None = None,
    maps: str = "max_abs",
    output: OutputSelector = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> ComparisonTable:
    """Evaluate every method with every metric on the batch ``x``; see the module docstring.

    The target is decided once, on ``model`` at ``x`` (``"predicted"``: the predicted
    classes), and used by every method and metric.
    """
    x = check_x(x)
    seed = check_seed(seed)
    named = _named_methods(methods)
    specs = _metric_specs(metrics)
    fixed = fixed_target(model, x, target, output, batch_size)
    scores: dict[tuple[str, str], torch.Tensor] = {}
    mean = torch.full((len(named), len(specs)), math.nan, dtype=torch.float64)
    sem = torch.full_like(mean, math.nan)
    for i, (name, method) in enumerate(named.items()):
        attribution = _explain_all(method, x, fixed, batch_size)
        evaluation = Evaluation(
            model, x, fixed, method, attribution, masks, maps, output, batch_size, seed
        )
        for j, (metric, function, _) in enumerate(specs):
            values = torch.as_tensor(function(evaluation), dtype=torch.float64).flatten().cpu()
            scores[(name, metric)] = values
            mean[i, j] = values.nanmean()
            sem[i, j] = _sem(values)
    return ComparisonTable(
        tuple(named), tuple(s[0] for s in specs), tuple(s[2] for s in specs), mean, sem, scores
    )


def _explain_all(
    method: Explainer, x: torch.Tensor, target: Any, batch_size: int | None
) -> Attribution:
    """The whole batch's ``Attribution`` (values joined from ``batch_size`` chunks)."""
    if batch_size is None or batch_size >= x.shape[0]:
        return method(x, target=target)
    values, channel_dim = explain(method, x, target, batch_size)
    name = getattr(method, "name", type(method).__name__)
    return Attribution(values=values, target=target, method=name, channel_dim=channel_dim)

"""Metrics and sanity checks for a report, from ``attrib.metrics`` (skipped with a note where
this installation does not have them).

- ``curve_table``: deletion and insertion curves (Petsiuk et al. 2018) of each method's map,
  and any other metric of ``attrib.metrics.METRICS``, as a table of mean ± standard error
  over the images, plus the curves for a figure;
- ``sanity_pictures``: the model-randomization test (Adebayo et al. 2018) of some methods,
  as the figures of ``attrib.viz``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError, did_you_mean
from attrib.core.result import Attribution
from attrib.report.content import Picture, Table

__all__ = [
    "MetricResults",
    "cascading_steps",
    "check_metrics",
    "curve_table",
    "metric_names",
    "metrics_available",
    "sanity_pictures",
]

_CURVES = ("deletion", "insertion")


def metrics_available() -> str | None:
    """``None`` if ``attrib.metrics`` can be used, else why not."""
    try:
        import attrib.metrics  # noqa: F401
    except ImportError as error:
        return f"attrib.metrics is not available ({error})"
    return None


def metric_names() -> list[str]:
    """The metrics a report can compute: the curves, then ``attrib.metrics.METRICS``."""
    from attrib.metrics import METRICS

    return [*_CURVES, *sorted(m for m in METRICS if m not in _CURVES)]


def check_metrics(names: Sequence[str], argument: str = "metrics") -> list[str]:
    """``names`` if each is a metric of ``metric_names()``, else a ``SettingError`` about
    ``argument`` that lists them and the closest ones."""
    known = metric_names()
    for name in names:
        if name not in known:
            raise SettingError(
                argument,
                f"metrics of attrib.metrics ({', '.join(known)})",
                name,
                did_you_mean(name, known, n=3) or "",
            )
    return list(names)


@dataclass
class MetricResults:
    """Per metric: method -> per-image values; the curves of the curve metrics."""

    values: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def table(self, title: str = "Faithfulness") -> Table:
        metrics = list(self.values)
        methods: list[str] = []
        for per_method in self.values.values():
            methods.extend(m for m in per_method if m not in methods)
        arrows = {"higher": "↑", "lower": "↓"}
        columns = [
            "method",
            *(f"{m} {arrows.get(self.directions.get(m, ''), '')}" for m in metrics),
        ]
        rows = []
        for method in methods:
            row = [method]
            for metric in metrics:
                values = self.values[metric].get(method)
                row.append(_mean_sem(values) if values is not None else "")
            rows.append(row)
        return Table(
            title,
            columns,
            rows,
            "Mean ± standard error over the images. Deletion: area under the probability of "
            "the class as the most relevant pixels are set to 0 (lower is better); insertion: "
            "as they are put back into a blurred image (higher is better).",
        )


def _mean_sem(values: torch.Tensor) -> str:
    v = values.double().flatten()
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        return "n/a"
    mean = float(v.mean())
    if v.numel() < 2:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {float(v.std()) / math.sqrt(v.numel()):.3f}"


def curve_table(
    model: nn.Module,
    x: torch.Tensor,
    attributions: Mapping[str, Attribution],
    target: Any,
    metrics: Sequence[str] = _CURVES,
    *,
    methods: Mapping[str, Any] | None = None,
    steps: int = 20,
    maps: str = "auto",
    batch_size: int | None = None,
    on_step: Callable[[str, float], None] | None = None,
) -> MetricResults:
    """Evaluate every attribution with every metric; failures are recorded, not raised.

    ``deletion``/``insertion`` use ``steps`` points and rank pixels by the maps ``maps`` (a
    ``saliency`` reduction; ``"auto"``: the map as drawn, signed for methods whose
    attributions add up to the score, so that pixels against the class come last). The other
    metrics of ``attrib.metrics.METRICS`` run as ``compare`` runs them (some re-run the
    method, given in ``methods``).
    """
    import time

    from attrib import metrics as m

    out = MetricResults()
    for metric in metrics:
        out.values[metric] = {}
        if metric in _CURVES:
            out.curves[metric] = {}
            out.directions[metric] = "lower" if metric == "deletion" else "higher"
        elif metric in m.METRICS:
            out.directions[metric] = m.METRICS[metric][1]
        else:
            hint = did_you_mean(metric, metric_names(), n=3)
            out.failures.append(
                f"{metric}: not a metric of attrib.metrics ({', '.join(metric_names())})"
                + (f". {hint}" if hint else "")
            )
            del out.values[metric]
            continue
        for name, attribution in attributions.items():
            start = time.perf_counter()
            try:
                if metric in _CURVES:
                    relevance = _relevance(attribution, maps)
                    function = m.deletion if metric == "deletion" else m.insertion
                    curve = function(
                        model, x, relevance, target, steps=steps, batch_size=batch_size
                    )
                    out.curves[metric][name] = curve
                    out.values[metric][name] = curve.area()
                else:
                    method = (methods or {}).get(name)
                    evaluation = m.Evaluation(
                        model,
                        x,
                        target,
                        method,
                        attribution,
                        maps=_plain(maps),
                        batch_size=batch_size,
                    )
                    out.values[metric][name] = torch.as_tensor(m.METRICS[metric][0](evaluation))
            except Exception as error:  # one method's failure must not lose the others
                out.failures.append(f"{metric} of {name}: {_one_line(error)}")
            if on_step is not None:
                on_step(f"{metric} {name}", time.perf_counter() - start)
    return out


def cascading_steps(
    model: nn.Module, checkpoints: int = 6, seed: int = 0
) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Cascading randomization of *every* layer (Adebayo et al. 2018), looked at after
    ``checkpoints`` of them: step ``k`` randomizes all layers from the top down to its label.

    Randomizing every layer but explaining only at a few depths keeps the test faithful to
    the paper (nothing below the top is left trained by accident) at a fraction of its cost.
    """
    from attrib.metrics import draw_parameters, randomizable_layers

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


def sanity_pictures(
    methods: Mapping[str, Any],
    x: torch.Tensor,
    target: Any,
    *,
    model: nn.Module,
    layers: Sequence[str] | None = None,
    checkpoints: int = 6,
    batch_size: int | None = None,
    on_step: Callable[[str, float], None] | None = None,
) -> tuple[list[Picture], list[str]]:
    """The model-randomization test of each method: the maps figure (first image) and the
    similarity curves. ``layers``: randomize those (cascading over them); default: every
    layer, explained at ``checkpoints`` depths (``cascading_steps``). Returns the pictures
    and notes on what failed."""
    import time

    from attrib.metrics import model_randomization, randomization_similarity
    from attrib.viz import png_bytes, randomization_figure, sanity_figure

    results: dict[str, Any] = {}
    notes: list[str] = []
    steps = cascading_steps(model, checkpoints) if layers is None else None
    for name, method in methods.items():
        start = time.perf_counter()
        try:
            if steps is not None:
                results[name] = randomization_similarity(
                    method,
                    x,
                    target,
                    steps,
                    model=model,
                    mode="cascading",
                    measures=["spearman_abs", "ssim"],
                    keep_maps=1,
                    batch_size=batch_size,
                )
            else:
                results[name] = model_randomization(
                    method,
                    x,
                    target,
                    layers=layers,
                    model=model,
                    measures=["spearman_abs", "ssim"],
                    keep_maps=1,
                    batch_size=batch_size,
                )
        except Exception as error:
            notes.append(f"sanity check of {name}: {_one_line(error)}")
        if on_step is not None:
            on_step(f"sanity {name}", time.perf_counter() - start)
    if not results:
        return [], notes
    labels = " → ".join(next(iter(results.values())).steps)
    pictures = [
        Picture(
            "Model randomization: maps",
            png_bytes(sanity_figure(results, 0), close=True),
            "Cascading randomization (Adebayo et al. 2018): the parameters of the layers are "
            f"replaced by random ones from the top down ({labels}); an explanation of the "
            "model must change as they are. Signed maps of the first image, each scaled by "
            "its own largest |value|.",
        ),
        Picture(
            "Model randomization: similarity to the original map",
            png_bytes(randomization_figure(results), close=True),
            "Spearman rank correlation of |map| and SSIM with the map of the trained model, "
            "mean ± standard error over the images (near 0: the map no longer resembles it). "
            "A hollow marker: the map became constant in some images (Grad-CAM's ReLU of a "
            "class score that no longer depends on the layer), which has no rank order left, "
            "so its rank correlation is 0.",
        ),
    ]
    return pictures, notes


def _plain(maps: str) -> str:
    return "max_abs" if maps == "auto" else maps


def _relevance(attribution: Attribution, maps: str) -> torch.Tensor:
    """One map per image for the curves: as drawn (``"auto"``: ``default_reduction``)."""
    if attribution.channel_dim is None:
        return attribution.values.detach()
    if maps == "auto":
        from attrib.viz.maps import default_reduction

        maps = default_reduction(attribution.method)
    return attribution.saliency(maps).detach()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"

"""Metrics and sanity checks for a report, from ``attrib.metrics`` (skipped with a note where
this installation does not have them).

- ``curve_table``: deletion and insertion curves (Petsiuk et al. 2018) of each method's map,
  and any other metric of ``attrib.metrics.METRICS``, as a table of mean ± standard error
  over the images, plus the curves for a figure; a random map (``attrib.metrics.random_maps``)
  is evaluated alongside, the baseline a method must beat;
- ``sanity_results`` and ``sanity_pictures``: the model-randomization test (Adebayo et al.
  2018) of some methods, and its figures from ``attrib.viz``;
- ``verdict_table``: ``attrib.metrics.verdict`` of those results as a table and a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import AttribError, SettingError, did_you_mean
from attrib.core.result import Attribution
from attrib.report.content import Picture, Table

__all__ = [
    "MetricResults",
    "check_metrics",
    "curve_table",
    "metric_names",
    "metrics_available",
    "sanity_pictures",
    "sanity_results",
    "verdict_table",
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
    random: dict[str, torch.Tensor] = field(default_factory=dict)  # the random map's values

    @property
    def methods(self) -> list[str]:
        methods: list[str] = []
        for per_method in self.values.values():
            methods.extend(m for m in per_method if m not in methods)
        return methods

    def table(self, title: str = "Faithfulness", coverage: str = "") -> Table:
        """Methods by metrics (mean ± standard error), the random map last; ``coverage``:
        a sentence on which methods the table holds, added to the caption."""
        metrics = list(self.values)
        arrows = {"higher": "↑", "lower": "↓"}
        columns = [
            "method",
            *(f"{m} {arrows.get(self.directions.get(m, ''), '')}" for m in metrics),
        ]
        rows = []
        for method in self.methods:
            row = [method]
            for metric in metrics:
                values = self.values[metric].get(method)
                row.append(_mean_sem(values) if values is not None else "")
            rows.append(row)
        if self.random:
            from attrib.metrics.verdict import RANDOM_MAP

            rows.append(
                [f"{RANDOM_MAP} (baseline)"]
                + [_mean_sem(self.random[m]) if m in self.random else "" for m in metrics]
            )
        caption = (
            "Mean ± standard error over the images. Deletion: area under the probability of "
            "the class as the most relevant pixels are set to 0 (lower is better); insertion: "
            "as they are put back into a blurred image (higher is better)."
        )
        if self.random:
            caption += (
                " The random map ranks pixels by uniform noise (seeded): a method that "
                "does not beat it says nothing about the model's evidence."
            )
        return Table(title, columns, rows, f"{caption} {coverage}".strip())


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
    random_baseline: bool = True,
    seed: int = 0,
) -> MetricResults:
    """Evaluate every attribution with every metric; failures are recorded, not raised.

    ``deletion``/``insertion`` use ``steps`` points and rank pixels by the maps ``maps`` (a
    ``saliency`` reduction; ``"auto"``: the map as drawn, signed for methods whose
    attributions add up to the score, so that pixels against the class come last). The other
    metrics of ``attrib.metrics.METRICS`` run as ``compare`` runs them (some re-run the
    method, given in ``methods``). ``random_baseline``: also evaluate the random maps of
    ``attrib.metrics.random_maps(x, seed)`` with every metric that needs no method.
    """
    import time

    from attrib import metrics as m
    from attrib.metrics.verdict import RANDOM_MAP

    out = MetricResults()
    pool = dict(attributions)
    if random_baseline and attributions and x.dim() == 4:
        pool[RANDOM_MAP] = m.random_maps(x, seed)
    for metric in metrics:
        out.values[metric] = {}
        if metric in m.METRICS:  # which way is better is said once, in attrib.metrics
            out.directions[metric] = m.METRICS[metric][1]
        if metric in _CURVES:
            out.curves[metric] = {}
        elif metric not in m.METRICS:
            hint = did_you_mean(metric, metric_names(), n=3)
            out.failures.append(
                f"{metric}: not a metric of attrib.metrics ({', '.join(metric_names())})"
                + (f". {hint}" if hint else "")
            )
            del out.values[metric]
            continue
        for name, attribution in pool.items():
            start = time.perf_counter()
            random = name == RANDOM_MAP
            try:
                if metric in _CURVES:
                    relevance = _relevance(attribution, maps)
                    function = m.deletion if metric == "deletion" else m.insertion
                    curve = function(
                        model, x, relevance, target, steps=steps, batch_size=batch_size
                    )
                    out.curves[metric][name] = curve
                    value = curve.area()
                else:
                    method = None if random else (methods or {}).get(name)
                    evaluation = m.Evaluation(
                        model,
                        x,
                        target,
                        method,
                        attribution,
                        maps=_plain(maps),
                        batch_size=batch_size,
                    )
                    value = torch.as_tensor(m.METRICS[metric][0](evaluation))
                if random:
                    out.random[metric] = value
                else:
                    out.values[metric][name] = value
            except AttribError as error:
                if not random:  # a metric that explains again has no random baseline
                    out.failures.append(f"{metric} of {name}: {_one_line(error)}")
            except Exception as error:  # one method's failure must not lose the others
                out.failures.append(f"{metric} of {name}: {_one_line(error)}")
            if on_step is not None:
                on_step(f"{metric} {name}", time.perf_counter() - start)
    return out


def sanity_results(
    methods: Mapping[str, Any],
    x: torch.Tensor,
    target: Any,
    *,
    model: nn.Module,
    layers: Sequence[str] | None = None,
    checkpoints: int = 6,
    batch_size: int | None = None,
    on_step: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The model-randomization test of each method (``RandomizationResult`` by name) and
    notes on what failed. ``layers``: randomize those (cascading over them); default: every
    layer, explained at ``checkpoints`` depths (``cascading_steps``)."""
    import time

    from attrib.metrics import model_randomization, randomization_similarity
    from attrib.metrics.sanity import cascading_steps

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
    return results, notes


def sanity_pictures(results: Mapping[str, Any]) -> list[Picture]:
    """The figures of ``sanity_results``: the maps (first image) and the similarity curves."""
    from attrib.viz import png_bytes, randomization_figure, sanity_figure

    if not results:
        return []
    labels = " → ".join(next(iter(results.values())).steps)
    return [
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


_OUTCOMES = {"better": "better", "worse": "worse", "tie": "no clear difference"}
_TRUST = {"trust": "trust", "distrust": "do not trust", "undecided": "undecided"}


def verdict_table(verdict: Any) -> Table:
    """An ``attrib.metrics.Verdict`` as a table: per method, the sanity check (what the map
    kept of itself under randomization), each metric against the random map, the verdict."""
    metrics: list[str] = []
    for judged in verdict.methods:
        metrics.extend(c.metric for c in judged.comparisons if c.metric not in metrics)
    columns = ["method", "sanity check", *(f"{m} vs random map" for m in metrics), "verdict"]
    rows = []
    threshold = margin = None
    for judged in verdict.methods:
        sanity = judged.sanity
        if sanity is None:
            check = "not run"
        else:
            threshold = sanity.threshold
            state = {True: "passed", False: "failed", None: "inconclusive"}[sanity.passed]
            check = f"{state}: kept {sanity.kept:.2f} of {sanity.floor:.2f}"
        row = [judged.method, check]
        by_metric = {c.metric: c for c in judged.comparisons}
        for metric in metrics:
            c = by_metric.get(metric)
            if c is None:
                row.append("")
                continue
            margin = c.margin
            row.append(f"{c.value:.3f} vs {c.random:.3f}: {_OUTCOMES[c.outcome]}")
        row.append(f"{_TRUST[judged.trust]}: {judged.reason}")
        rows.append(row)
    rules = []
    if threshold is not None:
        rules.append(
            "Sanity check (cascading model randomization): a method passes when the mean "
            "Spearman correlation of |map| with the trained model's map, over the "
            f"randomization steps, is below {threshold:g} times that of two explanations of "
            "the unchanged model ('kept A of B')."
        )
    if margin is not None:
        rules.append(
            "Against the random map, per image: better or worse when the mean paired "
            f"difference exceeds {margin:g} standard errors (means shown)."
        )
    rules.append(
        "Trust: passed the sanity check, beat the random map on a metric and did worse on "
        "none; do not trust: failed the sanity check or did worse than the random map on a "
        "metric; undecided: the rest (not checked, or no clear difference)."
    )
    return Table("Verdict", columns, rows, " ".join(rules))


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

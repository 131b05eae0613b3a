"""Assemble a report of image explanations: run the methods, draw the maps, add metrics.

``explain_all`` runs each method once on the batch (a failing method is recorded, not
raised: one method that does not fit the model must not cost the others);
``image_report`` turns the inputs, predictions and attributions into a ``Report`` (and
writes each map as a PNG file where asked); ``add_metrics`` and ``add_sanity`` append the
evaluation, skipped with a note where ``attrib.metrics`` is not available, and return their
results, from which ``add_verdict`` writes the report's last section: which methods to trust.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from attrib.core.grad import decide_target
from attrib.core.progress import reporting
from attrib.core.result import Attribution
from attrib.report.content import InputRow, MapCell, Picture, Report
from attrib.report.evaluation import (
    MetricResults,
    curve_table,
    metrics_available,
    sanity_pictures,
    sanity_results,
    verdict_table,
)
from attrib.report.notes import families as catalogue_families
from attrib.report.notes import note_for
from attrib.report.pictures import map_png, picture_png

__all__ = [
    "Explained",
    "add_metrics",
    "add_sanity",
    "add_verdict",
    "explain_all",
    "image_report",
    "with_output",
]

OnStep = Callable[[str, float], None]


@dataclass
class Explained:
    """Each method's ``Attribution`` of the batch, its time, the methods that failed, and the
    target every method was given (``"predicted"`` decided: the class per sample)."""

    attributions: dict[str, Attribution] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    target: Any = None


def explain_all(
    methods: Mapping[str, Callable[..., Attribution]],
    x: torch.Tensor,
    target: Any = "predicted",
    *,
    model: nn.Module | None = None,
    logits: torch.Tensor | None = None,
    batch_size: int | None = None,
    on_step: OnStep | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Explained:
    """Run every method on ``x``; an exception becomes a one-line failure note.

    ``on_step(name, seconds)`` after each method; ``on_progress(name, done, total)`` within
    it, after each chunk of its rows (``attrib.core.progress``).

    ``"predicted"`` is decided once, before any method runs (``attrib.core.grad.decide_target``
    on ``model``, else on the methods' model, ``batch_size`` samples per forward), so that
    every map explains the same class. ``logits``: the model's output at ``x`` (default: that
    decision's), given to results that hold none (SmoothGrad given classes runs no forward at
    ``x``), so their titles show the class's probability.
    """
    if isinstance(target, str) and target == "predicted":
        owner = model if model is not None else _model_of_methods(methods)
        if owner is not None:  # plain callables without a model decide for themselves
            target, scores = decide_target(owner, x, "predicted", batch_size=batch_size)
            logits = scores if logits is None else logits
    out = Explained(target=target)
    for name, method in methods.items():
        start = time.perf_counter()
        try:
            with ExitStack() as stack:
                if on_progress is not None:
                    stack.enter_context(reporting(partial(on_progress, name)))
                out.attributions[name] = with_output(method(x, target=target), logits)
        except Exception as error:
            lines = str(error).strip().splitlines()
            out.failures[name] = f"{type(error).__name__}: {lines[0] if lines else ''}"
        out.seconds[name] = time.perf_counter() - start
        if on_step is not None:
            on_step(name, out.seconds[name])
    return out


def _model_of_methods(methods: Mapping[str, Any]) -> nn.Module | None:
    return next((m.model for m in methods.values() if getattr(m, "model", None) is not None), None)


def with_output(result: Attribution, logits: torch.Tensor | None) -> Attribution:
    """``result`` with ``logits`` as its output where it holds none (SmoothGrad given classes
    runs no forward at the inputs), so its titles show the class's probability."""
    if result.output is None and logits is not None:
        return replace(result, output=logits)
    return result


def top_predictions(
    logits: torch.Tensor, class_names: Sequence[str] | None, k: int = 3
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each row of ``logits``, as (name, probability)."""
    probabilities = logits.detach().float().softmax(-1).cpu()
    top = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    out = []
    for values, indices in zip(top.values, top.indices, strict=True):
        row = []
        for p, i in zip(values.tolist(), indices.tolist(), strict=True):
            name = class_names[i] if class_names and i < len(class_names) else f"class {i}"
            row.append((name, p))
        out.append(row)
    return out


def image_report(
    title: str,
    names: Sequence[str],
    pixels: Sequence[np.ndarray],
    logits: torch.Tensor,
    explained: Explained,
    *,
    class_names: Sequence[str] | None = None,
    families: Sequence[tuple[str, Sequence[str]]] | None = None,
    method_classes: Mapping[str, type] | None = None,
    facts: Sequence[tuple[str, str]] = (),
    captions: Sequence[str] | None = None,
    png_dir: str | Path | None = None,
) -> Report:
    """The inputs, their predictions and every method's maps as a ``Report``.

    ``captions``: a line per input (what it shows); ``png_dir``: where to write each map as
    ``{image}_{method}.png`` as well.
    """
    from attrib.viz.titles import explained_class

    report = Report(title=title, facts=list(facts))
    predictions = top_predictions(logits, class_names)
    for i, name in enumerate(names):
        caption = captions[i] if captions is not None and i < len(captions) else ""
        report.inputs.append(InputRow(name, picture_png(pixels[i]), predictions[i], caption))
    methods = [*explained.attributions, *explained.failures]
    groups = families if families is not None else catalogue_families(methods)
    order = [m for group in groups for m in group[1]]
    methods = [m for m in order if m in methods] + [m for m in methods if m not in order]
    report.families = [(family, [m for m in members if m in methods]) for family, members in groups]
    report.families = [(f, ms) for f, ms in report.families if ms]
    placed = {m for _, ms in report.families for m in ms}
    if any(m not in placed for m in methods):
        report.families.append(("Other methods", [m for m in methods if m not in placed]))
    folder = Path(png_dir) if png_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for method in methods:
        report.methods[method] = note_for(method, (method_classes or {}).get(method))
        if method in explained.failures:
            for name in names:
                report.maps[(name, method)] = MapCell(None, method, explained.failures[method])
            report.notes.append(f"{method} failed: {explained.failures[method]}")
            continue
        attribution = explained.attributions[method]
        for i, name in enumerate(names):
            png = map_png(pixels[i], attribution, i)
            label, probability = explained_class(attribution, i, class_names)
            score = f" {probability:.2f}" if probability is not None else ""
            report.maps[(name, method)] = MapCell(png, f"{label}{score}")
            if folder is not None:
                (folder / f"{name}_{method}.png").write_bytes(png)
    return report


def add_metrics(
    report: Report,
    model: nn.Module,
    x: torch.Tensor,
    explained: Explained,
    target: Any,
    *,
    metrics: Sequence[str] = ("deletion", "insertion"),
    methods: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    steps: int = 20,
    batch_size: int | None = None,
    on_step: OnStep | None = None,
    why: str = "",
) -> MetricResults | None:
    """Append the metrics table and the deletion/insertion curves (``only``: those methods,
    the table saying which and ``why``); returns the results (``None`` where skipped)."""
    missing = metrics_available()
    if missing:
        report.notes.append(f"Metrics skipped: {missing}.")
        return None
    from attrib.viz import curves_figure, png_bytes

    chosen = {k: v for k, v in explained.attributions.items() if only is None or k in set(only)}
    left_out = [k for k in explained.attributions if k not in chosen]
    if left_out:
        coverage = (
            f"It covers {len(chosen)} of the {len(explained.attributions)} methods"
            + (f" ({why})" if why else "")
            + f"; not evaluated: {', '.join(left_out)}."
        )
    else:
        coverage = f"It covers every method that ran ({len(chosen)})."
    results = curve_table(
        model,
        x,
        chosen,
        target,
        metrics,
        methods=methods,
        steps=steps,
        batch_size=batch_size,
        on_step=on_step,
    )
    report.tables.append(results.table(coverage=coverage))
    for metric, curves in results.curves.items():
        if curves:
            title = f"{metric} curves (mean over the images)"
            # more than a legend can hold: one panel per family of the maps
            groups = report.families if len(curves) > 8 and report.families else None
            fig = curves_figure(curves, title=title, groups=groups)
            report.figures.append(
                Picture(
                    f"{metric.capitalize()} curves",
                    png_bytes(fig, close=True),
                    f"{steps} steps; the legend gives each method's area under the curve "
                    "(dashed: the random map).",
                )
            )
    report.notes.extend(results.failures)
    return results


def add_sanity(
    report: Report,
    methods: Mapping[str, Any],
    x: torch.Tensor,
    target: Any,
    *,
    model: nn.Module,
    layers: Sequence[str] | None = None,
    checkpoints: int = 6,
    batch_size: int | None = None,
    on_step: OnStep | None = None,
) -> dict[str, Any]:
    """Append the model-randomization sanity check of ``methods`` (see ``sanity_results``);
    returns its ``RandomizationResult`` by method."""
    missing = metrics_available()
    if missing:
        report.notes.append(f"Sanity checks skipped: {missing}.")
        return {}
    results, notes = sanity_results(
        methods,
        x,
        target,
        model=model,
        layers=layers,
        checkpoints=checkpoints,
        batch_size=batch_size,
        on_step=on_step,
    )
    report.sanity.extend(sanity_pictures(results))
    report.notes.extend(notes)
    return results


def add_verdict(
    report: Report,
    metrics: MetricResults | None = None,
    sanity: Mapping[str, Any] | None = None,
    *,
    methods: Sequence[str] | None = None,
) -> Any:
    """End the report with ``attrib.metrics.verdict`` of the computed results: per method,
    the sanity check and each metric against the random map, and the methods to trust.
    ``methods``: those to judge (default: every method whose maps the report shows).
    Returns the ``Verdict`` (``None`` where ``attrib.metrics`` is not available)."""
    if metrics_available():
        return None
    from attrib.metrics import verdict

    if methods is None:
        shown = {m for (_, m), cell in report.maps.items() if cell.png is not None}
        methods = [m for m in report.methods if m in shown]
    judged = verdict(
        metrics.values if metrics is not None else {},
        metrics.directions if metrics is not None else {},
        metrics.random if metrics is not None else {},
        sanity,
        methods=methods,
    )
    report.verdict = verdict_table(judged)
    report.verdict_summary = judged.sentence()
    return judged

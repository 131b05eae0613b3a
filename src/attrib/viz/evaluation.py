"""Figures of evaluations: the numbers come from ``attrib.metrics``, the pictures are drawn here.

- ``curves_figure``: mean faithfulness curves (deletion, insertion, pixel flipping) with a band
  of one standard error, ``sem = std / sqrt(n)`` over the samples; the legend gives each
  curve's area.
- ``sanity_figure``: the maps of one sample, methods by randomization steps (Adebayo et al.
  2018, the grid of Fig. 2).
- ``randomization_figure``: similarity to the original explanation against the layers
  randomized, one line per method with a band of one standard error (Adebayo et al. 2018,
  Fig. 2 and 4), one panel per similarity measure.
- ``comparison_figure``: one bar chart per metric of a ``compare`` table, with error bars.

Each returns a ``Figure`` that pyplot does not track (``_deps.figure``); nothing is shown or
saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.viz._deps import figure

__all__ = ["comparison_figure", "curves_figure", "randomization_figure", "sanity_figure"]


def _as_named(results: Any) -> dict[str, Any]:
    """A dict label -> result from one result, a list of them or a dict (labels: each
    result's ``method`` or ``kind``, else its position)."""
    if isinstance(results, Mapping):
        return dict(results)
    if not isinstance(results, Sequence):
        results = [results]
    return {
        str(getattr(r, "method", None) or getattr(r, "kind", k)): r for k, r in enumerate(results)
    }


def curves_figure(curves: Any, *, title: str | None = None, ax: Any = None) -> Any:
    """Mean deletion / insertion / pixel-flipping curves with one standard error.

    ``curves``: an ``attrib.metrics.Curve``, a list of them, or a dict label -> curve.
    ``ax``: draw into these axes of an existing figure (whose layout is left alone) instead
    of a new figure.
    """
    own = ax is None
    if own:
        fig = figure(4.5, 3.6)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    for name, curve in _as_named(curves).items():
        mean = curve.scores.mean(dim=0)
        n = curve.scores.shape[0]
        sem = curve.scores.std(dim=0) / n**0.5 if n > 1 else torch.zeros_like(mean)
        x = curve.fractions.numpy()
        ax.plot(x, mean.numpy(), label=f"{name} (area {float(curve.area().mean()):.3f})")
        ax.fill_between(x, (mean - sem).numpy(), (mean + sem).numpy(), alpha=0.2)
    ax.set_xlabel("fraction of features perturbed")
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        fig.tight_layout()
    return fig


def sanity_figure(results: Any, sample: int = 0, *, cmap: str = "bwr", size: float = 1.6) -> Any:
    """The model-randomization sanity check (Adebayo et al. 2018): the signed maps of one
    sample, methods (rows) by randomization steps (columns).

    ``results``: ``RandomizationResult``s from ``attrib.metrics.model_randomization`` (one, a
    list, or a dict label -> result) whose maps were kept (``keep_maps=``). Each map is
    scaled by its own largest ``|value|``, diverging colours around 0.
    """
    rows = list(_as_named(results).items())
    steps = list(rows[0][1].steps)
    fig = figure(size * len(steps), size * len(rows))
    axes = fig.subplots(len(rows), len(steps), squeeze=False)
    for r, (name, result) in enumerate(rows):
        if result.maps is None or sample >= result.maps.shape[1]:
            raise SettingError("sample", "a sample whose maps were kept (keep_maps=)", sample, "")
        for c in range(len(steps)):
            ax = axes[r][c]
            m = result.maps[c, sample]
            scale = float(m.abs().max()) or 1.0
            ax.imshow(m.numpy(), cmap=cmap, vmin=-scale, vmax=scale)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(steps[c], fontsize=7, rotation=30)
        axes[r][0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def randomization_figure(
    results: Any,
    measures: Sequence[str] | None = None,
    *,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """Similarity to the original explanation against the layers randomized: one panel per
    measure (default: every measure of the first result), one line per method.

    ``results``: a ``RandomizationResult``, a list of them or a dict label -> result, all
    over the same steps.
    """
    named = _as_named(results)
    first = next(iter(named.values()))
    measures = list(measures or first.similarity)
    fig = figure(*(figsize or (4.2 * len(measures), 3.6)))
    axes = fig.subplots(1, len(measures), squeeze=False)
    steps = list(first.steps)
    positions = range(len(steps))
    for ax, measure in zip(axes[0], measures, strict=True):
        for name, result in named.items():
            if measure not in result.similarity:
                continue
            mean, sem = result.mean(measure).numpy(), result.sem(measure).numpy()
            ax.plot(positions, mean, marker="o", label=name)
            ax.fill_between(positions, mean - sem, mean + sem, alpha=0.2)
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.set_xticks(list(positions))
        ax.set_xticklabels(steps, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(measure)
        ax.set_xlabel(f"{first.mode} randomization (top layer first)")
    axes[0][0].set_ylabel("similarity to the original explanation")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def comparison_figure(table: Any, *, figsize: tuple[float, float] | None = None) -> Any:
    """One bar chart per metric of an ``attrib.metrics.ComparisonTable`` (``compare``), one
    bar per method, error bars one standard error; the title's arrow says which way is
    better."""
    k = len(table.metrics)
    fig = figure(*(figsize or (3.2 * k, 3.4)))
    axes = fig.subplots(1, k, squeeze=False)
    positions = range(len(table.methods))
    for j, (ax, metric) in enumerate(zip(axes[0], table.metrics, strict=True)):
        ax.bar(positions, table.mean[:, j].numpy(), yerr=table.sem[:, j].nan_to_num(0).numpy())
        ax.set_xticks(list(positions))
        ax.set_xticklabels(table.methods, rotation=45, ha="right", fontsize=8)
        arrow = "↑" if table.directions[j] == "higher" else "↓"
        ax.set_title(f"{metric} {arrow}")
    fig.tight_layout()
    return fig

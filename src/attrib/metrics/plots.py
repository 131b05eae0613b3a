"""Pictures of metric results. matplotlib is imported only when a function here is called.

- ``plot_randomization``: similarity to the original explanation against the layers
  randomized, one line per method with a band of one standard error (Adebayo et al. 2018,
  Fig. 2 and 4), for each measure.
- ``plot_randomization_maps``: the maps of one sample, methods by randomization steps (the
  paper's Fig. 2 grid).
- ``plot_curves``: mean faithfulness curves (deletion, insertion, ...) with standard errors.
- ``plot_comparison``: one bar chart per metric of a ``compare`` table, with error bars.

Each returns the matplotlib ``Figure``; nothing is shown or saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from attrib.core.errors import SettingError

__all__ = ["plot_comparison", "plot_curves", "plot_randomization", "plot_randomization_maps"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise SettingError(
            "matplotlib", "matplotlib installed (pip install attrib[viz])", None, ""
        ) from None
    return plt


def _as_named(results: Any) -> dict[str, Any]:
    if isinstance(results, Mapping):
        return dict(results)
    if not isinstance(results, Sequence):
        results = [results]
    return {
        getattr(r, "method", None) or getattr(r, "kind", str(k)): r for k, r in enumerate(results)
    }


def plot_randomization(
    results: Any,
    measures: Sequence[str] | None = None,
    *,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """Similarity against randomization steps, one panel per measure, one line per method.

    ``results``: a ``RandomizationResult``, a list of them or a dict name -> result (all
    over the same steps).
    """
    plt = _pyplot()
    named = _as_named(results)
    first = next(iter(named.values()))
    measures = list(measures or first.similarity)
    fig, axes = plt.subplots(
        1, len(measures), figsize=figsize or (4.2 * len(measures), 3.6), squeeze=False
    )
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


def plot_randomization_maps(
    results: Any, sample: int = 0, *, cmap: str = "bwr", size: float = 1.6
) -> Any:
    """The signed maps of one sample: methods (rows) by randomization steps (columns).

    Each map is scaled by its own largest ``|value|``, diverging colours around 0.
    """
    plt = _pyplot()
    named = _as_named(results)
    rows = list(named.items())
    steps = list(rows[0][1].steps)
    fig, axes = plt.subplots(
        len(rows), len(steps), figsize=(size * len(steps), size * len(rows)), squeeze=False
    )
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


def plot_curves(curves: Any, *, ax: Any = None) -> Any:
    """Mean curves with a band of one standard error; ``curves``: a ``Curve``, a list of them
    or a dict name -> curve."""
    plt = _pyplot()
    named = _as_named(curves)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.6))
    else:
        fig = ax.figure
    for name, curve in named.items():
        mean = curve.scores.mean(dim=0)
        n = curve.scores.shape[0]
        sem = curve.scores.std(dim=0) / n**0.5 if n > 1 else torch.zeros_like(mean)
        x = curve.fractions.numpy()
        ax.plot(x, mean.numpy(), label=f"{name} (area {float(curve.area().mean()):.3f})")
        ax.fill_between(x, (mean - sem).numpy(), (mean + sem).numpy(), alpha=0.2)
    ax.set_xlabel("fraction of features perturbed")
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    return fig


def plot_comparison(table: Any, *, figsize: tuple[float, float] | None = None) -> Any:
    """One bar chart per metric of a ``ComparisonTable``, error bars one standard error."""
    plt = _pyplot()
    k = len(table.metrics)
    fig, axes = plt.subplots(1, k, figsize=figsize or (3.2 * k, 3.4), squeeze=False)
    positions = range(len(table.methods))
    for j, (ax, metric) in enumerate(zip(axes[0], table.metrics, strict=True)):
        ax.bar(positions, table.mean[:, j].numpy(), yerr=table.sem[:, j].nan_to_num(0).numpy())
        ax.set_xticks(list(positions))
        ax.set_xticklabels(table.methods, rotation=45, ha="right", fontsize=8)
        arrow = "↑" if table.directions[j] == "higher" else "↓"
        ax.set_title(f"{metric} {arrow}")
    fig.tight_layout()
    return fig

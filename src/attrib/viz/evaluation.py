"""Figures of evaluations: the numbers come from ``attrib.metrics``, the pictures are drawn here.

- ``curves_figure``: mean faithfulness curves (deletion, insertion, pixel flipping) with a band
  of one standard error, ``sem = std / sqrt(n)`` over the samples; the legend gives each
  curve's area; the random map's curve (``attrib.metrics.random_maps``) is grey and dashed.
- ``sanity_figure``: the maps of one sample, methods by randomization steps (Adebayo et al.
  2018, the grid of Fig. 2); a constant map is labelled so.
- ``randomization_figure``: similarity to the original explanation against the layers
  randomized, one line per method with a band of one standard error (Adebayo et al. 2018,
  Fig. 2 and 4), one panel per similarity measure; a step where a map was constant (no rank
  order, similarity defined as 0) is drawn with a hollow marker, named in the legend.

Layer names can be long (``…features.denseblock4.denselayer16.conv2``): labels keep their
last dotted parts within a width (``short_label``), column titles wrap at the dots, and the
similarity figure grows in height with its rotated labels, so nothing is cut or squashed.
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

__all__ = [
    "comparison_figure",
    "curves_figure",
    "randomization_figure",
    "sanity_figure",
    "short_label",
]


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


def curves_figure(
    curves: Any,
    *,
    title: str | None = None,
    ax: Any = None,
    groups: Sequence[tuple[str, Sequence[str]]] | None = None,
) -> Any:
    """Mean deletion / insertion / pixel-flipping curves with one standard error.

    ``curves``: an ``attrib.metrics.Curve``, a list of them, or a dict label -> curve.
    ``ax``: draw into these axes of an existing figure (whose layout is left alone) instead
    of a new figure. ``groups``: ``(panel title, labels)`` pairs, one panel each (two
    panels a row), so that dozens of methods stay readable; the random map's curve is drawn
    in every panel.
    """
    from attrib.metrics.verdict import RANDOM_MAP

    named = _as_named(curves)
    if groups is not None:
        if ax is not None:
            raise SettingError("ax", "no axes with groups= (one panel per group)", ax, "")
        panels = [(t, [n for n in labels if n in named]) for t, labels in groups]
        panels = [(t, labels) for t, labels in panels if labels]
        columns = min(2, max(1, len(panels)))
        rows = -(-len(panels) // columns)
        fig = figure(5.2 * columns, 3.9 * rows)
        axes = fig.subplots(rows, columns, squeeze=False).flatten()
        for axis, (panel, labels) in zip(axes, panels, strict=False):
            chosen = {n: named[n] for n in labels}
            if RANDOM_MAP in named:
                chosen[RANDOM_MAP] = named[RANDOM_MAP]
            curves_figure(chosen, title=panel, ax=axis)
        for axis in axes[len(panels) :]:
            axis.set_visible(False)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        return fig
    own = ax is None
    if own:
        fig = figure(4.5, 3.6)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    for name, curve in named.items():
        mean = curve.scores.mean(dim=0)
        n = curve.scores.shape[0]
        sem = curve.scores.std(dim=0) / n**0.5 if n > 1 else torch.zeros_like(mean)
        x = curve.fractions.numpy()
        label = f"{name} (area {float(curve.area().mean()):.3f})"
        # the random map is the baseline, not a competitor: grey and dashed
        style = {"color": "0.45", "linestyle": "--"} if name == RANDOM_MAP else {}
        (line,) = ax.plot(x, mean.numpy(), label=label, **style)
        lower, upper = (mean - sem).numpy(), (mean + sem).numpy()
        ax.fill_between(x, lower, upper, alpha=0.15, color=line.get_color())
    ax.set_xlabel("fraction of features perturbed")
    ax.set_ylabel("score")
    ax.legend(fontsize=7 if len(named) > 5 else 8)
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        fig.tight_layout()
    return fig


def short_label(text: str, width: int = 28) -> str:
    """``text`` if it fits in ``width`` characters, else its last dotted parts after "…"
    (``"…features.denseblock4.denselayer16.conv2"`` -> ``"…denselayer16.conv2"``)."""
    if len(text) <= width:
        return text
    parts = text.lstrip("…").split(".")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(kept) + 2 > width:
            break
        kept = f"{part}.{kept}"
    return "…" + (kept if len(kept) < width else kept[-(width - 1) :])


def _wrapped(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters, broken after dots."""
    lines = [""]
    for piece in text.replace(".", ".\n").split("\n"):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line for line in lines if line)


def _is_constant(result: Any, step: int, sample: int, m: torch.Tensor) -> bool:
    constant = getattr(result, "constant", None)
    if constant is not None and sample < constant.shape[1]:
        return bool(constant[step, sample])
    return bool((m.abs() == m.abs().flatten()[0]).all())


def sanity_figure(results: Any, sample: int = 0, *, cmap: str = "bwr", size: float = 1.6) -> Any:
    """The model-randomization sanity check (Adebayo et al. 2018): the signed maps of one
    sample, methods (rows) by randomization steps (columns).

    ``results``: ``RandomizationResult``s from ``attrib.metrics.model_randomization`` (one, a
    list, or a dict label -> result) whose maps were kept (``keep_maps=``). Each map is
    scaled by its own largest ``|value|``, diverging colours around 0.
    """
    rows = list(_as_named(results).items())
    steps = list(rows[0][1].steps)
    # column titles wrap at the dots of layer names (about 11 characters per inch at 7 pt)
    titles = [_wrapped(short_label(step, 48), max(8, int(size * 11))) for step in steps]
    lines = max(t.count("\n") + 1 for t in titles)
    fig = figure(size * len(steps), size * len(rows) + 0.15 * lines + 0.1)
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
            if _is_constant(result, c, sample, m):
                ax.text(
                    0.5,
                    0.5,
                    "constant map",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="0.35",
                )
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
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
    import numpy as np
    from matplotlib.lines import Line2D

    named = _as_named(results)
    first = next(iter(named.values()))
    measures = list(measures or first.similarity)
    steps = [short_label(step) for step in first.steps]
    # the plots keep their height: the rotated labels get their own (~0.06 in per character
    # at 8 pt, times sin 45 degrees)
    below = 0.045 * max(len(step) for step in steps)
    fig = figure(*(figsize or (4.2 * len(measures), 2.9 + below)))
    axes = fig.subplots(1, len(measures), squeeze=False)
    positions = np.arange(len(steps))
    hollow = False
    for ax, measure in zip(axes[0], measures, strict=True):
        for name, result in named.items():
            if measure not in result.similarity:
                continue
            mean, sem = result.mean(measure).numpy(), result.sem(measure).numpy()
            (line,) = ax.plot(positions, mean, marker="o", label=name)
            ax.fill_between(positions, mean - sem, mean + sem, alpha=0.2)
            constant = getattr(result, "constant", None)
            if constant is not None and bool(constant.any()):
                flat = constant.any(dim=1).numpy()
                ax.plot(
                    positions[flat],
                    mean[flat],
                    linestyle="none",
                    marker="o",
                    markerfacecolor="white",
                    markeredgecolor=line.get_color(),
                    zorder=3,
                )
                hollow = True
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.set_xticks(list(positions))
        ax.set_xticklabels(steps, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(measure)
        ax.set_xlabel(f"{first.mode} randomization (top layer first)")
    axes[0][0].set_ylabel("similarity to the original")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if hollow:
        handles.append(
            Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", color="0.3")
        )
        labels.append("constant map (no rank order: 0)")
    axes[0][-1].legend(handles, labels, fontsize=8)
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

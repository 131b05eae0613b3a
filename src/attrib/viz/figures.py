"""Figures of image attributions: one explanation, and a grid of images x methods.

Every function returns a matplotlib ``Figure`` (not tracked by pyplot; see ``_deps.figure``)
that the caller can show, change or save (``attrib.viz.save_png(fig, "map.png")``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from attrib.core.errors import SettingError
from attrib.core.result import Attribution
from attrib.viz._deps import figure
from attrib.viz.colors import colormap_for
from attrib.viz.images import to_image
from attrib.viz.maps import (
    clip_percentile,
    default_reduction,
    drawn_signed,
    is_signed,
    saliency_map,
)
from attrib.viz.overlay import overlay
from attrib.viz.titles import map_title

__all__ = ["grid", "show"]


def _map_for(
    attribution: Attribution | Any, index: int, reduce: str | None, size: tuple[int, int]
) -> tuple[np.ndarray, bool]:
    """The map of sample ``index`` and whether it is drawn signed."""
    if reduce is None and isinstance(attribution, Attribution):
        if attribution.channel_dim is not None:
            reduce = default_reduction(attribution.method)
    saliency = saliency_map(attribution, index, reduce=reduce, size=size)
    signed = drawn_signed(attribution, reduce)
    return saliency, is_signed(saliency) if signed is None else signed


def show(
    attribution: Attribution,
    image: Any,
    *,
    index: int = 0,
    reduce: str | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = 0.8,
    percentile: float = 99.0,
    cmap: str | None = None,
    size: float = 3.0,
) -> Any:
    """Three panels: the image, the map (with a colour bar) and the map over the image.

    ``reduce``: the channel reduction (``None``: signed ``"sum"`` for methods whose
    attributions add up to the score, ``"max_abs"`` for the others; see ``default_reduction``).
    The title names the method, the explained class and its probability.
    """
    picture = to_image(image if not _is_batch(image) else image[index])
    saliency, signed = _map_for(attribution, index, reduce, picture.shape[:2])
    scaled, scale = clip_percentile(saliency, percentile, signed=signed)
    fig = figure(3 * size + 0.6, size + 0.5)
    axes = fig.subplots(1, 3)
    axes[0].imshow(picture)
    axes[0].set_title("input", fontsize=9)
    shown = axes[1].imshow(
        scaled * scale,
        cmap=cmap or colormap_for(signed),
        vmin=-scale if signed else 0.0,
        vmax=scale if scale > 0 else 1.0,
    )
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title(f"map (clipped at the {percentile:g}th percentile)", fontsize=8)
    axes[2].imshow(overlay(picture, saliency, alpha=alpha, cmap=cmap, signed=signed))
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or map_title(attribution, index, class_names).replace("\n", ": "))
    fig.tight_layout()
    return fig


def grid(
    images: Sequence[Any] | Any,
    attributions: Mapping[str, Attribution],
    *,
    class_names: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    reduce: str | Mapping[str, str] | None = None,
    alpha: float = 0.8,
    percentile: float = 99.0,
    size: float = 1.8,
    show_input: bool = True,
) -> Any:
    """Images (rows) by methods (columns), each map over its image.

    Args:
        images: the images, one per sample of the attributions (a batch tensor
            ``(N, C, H, W)`` or a list of anything ``to_image`` takes).
        attributions: method label -> ``Attribution`` of all the images.
        class_names: names of the classes, for the titles (method, class, probability).
        row_labels: a label per image, shown left of the row.
        reduce: one channel reduction for all, or one per method label (default:
            ``default_reduction`` of each method).
        show_input: a first column with the image itself.
    """
    pictures = [to_image(images[i]) for i in range(len(images))]
    if not attributions:
        raise SettingError("attributions", "at least one method's attribution", attributions, "")
    columns = list(attributions)
    n_cols = len(columns) + (1 if show_input else 0)
    fig = figure(size * n_cols + 0.2, (size + 0.45) * len(pictures) + 0.1)
    axes = np.asarray(fig.subplots(len(pictures), n_cols, squeeze=False))
    for r, picture in enumerate(pictures):
        c0 = 0
        if show_input:
            axes[r, 0].imshow(picture)
            axes[r, 0].set_title("input", fontsize=7)
            c0 = 1
        for c, label in enumerate(columns):
            attribution = attributions[label]
            how = reduce.get(label) if isinstance(reduce, Mapping) else reduce
            saliency, signed = _map_for(attribution, r, how, picture.shape[:2])
            ax = axes[r, c0 + c]
            shown = overlay(picture, saliency, alpha=alpha, percentile=percentile, signed=signed)
            ax.imshow(shown)
            ax.set_title(map_title(attribution, r, class_names, method=label), fontsize=7)
        if row_labels is not None and r < len(row_labels):
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    return fig


def _is_batch(image: Any) -> bool:
    shape = getattr(image, "shape", None)
    return shape is not None and len(shape) == 4

"""Figures of evaluations: deletion/insertion curves and the sanity-check figure.

The numbers come from ``attrib.metrics``; so do the drawings (``attrib.metrics.plots``), which
these functions reach lazily, so that ``attrib.viz`` holds every picture of the library under
one name without a second implementation.
"""

from __future__ import annotations

from typing import Any

from attrib.core.errors import SettingError

__all__ = ["curves_figure", "randomization_figure", "sanity_figure"]


def _plots() -> Any:
    try:
        from attrib.metrics import plots
    except ImportError as error:
        raise SettingError(
            "metrics", "attrib.metrics (deletion curves, sanity checks)", str(error), ""
        ) from None
    return plots


def curves_figure(curves: Any, *, title: str | None = None) -> Any:
    """Mean deletion / insertion / pixel-flipping curves with one standard error.

    ``curves``: an ``attrib.metrics.Curve``, a list of them, or a dict label -> curve; the
    legend gives each curve's area.
    """
    fig = _plots().plot_curves(curves)
    if title:
        fig.axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def sanity_figure(results: Any, sample: int = 0) -> Any:
    """The model-randomization sanity check (Adebayo et al. 2018): the maps of one sample,
    methods (rows) by randomization steps (columns). ``results``: ``RandomizationResult``s
    from ``attrib.metrics.model_randomization`` (one, a list, or a dict label -> result)."""
    return _plots().plot_randomization_maps(results, sample)


def randomization_figure(results: Any, measures: Any = None) -> Any:
    """Similarity to the original explanation against the layers randomized, per measure."""
    return _plots().plot_randomization(results, measures)

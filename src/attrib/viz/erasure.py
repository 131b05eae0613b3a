"""Figures of the attention erasure tests of Serrano and Smith (2019), ``attrib.text.erasure``.

- ``single_weight_figure``: ``Delta JS = JS(p, q_{i*}) - JS(p, q_r)`` against
  ``Delta alpha = alpha_{i*} - alpha_r``, one point per text, as in the paper's figure for the
  single-weight test (points above 0: removing the most-attended input moved the output
  more than removing a random one).
- ``set_fractions_figure``: the distribution of the fraction of inputs removed before the
  decision flips, one box per ranking.

Each returns a ``Figure`` that pyplot does not track (``_deps.figure``); nothing is shown or
saved (``save_png`` does that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from attrib.viz._deps import figure

if TYPE_CHECKING:  # the annotations only: drawing needs nothing else from attrib.text
    from attrib.text.erasure import SetErasure, SingleWeightErasure

__all__ = ["set_fractions_figure", "single_weight_figure"]


def single_weight_figure(result: SingleWeightErasure) -> Any:
    """Scatter of ``Delta JS`` (y) against ``Delta alpha`` (x), the texts where exactly one of
    the two removals flips the decision in another colour."""
    fig = figure(5.5, 4.0, dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    flips = result.flip_top.astype(bool) != result.flip_random.astype(bool)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.scatter(
        result.delta_alpha[~flips], result.delta_js[~flips], s=10, alpha=0.6, label="same decisions"
    )
    ax.scatter(
        result.delta_alpha[flips],
        result.delta_js[flips],
        s=14,
        alpha=0.8,
        color="C3",
        label="one removal flips the decision",
    )
    ax.set_xlabel(r"$\Delta\alpha = \alpha_{i^*} - \alpha_r$")
    ax.set_ylabel(r"$\Delta JS = JS(p, q_{i^*}) - JS(p, q_r)$")
    ax.set_title(f"Single attention weight erasure ({len(result.js_top)} texts)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def set_fractions_figure(result: SetErasure) -> Any:
    """Box plots of the fraction removed before the first flip, one per ranking.

    A text whose decision never flipped counts as 1 (everything removed), so that every
    ranking is drawn over the same texts; the share that flipped is in each label.
    """
    names = list(result.removed)
    data, shares = [], []
    for name in names:
        f = result.fractions(name)
        shares.append(float(np.mean(~np.isnan(f))) if len(f) else 0.0)
        data.append(np.where(np.isnan(f), 1.0, f))
    fig = figure(5.5, 4.0, dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels(
        [
            f"{n.replace('_', ' ')}\n(flips: {100 * share:.0f}%)"
            for n, share in zip(names, shares, strict=True)
        ],
        fontsize=8,
    )
    ax.set_ylabel("fraction removed before the decision flips\n(never flipped: 1)")
    ax.set_ylim(0, 1)
    ax.set_title("Erasing sets of inputs, most important first")
    fig.tight_layout()
    return fig

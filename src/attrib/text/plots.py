"""Plots of the erasure tests (matplotlib, an optional extra; imported only here).

- ``plot_single_weight``: ``Delta JS`` against ``Delta alpha`` per text, as in Serrano and
  Smith's figure for the single-weight test (points above 0 mean that removing the
  highest-attention input moved the output more than removing a random one).
- ``plot_set_fractions``: the distribution of the fraction of inputs removed before the
  decision flips, per ranking.
"""

from __future__ import annotations

import os

import numpy as np

from attrib.text.erasure import SetErasure, SingleWeightErasure

__all__ = ["plot_set_fractions", "plot_single_weight"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only; no display is needed
    import matplotlib.pyplot as plt

    return plt


def plot_single_weight(result: SingleWeightErasure, path: str | os.PathLike) -> str:
    """Scatter of ``Delta JS`` (y) against ``Delta alpha`` (x); saves a PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
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
    fig.savefig(path)
    plt.close(fig)
    return os.fspath(path)


def plot_set_fractions(result: SetErasure, path: str | os.PathLike) -> str:
    """Box plots of the fraction removed before the first flip, per ranking; saves a PNG.

    A text whose decision never flipped counts as 1 (everything removed), so that every
    ranking is drawn over the same texts; the share that flipped is in each label.
    """
    plt = _pyplot()
    names = list(result.removed)
    data, shares = [], []
    for name in names:
        f = result.fractions(name)
        shares.append(float(np.mean(~np.isnan(f))) if len(f) else 0.0)
        data.append(np.where(np.isnan(f), 1.0, f))
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
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
    fig.savefig(path)
    plt.close(fig)
    return os.fspath(path)

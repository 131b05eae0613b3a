"""Feature ablation: remove one player at a time.

The attribution of player ``j`` is the drop of the target score when ``j`` alone is removed
(replaced by the baseline, or averaged over a background set):

    a_j = f(x) - v([P] without j),

the leave-one-out estimate of occlusion studies (Zeiler and Fergus 2014, with arbitrary
feature groups instead of sliding windows; Captum's ``FeatureAblation``). It costs ``P``
forwards per sample and reference. It has no efficiency axiom, so ``delta`` is None.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attrib.methods.catalogue import register
from attrib.methods.perturbation.base import Estimate, PlayerMethod, players_grid
from attrib.methods.perturbation.removal import RemovalGame

__all__ = ["FeatureAblation"]


@register(
    family="perturbation",
    paper="Zeiler and Fergus 2014",
    short="score drop when one group is removed (leave-one-out)",
    summary="The drop of the score when one group of features (a cell) is removed.",
    formula="A_j = S_c(x) − S_c(x without group j)",
    signed=True,
    image_recipe=players_grid(7),
)
class FeatureAblation(PlayerMethod):
    """Feature ablation (the leave-one-out of Zeiler and Fergus 2014, over groups of
    features): ``a_j = f(x) - f(x without player j)`` for every player ``j`` of
    ``feature_mask``.

    Args:
        feature_mask, spread, baseline, background, output, batch_size: see ``PlayerMethod``
            (``feature_mask=None``: every feature alone; ``grid(cell)``; ``superpixels(n)``).
    """

    def estimate(self, game: RemovalGame, generator: torch.Generator | None) -> Estimate:
        p = game.players.count

        def all_but(index: torch.Tensor) -> torch.Tensor:
            return ~F.one_hot(index, p).bool()

        removed = game.values(all_but, p)
        return Estimate(game.full.view(-1, 1) - removed)

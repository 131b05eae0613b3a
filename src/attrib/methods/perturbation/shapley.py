"""Shapley values of the removal game: exactly, or by sampling permutations.

The Shapley value of player ``j`` in a ``P``-player game ``v`` (Shapley 1953, "A Value for
n-Person Games") is

    phi_j(v) = sum_{S subset of [P] without j} |S|! (P - |S| - 1)! / P! (v(S + j) - v(S)),

the only payment rule with efficiency (``sum_j phi_j = v([P]) - v(empty)``), symmetry,
linearity and the null-player property. Here ``v(S)`` is the target score with the players
outside ``S`` replaced by the baseline (or averaged over a background set), so ``v(empty)``
is ``f(baseline)`` and ``v([P]) = f(x)``; values are the "Shapley sampling values" of
Strumbelj and Kononenko (2014) when the background is a data set.

- ``ExactShapley``: all ``2^P`` coalitions (``2^P - 1`` forwards per sample and reference:
  the full coalition is the clean forward).
- ``ShapleySampling`` (Strumbelj and Kononenko 2014, "Explaining prediction models and
  individual predictions with feature contributions"): ``phi_j`` is the expected marginal
  contribution of ``j`` to the players before it in a uniformly random order. Each order
  costs ``P - 1`` forwards (``v(empty)`` is shared, ``v([P])`` is ``f(x)``) and gives every
  player one marginal contribution, which telescope: efficiency holds exactly for any number
  of orders. Antithetic orders (each followed by its reverse) reduce the variance.
"""

from __future__ import annotations

import math

import torch

from attrib.core.errors import SettingError
from attrib.core.seeding import draw_seed
from attrib.core.settings import FLAG, SEED, Count, Number, Optional, Setting
from attrib.methods.catalogue import register
from attrib.methods.perturbation.base import Estimate, PlayerMethod, players_grid
from attrib.methods.perturbation.coalitions import (
    from_bits,
    permutations,
    shapley_weights,
    sizes_of_bits,
)
from attrib.methods.perturbation.masks import Players
from attrib.methods.perturbation.removal import RemovalGame

__all__ = ["ExactShapley", "ShapleySampling", "shapley_values"]

# with tolerance=, the first round evaluates this many orders, every later one twice as many
FIRST_ROUND_ORDERS = 8


def shapley_values(values: torch.Tensor) -> torch.Tensor:
    """Exact Shapley values of games given by their values at every coalition.

    ``values[..., i]`` is ``v(S_i)`` where ``S_i`` is the set of bits of ``i`` (so ``values``
    has ``2^P`` entries in its last dimension); returns ``(..., P)`` in float64.
    """
    total = values.shape[-1]
    players = total.bit_length() - 1
    if total < 2 or 2**players != total:
        raise SettingError(
            "values", "2^P values, one per coalition in bit order", f"{total} values"
        )
    values = values.to(torch.float64)
    weights = shapley_weights(players).to(values.device)
    sizes = sizes_of_bits(players, values.device)
    index = torch.arange(total, device=values.device)
    phi = values.new_empty((*values.shape[:-1], players))
    for j in range(players):
        without = index[(index >> j) & 1 == 0]  # the coalitions S not containing j
        gain = values[..., without | (1 << j)] - values[..., without]
        phi[..., j] = (gain * weights[sizes[without]]).sum(-1)
    return phi


@register(
    family="perturbation",
    paper="Shapley 1953",
    short="exact Shapley values of feature groups",
    summary="Exact Shapley values of the groups of features, from all 2^P coalitions.",
    formula="φ_j = Σ_{S ⊆ P∖j} |S|!(P−|S|−1)!/P! (v(S ∪ j) − v(S))",
    signed=True,
    completeness=True,
    image_recipe=players_grid(3),
)
class ExactShapley(PlayerMethod):
    """Exact Shapley values (Shapley 1953) of groups of features, from all ``2^P`` coalitions:
    ``phi_j = sum_{S without j} |S|! (P - |S| - 1)! / P! (v(S + j) - v(S))``.

    Args:
        feature_mask: the players (see ``PlayerMethod``); at most ``max_players`` of them.
        max_players: the most players accepted (default 16: 65535 forwards per sample);
            beyond it use ``ShapleySampling`` or ``KernelSHAP``.
        baseline, background, spread, output, batch_size: see ``PlayerMethod``.

    ``delta`` is the efficiency gap ``sum_j phi_j - (v(all) - v(none))`` (rounding only).
    """

    max_players = Setting(16, Count(1, "players ExactShapley accepts"))

    def check_players(self, players: Players) -> None:
        if players.count > self.max_players:
            raise SettingError(
                "feature_mask",
                f"at most {self.max_players} players for ExactShapley (it evaluates all 2^P "
                "coalitions)",
                f"a mask with {players.count} players",
                "Group features into fewer players (grid(cell), superpixels(n), a coarser "
                "mask), use ShapleySampling or KernelSHAP, or raise max_players.",
            )

    def estimate(self, game: RemovalGame, generator: torch.Generator | None) -> Estimate:
        p = game.players.count
        # every coalition but the full one, whose value is f(x) from the clean forward
        partial = game.values(lambda index: from_bits(index, p), 2**p - 1)
        values = torch.cat([partial, game.full.view(-1, 1)], dim=1)
        phi = shapley_values(values)
        delta = phi.sum(1) - (values[:, -1] - values[:, 0])
        return Estimate(phi, delta)


@register(
    family="perturbation",
    paper="Strumbelj and Kononenko 2014",
    short="Shapley values from random orders",
    summary="Shapley values estimated from random orders of the groups of features.",
    formula="φ_j ≈ 1/m Σ_orders (v(pre_j ∪ j) − v(pre_j))",
    signed=True,
    completeness=True,
    aliases=("shapley_value_sampling",),  # Captum's name
    image_recipe=players_grid(4, samples=8, seed=0),
)
class ShapleySampling(PlayerMethod):
    """Shapley values estimated from random orders of the players (Strumbelj and Kononenko
    2014), ``phi_j = 1/m sum_orders (v(pre_j + j) - v(pre_j))``, with antithetic orders and a
    standard error per player.

    Args:
        samples: orders of the players (permutations) per sample; each costs ``P - 1``
            forwards per reference. With ``antithetic`` it must be even.
        antithetic: pair each order with its reverse (the pair's mean is one draw).
        tolerance: stop once every player's standard error (below) is at most this, in
            the units of the target score; ``samples`` is then the most orders evaluated.
            Rounds of 8 orders, then 16, 32, ... (each adding to the one before; the
            orders are those of the full draw, so a round's values are those of
            ``samples=`` its orders). The batch stops together: when its last sample gets
            there. ``None`` (default): all ``samples``.
        seed: makes the orders reproducible (``None``: drawn from torch's global RNG and
            recorded in ``params["seed"]``). The orders are shared by the samples of a batch,
            so a sample's values do not depend on the batch it is explained in.
        feature_mask, spread, baseline, background, output, batch_size: see ``PlayerMethod``.

    ``params["standard_error"]`` has the shape of ``values`` (spread like them) and
    ``params["player_standard_error"]`` is ``(N, P)``: the standard deviation of the
    independent draws (orders, or antithetic pairs) over the square root of their number
    (NaN with a single draw); ``params["orders"]`` the orders evaluated. ``delta`` is the
    efficiency gap, zero up to rounding.
    """

    samples = Setting(32, Count(1, "orders of the players per sample"))
    antithetic = Setting(True, FLAG)
    tolerance = Setting(None, Optional(Number(0, low_open=True, purpose="largest standard error")))
    seed = Setting(None, SEED)

    def configure(self) -> None:
        if self.antithetic and self.samples % 2:
            raise SettingError(
                "samples",
                "an even int with antithetic=True (orders come in pairs)",
                self.samples,
                "Use an even number, or antithetic=False.",
            )

    def seed_for_call(self) -> int | None:
        return draw_seed(self.seed)

    def rounds(self) -> list[int]:
        """Orders evaluated after each round: all at once, or doubling with ``tolerance``."""
        if self.tolerance is None:
            return [self.samples]
        orders, rounds = FIRST_ROUND_ORDERS, []
        while orders < self.samples:
            rounds.append(orders)
            orders *= 2
        return [*rounds, self.samples]

    def estimate(self, game: RemovalGame, generator: torch.Generator | None) -> Estimate:
        p, n = game.players.count, game.n
        assert generator is not None  # seed_for_call always gives a seed
        # every order is drawn first, so that a round's orders are a prefix of the same draw
        orders = permutations(self.samples, p, generator, self.antithetic)
        rank = orders.argsort(1).to(game.device)  # rank[t, j]: where player j comes in order t
        full = game.full.view(n, 1)
        gains: list[torch.Tensor] = []
        empty = full  # replaced by v(empty), evaluated with the first round's rows
        done = 0
        for t in self.rounds():
            # v(empty) and v(all) = f(x) are shared by every order; each order adds P - 1 rows
            v = self._prefix_values(game, rank[done:t], with_empty=done == 0)
            if done == 0:
                empty, v = v[:, :1], v[:, 1:]
            gains.append(self._gains(v, rank[done:t], empty, full))
            done = t
            per_player = torch.cat(gains, dim=1)  # (N, T, P)
            if self.antithetic:
                per_player = per_player.view(n, t // 2, 2, p).mean(2)
            draws = per_player.shape[1]
            phi = per_player.mean(1)
            if draws > 1:
                error = per_player.std(1, unbiased=True) / math.sqrt(draws)
            else:
                error = torch.full_like(phi, math.nan)
            if self.tolerance is not None and float(error.max()) <= self.tolerance:
                break
        delta = phi.sum(1) - (game.full - empty[:, 0])
        extra = {
            "standard_error": game.players.spread(error, game.inputs, self.spread),
            "player_standard_error": error,
            "orders": done,
        }
        return Estimate(phi, delta, extra)

    @staticmethod
    def _prefix_values(game: RemovalGame, rank: torch.Tensor, with_empty: bool) -> torch.Tensor:
        """``v`` of the first ``s = 1 .. P-1`` players of each of the orders given by their
        ranks ``(T, P)``: ``(N, T (P - 1))``, after ``v(empty)`` if ``with_empty``."""
        t, p = rank.shape
        inner = p - 1
        lead = 1 if with_empty else 0

        def coalitions(item: torch.Tensor) -> torch.Tensor:
            # item lead + t (P-1) + (s-1): the first s players of order t (item 0: empty)
            shifted = (item - lead).clamp(min=0)
            order = torch.div(shifted, max(inner, 1), rounding_mode="floor")
            size = shifted - order * inner + 1
            present = rank[order] < size.view(-1, 1)
            return present & (item >= lead).view(-1, 1)

        return game.values(coalitions, lead + t * inner)

    @staticmethod
    def _gains(
        v: torch.Tensor, rank: torch.Tensor, empty: torch.Tensor, full: torch.Tensor
    ) -> torch.Tensor:
        """Each player's marginal contribution in each order ``(N, T, P)``, from ``v`` of the
        orders' prefixes ``(N, T (P - 1))`` and the ranks ``(T, P)`` of the players."""
        t, p = rank.shape
        n = v.shape[0]
        # (N, T, P + 1): v of the first s players of each order, s = 0 .. P
        first = empty.expand(n, t).unsqueeze(2)
        last = full.expand(n, t).unsqueeze(2)
        prefix = torch.cat([first, v.view(n, t, p - 1), last], dim=2)
        gains = prefix[:, :, 1:] - prefix[:, :, :-1]  # gain of the player at each position
        return gains.gather(2, rank.unsqueeze(0).expand(n, t, p))

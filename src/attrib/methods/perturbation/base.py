"""What removal methods share: references, the forward at the clean input, players, seeds.

Every removal method runs one forward at the clean input (``ceil(N / batch_size)`` calls):
it resolves the target (``"predicted"`` is decided there, once, never at a perturbed copy),
gives ``f(x)`` (the value of the full coalition) and the ``Attribution.output``. The
perturbations then go through the core engine in ``ceil(rows / batch_size)`` forwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.core.grad import batched_forward_scores
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.settings import Anything, Choice, Instance, Optional, Setting
from attrib.core.target import Target
from attrib.methods.base import Method
from attrib.methods.perturbation.masks import SPREADS, Players, grid
from attrib.methods.perturbation.masks import resolve_players as _resolve_players
from attrib.methods.perturbation.references import resolve_references
from attrib.methods.perturbation.removal import RemovalGame

__all__ = ["Estimate", "PerturbationMethod", "PlayerMethod", "players_grid"]


class PerturbationMethod(Method):
    """Base of removal methods: ``baseline=`` / ``background=`` say what removed features
    become (see ``attrib.methods.perturbation.references``). They evaluate the model at
    copies of the input with features replaced, never its gradient, so integer and boolean
    inputs (token ids, categorical codes) are fine: a removed feature takes the baseline's
    value (a number, or a tensor of the input's dtype)."""

    integer_inputs = True

    baseline = Setting(0.0, Anything("a number, a name, a tensor, or a list of those"))
    background = Setting(
        None,
        Optional(
            Instance((torch.Tensor, dict), "a tensor (B, ...) of samples shaped like one input")
        ),
    )

    def clean_forward(self, inputs: Inputs, target: Target) -> tuple[torch.Tensor, Any, Any]:
        """``f_c(x)`` (float64), the raw output and the resolved target, at the clean input."""
        scores, output, resolved = batched_forward_scores(
            self.model, inputs, target, self.output, self.batch_size
        )
        return scores.to(torch.float64), output, resolved


@dataclass
class Estimate:
    """What a player method computes: values per player ``(N, P)``, the efficiency gap where
    the method has one, and extra entries for ``Attribution.params``."""

    values: torch.Tensor
    delta: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PlayerMethod(PerturbationMethod):
    """Base of the methods whose players are groups of features (``feature_mask=``).

    Args:
        feature_mask: which features are one player (see ``attrib.methods.perturbation.masks``):
            ``None`` (every feature), a tensor, ``grid(cell)``, ``superpixels(n)``, a callable.
        spread: how a player's value is put on its features: ``"divide"`` (default; split
            evenly, so ``values`` of a player sum to its value and ``sum(values)`` to the
            players' total) or ``"copy"`` (every feature shows the whole value, as Captum and
            shap draw it). The players' own values are ``params["player_values"]`` ``(N, P)``.
        baseline, background: what a removed player's features become.
    """

    feature_mask = Setting(None, Anything("None, a tensor, grid(cell), superpixels(n), a callable"))
    spread = Setting("divide", Choice(SPREADS))

    def check_players(self, players: Players) -> None:
        """Refuse a number of players the method cannot handle (before any forward)."""

    def estimate(self, game: RemovalGame, generator: torch.Generator | None) -> Estimate:
        """Values per player from the game; ``generator`` (seeded) for sampling methods."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def seed_for_call(self) -> int | None:
        """The seed of this call's randomness (sampling methods override)."""
        return None

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        players = _resolve_players(self.feature_mask, inputs)
        self.check_players(players)
        seed = self.seed_for_call()
        references = resolve_references(self.baseline, self.background, inputs, seed=seed)
        full, output, resolved = self.clean_forward(inputs, target)
        game = RemovalGame(
            self.model,
            inputs,
            players,
            references,
            resolved,
            self.output,
            self.batch_size,
            full,
        )
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        got = self.estimate(game, generator)
        params = {
            "player_values": got.values,
            "players": players.count,
            "feature_mask": players.masks,
            "perturbations": game.rows,
            **({"seed": seed} if seed is not None else {}),
            **got.extra,
        }
        return self.result(
            players.spread(got.values, inputs, self.spread),
            resolved.public,
            output,
            baseline=references.shown,
            delta=got.delta,
            **params,
        )


def players_grid(per_side: int, **extra: Any) -> Callable[[Any], dict[str, Any]]:
    """The image recipe of a player method: a grid of about ``per_side`` x ``per_side``
    square cells (``ceil(min(H, W) / per_side)`` pixels) as the players, and ``extra``."""

    def recipe(context: Any) -> dict[str, Any]:
        cell = max(1, math.ceil(min(context.size) / per_side))
        return {"feature_mask": grid(cell), **extra}

    return recipe

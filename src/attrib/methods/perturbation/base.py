"""What removal methods share: references, the forward at the clean input, players, seeds.

Every removal method runs one forward at the clean input (``ceil(N / batch_size)`` calls):
it resolves the target (``"predicted"`` is decided there, once, never at a perturbed copy),
gives ``f(x)`` (the value of the full coalition) and the ``Attribution.output``. The
perturbations then go through the core engine in ``ceil(rows / batch_size)`` forwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.grad import batched_forward_scores
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target
from attrib.methods.base import Method
from attrib.methods.perturbation.masks import SPREADS, FeatureMask, Players, Spread
from attrib.methods.perturbation.masks import resolve_players as _resolve_players
from attrib.methods.perturbation.references import resolve_references
from attrib.methods.perturbation.removal import RemovalGame

__all__ = [
    "Estimate",
    "PerturbationMethod",
    "PlayerMethod",
    "check_count",
    "check_seed",
    "draw_seed",
]


class PerturbationMethod(Method):
    """Base of removal methods: ``baseline=`` / ``background=`` say what removed features
    become (see ``attrib.methods.perturbation.references``)."""

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        baseline: Any = 0.0,
        background: Inputs | None = None,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output=output, batch_size=batch_size)
        if background is not None and not isinstance(background, (torch.Tensor, dict)):
            expected = "None or a tensor (B, ...) of samples shaped like one input"
            raise SettingError("background", expected, background)
        self.baseline = baseline
        self.background = background

    def settings(self) -> dict[str, Any]:
        return {
            "baseline": _shown(self.baseline),
            "background": None if self.background is None else "tensor",
            **super().settings(),
        }

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

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        feature_mask: FeatureMask = None,
        spread: Spread = "divide",
        baseline: Any = 0.0,
        background: Inputs | None = None,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model, baseline=baseline, background=background, output=output, batch_size=batch_size
        )
        if spread not in SPREADS:
            raise SettingError("spread", f"one of {SPREADS}", spread)
        self.feature_mask = feature_mask
        self.spread = spread

    def settings(self) -> dict[str, Any]:
        mask = self.feature_mask
        shown = "tensor" if isinstance(mask, torch.Tensor) else mask
        return {"feature_mask": shown, "spread": self.spread, **super().settings()}

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
        params = self.settings()
        params.update(
            player_values=got.values,
            players=players.count,
            feature_mask=players.masks,
            perturbations=game.rows,
        )
        if seed is not None:
            params["seed"] = seed
        params.update(got.extra)
        return Attribution(
            values=players.spread(got.values, inputs, self.spread),
            target=resolved.public,
            method=self.name,
            params=params,
            baseline=references.shown,
            delta=got.delta,
            output=output,
        )


def _shown(baseline: Any) -> Any:
    if isinstance(baseline, torch.Tensor):
        return "tensor"
    if isinstance(baseline, (list, tuple)):
        return [_shown(b) for b in baseline]
    return baseline


def check_count(value: Any, name: str, what: str, minimum: int = 1) -> int:
    """A positive int setting, or a ``SettingError`` saying what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingError(name, f"an int >= {minimum} ({what})", value)
    return value


def check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SettingError("seed", "an int (reproducible sampling) or None", seed)
    return seed


def draw_seed(seed: int | None) -> int:
    """``seed``, or one drawn from torch's global RNG (so ``torch.manual_seed`` repeats a call
    made with ``seed=None``); the sampling itself uses a dedicated generator."""
    if seed is not None:
        return seed
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))

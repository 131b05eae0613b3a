"""Removal methods (issue 6): ours against Captum 0.9 on the same perturbations.

Every case runs on torchvision resnet18 with 2 images (the issue's configuration) and removes
features to a zero baseline. Each method's limit is its perturbed forwards per image, plus
the forward at the clean input where the method really needs ``f(x)``, at the best per-row
forward cost (``Need("forward", P)``):

- ``occlusion``: ``Occlusion(window=56, strides=28)``, 7 x 7 = 49 windows; Captum
  ``Occlusion`` with window ``(3, 56, 56)`` and strides ``(3, 28, 28)``. P = 49 + 1 (``f(x)``).
- ``feature-ablation``: ``FeatureAblation(feature_mask=grid(56))``, 16 players; Captum
  ``FeatureAblation`` with the same mask. P = 16 + 1.
- ``shapley-sampling``: ``ShapleySampling(samples=4)`` on ``grid(56)``; Captum
  ``ShapleyValueSampling`` with ``n_samples=4``. P = 4 x 15 + 1 (``v(empty)``) + 1 (``f(x)``).
- ``kernel-shap``: ``KernelSHAP(samples=48, paired=False)`` on ``grid(56)``; Captum
  ``KernelShap`` with ``n_samples=50``. P = 48 + 1 (``v(empty)``) + 1 (``f(x)``).

Captum's ``n_samples=50`` for KernelShap counts its all-present and all-removed rows, so both
fit 48 sampled coalitions plus the two end points. Captum's Shapley sampling evaluates ``P``
coalitions per order (the last one is ``f(x)`` again) plus one forward at the baseline,
``1 + 4 x 16`` per image; ours ``1 + 4 x 15`` plus the clean forward. Captum's KernelShap
also runs one forward on the whole batch before explaining image by image.

- ``<case>``: Captum with its defaults (``perturbations_per_eval=1``: one perturbation of
  every image per forward, i.e. forwards of 2 rows).
- ``<case>-captum-best``: ``perturbations_per_eval`` at the cheapest rows per forward of
  the forward curve (``best_rows``), divided by the images Captum puts in each forward (2,
  except KernelShap, which explains one image at a time).

Ours runs with its default ``batch_size`` and ``spread="copy"`` where Captum draws the same
picture (every feature of a player shows the player's whole value; ours' default
``"divide"`` splits it over the player's features, one division of the result).

Agreement: occlusion and feature ablation compute the same thing and must agree to float
rounding. The randomised methods are checked on the same draws (``Contenders.agree``):

- Shapley sampling: Captum is given ours' orders of the players (its
  ``permutation_generator``); the estimates are the same average of marginal contributions.
- KernelSHAP: ours is given the coalitions Captum drew (recorded from its
  ``perturb_func``), image by image as Captum explains them. They cannot agree to rounding:
  Captum imposes ``v(empty)`` and ``v(all)`` by weighting those rows 1e6 in an unconstrained
  regression (an approximation of the constraint), ours solves the constrained problem
  exactly; the difference is of order 1e-6 relative.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from attrib import FeatureAblation, KernelSHAP, Occlusion, ShapleySampling
from attrib.methods.perturbation import KernelSampler, grid
from attrib.methods.perturbation.coalitions import permutations
from attrib.methods.perturbation.draws import Draw
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import best_rows
from benchmarks.limits import Need
from benchmarks.models import Setup

MODELS = ("resnet18",)
BATCHES = (2,)

WINDOW = 56
STRIDE = 28
CELL = 56  # grid cells of 56 x 56 pixels: 16 players on 224 x 224 images
SHAPLEY_ORDERS = 4
SHAPLEY_SEED = 0
KERNEL_SAMPLES = 50  # Captum's n_samples, its two end points included
KERNEL_SEED = 0


def _quiet() -> None:
    warnings.filterwarnings("ignore", message="You are providing multiple inputs for Lime")


def _players(setup: Setup) -> int:
    return math.ceil(setup.x.shape[-1] / CELL) ** 2


def _mask(setup: Setup) -> torch.Tensor:
    """The grid as Captum takes it: ``(1, 1, H, W)``, channels together."""
    return grid(CELL)(setup.x).view(1, 1, *setup.x.shape[-2:])


def _positions(setup: Setup) -> int:
    return (math.ceil((setup.x.shape[-1] - WINDOW) / STRIDE) + 1) ** 2


def _per_eval(setup: Setup, perturbations: int, images_per_forward: int) -> int:
    """Captum's best ``perturbations_per_eval``: the cheapest rows per forward of the
    forward curve, over the images Captum puts in each forward."""
    r = best_rows(setup, perturbations * images_per_forward, "forward")
    return max(1, r // images_per_forward)


# ---- occlusion ------------------------------------------------------------------------------


def _occlusion(setup: Setup, best: bool) -> Contenders:
    from captum.attr import Occlusion as CaptumOcclusion

    ours = Occlusion(setup.model, window=WINDOW, strides=STRIDE)
    peer = CaptumOcclusion(setup.model)
    x, target = setup.x, setup.target
    per_eval = _per_eval(setup, _positions(setup), setup.batch) if best else 1

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(
            x,
            sliding_window_shapes=(3, WINDOW, WINDOW),
            strides=(3, STRIDE, STRIDE),
            baselines=0.0,
            target=target,
            perturbations_per_eval=per_eval,
        )

    return Contenders(run_ours, run_peer, _label(best, per_eval))


def _label(best: bool, per_eval: int) -> str:
    return f"captum ppe={per_eval}" if best else "captum"


# ---- feature ablation -----------------------------------------------------------------------


def _ablation(setup: Setup, best: bool) -> Contenders:
    from captum.attr import FeatureAblation as CaptumAblation

    ours = FeatureAblation(setup.model, feature_mask=grid(CELL), spread="copy")
    peer = CaptumAblation(setup.model)
    x, target, mask = setup.x, setup.target, _mask(setup)
    per_eval = _per_eval(setup, _players(setup), setup.batch) if best else 1

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def run_peer() -> torch.Tensor:
        return peer.attribute(
            x, baselines=0.0, target=target, feature_mask=mask, perturbations_per_eval=per_eval
        )

    return Contenders(run_ours, run_peer, _label(best, per_eval))


# ---- Shapley sampling -----------------------------------------------------------------------


def _shapley(setup: Setup, best: bool) -> Contenders:
    from captum.attr import ShapleyValueSampling

    ours = ShapleySampling(
        setup.model,
        samples=SHAPLEY_ORDERS,
        seed=SHAPLEY_SEED,
        feature_mask=grid(CELL),
        spread="copy",
    )
    peer = ShapleyValueSampling(setup.model)
    x, target, mask = setup.x, setup.target, _mask(setup)
    players = _players(setup)
    per_eval = _per_eval(setup, SHAPLEY_ORDERS * players, setup.batch) if best else 1

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def captum(generator: Callable[[int, int], Any] | None) -> torch.Tensor:
        if generator is not None:
            peer.permutation_generator = generator
        try:
            return peer.attribute(
                x,
                baselines=0.0,
                target=target,
                feature_mask=mask,
                n_samples=SHAPLEY_ORDERS,
                perturbations_per_eval=per_eval,
            )
        finally:
            from captum.attr._core.shapley_value import _perm_generator

            peer.permutation_generator = _perm_generator

    def run_peer() -> torch.Tensor:
        return captum(None)

    def ours_orders(num_features: int, num_samples: int) -> Iterator[list[int]]:
        # the orders ShapleySampling(seed=SHAPLEY_SEED) draws, in its order
        generator = torch.Generator().manual_seed(SHAPLEY_SEED)
        orders = permutations(num_samples, num_features, generator, ours.antithetic)
        yield from orders.tolist()

    def peer_same_draws() -> torch.Tensor:
        return captum(ours_orders)

    return Contenders(run_ours, run_peer, _label(best, per_eval), agree=(run_ours, peer_same_draws))


# ---- KernelSHAP -----------------------------------------------------------------------------


class _GivenCoalitions(KernelSHAP):
    """KernelSHAP on a given table of coalitions drawn i.i.d. by the Shapley kernel, as
    ``sampling="kernel"`` draws them (for the agreement check only)."""

    def __init__(self, table: torch.Tensor, **kwargs: Any) -> None:
        super().__init__(samples=table.shape[0], paired=False, sampling="kernel", **kwargs)
        self.table = table

    def draw(self, players: int, generator: torch.Generator) -> Draw:
        return Draw.iid(self.table, 1.0 / KernelSampler().probability(self.table), pairs=False)


def _kernel_shap(setup: Setup, best: bool) -> Contenders:
    from captum.attr import KernelShap

    _quiet()
    ours = KernelSHAP(
        setup.model,
        samples=KERNEL_SAMPLES - 2,
        sampling="kernel",
        paired=False,
        seed=KERNEL_SEED,
        feature_mask=grid(CELL),
        spread="copy",
    )
    peer = KernelShap(setup.model)
    x, target, mask = setup.x, setup.target, _mask(setup)
    # Captum explains one image at a time: each forward holds perturbations of one image
    per_eval = _per_eval(setup, KERNEL_SAMPLES, 1) if best else 1

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    def captum(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return peer.attribute(
            inputs,
            baselines=0.0,
            target=targets,
            feature_mask=mask,
            n_samples=KERNEL_SAMPLES,
            perturbations_per_eval=per_eval,
        )

    def run_peer() -> torch.Tensor:
        return captum(x, target)

    def recorded_draws(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Captum on image ``i`` alone, and the coalitions it drew (end points left out)."""
        drawn: list[torch.Tensor] = []
        original = peer.perturb_func

        def recording(inputs: Any, **kwargs: Any) -> Iterator[torch.Tensor]:
            for z in original(inputs, **kwargs):
                drawn.append(z.clone())
                yield z

        peer.perturb_func = recording
        try:
            torch.manual_seed(KERNEL_SEED + i)
            values = captum(x[i : i + 1], target[i : i + 1])
        finally:
            peer.perturb_func = original
        table = torch.cat(drawn[2:KERNEL_SAMPLES]).bool()  # after all-present, all-removed
        return values, table

    draws: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def draws_of(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i not in draws:
            draws[i] = recorded_draws(i)
        return draws[i]

    def ours_same_draws() -> torch.Tensor:
        parts = []
        for i in range(setup.batch):
            given = _GivenCoalitions(
                draws_of(i)[1], model=setup.model, feature_mask=grid(CELL), spread="copy"
            )
            parts.append(given(x[i : i + 1], target=target[i : i + 1]).values)
        return torch.cat(parts)

    def peer_same_draws() -> torch.Tensor:
        return torch.cat([draws_of(i)[0] for i in range(setup.batch)])

    return Contenders(
        run_ours, run_peer, _label(best, per_eval), agree=(ours_same_draws, peer_same_draws)
    )


# ---- registration ---------------------------------------------------------------------------


def _register(name: str, make: Callable[[Setup, bool], Contenders], rows: int) -> None:
    needs = (Need("forward", rows),)
    for suffix, best in (("", False), ("-captum-best", True)):
        register(
            Case(
                f"{name}{suffix}",
                family="perturbation",
                needs=needs,
                build=lambda setup, make=make, best=best: make(setup, best),
                models=MODELS,
                batches=BATCHES,
                sizes=(_SIDE,),  # the counts below are for this size
            )
        )


# per image, for 224 x 224 inputs: perturbed forwards + the forwards the method really needs
_SIDE = 224
_POSITIONS = (math.ceil((_SIDE - WINDOW) / STRIDE) + 1) ** 2  # 49 windows
_PLAYERS = math.ceil(_SIDE / CELL) ** 2  # 16 players
_register("occlusion", _occlusion, _POSITIONS + 1)
_register("feature-ablation", _ablation, _PLAYERS + 1)
_register("shapley-sampling", _shapley, SHAPLEY_ORDERS * (_PLAYERS - 1) + 2)
_register("kernel-shap", _kernel_shap, KERNEL_SAMPLES)

"""KernelSHAP and LIME: one weighted linear surrogate of the removal game, two configurations.

Both fit ``g(z) = phi_0 + phi . z`` to the game ``v`` (``z`` in ``{0, 1}^P`` says which
players are present) by weighted least squares over coalitions ``z_1 .. z_M``:

    minimise  sum_i w_i (v(z_i) - phi_0 - phi . z_i)^2  (+ alpha |phi|^2),

where the coalitions are drawn from a *sampler* ``q`` and weighted by a *kernel* ``pi``
through importance weights ``w_i = pi(z_i) / q(z_i)`` (up to one constant), so the surrogate
minimises ``sum_z pi(z) (v(z) - g(z))^2`` whatever the sampler. When the budget covers every
coalition the sampler can draw, all of them are taken once with ``w = pi(z)``.

- ``KernelSHAP`` (Lundberg and Lee 2017, "A Unified Approach to Interpreting Model
  Predictions"): the Shapley kernel
  ``pi(z) = (P - 1) / (C(P, |z|) |z| (P - |z|))`` and the infinite weights at the empty and
  the full coalition as constraints: ``phi_0 = v(empty)`` and
  ``sum phi = v(all) - v(empty)`` (efficiency), solved exactly through the KKT system of
  the constrained problem. With every coalition it returns the exact Shapley values (the
  theorem of Lundberg and Lee). Coalitions come in complementary pairs (Covert and Lee
  2021), drawn by leverage scores (``sampling="leverage"``, the default: Leverage SHAP,
  Musco and Witter 2025, stratified by size without replacement; see ``leverage``) or
  with ``q ~ pi`` (``sampling="kernel"``, the classic sampler). Its standard error per
  player comes from the draw itself (``surrogate_error``); ``tolerance=`` stops early.
- ``LIME`` (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?"): players present
  with probability 1/2 independently, the exponential kernel
  ``pi(z) = exp(-D(1, z)^2 / sigma^2)`` with the cosine distance ``D(1, z) = 1 - sqrt(|z|/P)``
  between ``z`` and the instance itself, a free intercept and a ridge penalty ``alpha``.

Everything is solved in torch (float64): the coalitions are shared by the samples of a batch,
so one ``(P+1) x (P+1)`` system serves every sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.core.seeding import draw_seed
from attrib.core.settings import (
    FLAG,
    REQUIRED,
    SEED,
    Choice,
    Count,
    Fixed,
    Function,
    Instance,
    Number,
    Optional,
    Setting,
)
from attrib.methods.catalogue import register
from attrib.methods.perturbation.base import Estimate, PlayerMethod, players_grid
from attrib.methods.perturbation.coalitions import (
    bernoulli_sample,
    from_bits,
    kernel_sample,
    shapley_kernel,
)
from attrib.methods.perturbation.draws import Draw
from attrib.methods.perturbation.interactions import (
    choose_order,
    interaction_design,
    shapley_readout,
)
from attrib.methods.perturbation.leverage import LeverageSampler
from attrib.methods.perturbation.masks import Players
from attrib.methods.perturbation.removal import RemovalGame
from attrib.methods.perturbation.surrogate_error import surrogate_standard_error

__all__ = [
    "LIME",
    "BernoulliSampler",
    "ExponentialKernel",
    "KernelSHAP",
    "KernelSampler",
    "LeverageSampler",
    "LinearSurrogate",
    "ShapleyKernel",
    "fit_surrogate",
]

# A surrogate solves a (P+1)-square system; beyond this many players it is the wrong tool.
MAX_SURROGATE_PLAYERS = 4096
# 2^P coalitions are enumerated only while that stays small
MAX_ENUMERATED_PLAYERS = 24
# with tolerance=, the first round draws this many units (or 2 per player, if more), and
# every later round twice as many as the one before
FIRST_ROUND_UNITS = 32


# ---- samplers: which coalitions, with which probability q(z) (up to a constant) ------------


@dataclass(frozen=True)
class KernelSampler:
    """Non-trivial coalitions with ``q(z)`` proportional to the Shapley kernel."""

    def support(self, players: int) -> int:
        return 2**players - 2

    def enumerate(self, players: int) -> torch.Tensor:
        return from_bits(torch.arange(1, 2**players - 1), players)

    def sample(
        self, count: int, players: int, generator: torch.Generator, paired: bool
    ) -> torch.Tensor:
        return kernel_sample(count, players, generator, paired)

    def probability(self, coalitions: torch.Tensor) -> torch.Tensor:
        return shapley_kernel(coalitions.shape[1], coalitions.sum(1))


@dataclass(frozen=True)
class BernoulliSampler:
    """Every player present with probability 1/2 independently: ``q`` is uniform."""

    def support(self, players: int) -> int:
        return 2**players

    def enumerate(self, players: int) -> torch.Tensor:
        return from_bits(torch.arange(2**players), players)

    def sample(
        self, count: int, players: int, generator: torch.Generator, paired: bool
    ) -> torch.Tensor:
        return bernoulli_sample(count, players, generator, paired)

    def probability(self, coalitions: torch.Tensor) -> torch.Tensor:
        return torch.ones(coalitions.shape[0], dtype=torch.float64)


# ---- kernels: how much each coalition matters, pi(z) ----------------------------------------


@dataclass(frozen=True)
class ShapleyKernel:
    """``pi(z) = (P - 1) / (C(P, |z|) |z| (P - |z|))`` (infinite at empty and full)."""

    def __call__(self, coalitions: torch.Tensor) -> torch.Tensor:
        return shapley_kernel(coalitions.shape[1], coalitions.sum(1))

    def size_mass(self, players: int, sizes: torch.Tensor) -> torch.Tensor:
        """``C(P, s) pi(s) = (P - 1) / (s (P - s))``: the kernel's weight on all coalitions
        of size ``s`` together (``inf`` at 0 and ``P``)."""
        s = sizes.to(torch.float64)
        return (players - 1) / (s * (players - s))


@dataclass(frozen=True)
class ExponentialKernel:
    """``pi(z) = exp(-D^2 / width^2)``, ``D = 1 - sqrt(|z| / P)`` the cosine distance between
    ``z`` and the all-present coalition (LIME's distance on its binary representation; the
    empty coalition is at distance 1, as scikit-learn's cosine distance puts a zero vector)."""

    width: float = 0.25

    def __call__(self, coalitions: torch.Tensor) -> torch.Tensor:
        players = coalitions.shape[1]
        distance = 1 - torch.sqrt(coalitions.sum(1).to(torch.float64) / players)
        return torch.exp(-(distance**2) / self.width**2)


# ---- the weighted regression --------------------------------------------------------------


def fit_surrogate(
    coalitions: torch.Tensor,
    weights: torch.Tensor,
    values: torch.Tensor,
    *,
    alpha: float = 0.0,
    efficiency: tuple[torch.Tensor, torch.Tensor] | None = None,
    design: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least squares ``v(z) ~ phi_0 + phi . z``; returns ``(phi (N, P), phi_0 (N,))``.

    With ``efficiency``, ``design`` ``(M, k)`` replaces the columns ``z`` by a surrogate's
    own (``interactions``: monomials of up to 3 players), and the coefficients ``(N, k)``
    are returned in place of ``phi``.

    ``coalitions`` is ``(M, P)`` bool, ``weights`` ``(M,)``, ``values`` ``(N, M)``. With
    ``efficiency=(v_empty, v_full)`` (each ``(N,)``) the intercept is fixed to ``v_empty`` and
    ``sum phi = v_full - v_empty`` is a constraint (Lagrange multiplier, KKT system); without
    it the intercept is free and unpenalised and ``alpha`` is a ridge penalty on ``phi``.
    The system is shared by all N samples; a rank-deficient system (too few coalitions for
    the players) gets the least-norm solution.
    """
    m, p = coalitions.shape
    z = coalitions.to(torch.float64).cpu()
    w = weights.to(torch.float64).cpu()
    y = values.to(torch.float64).cpu()
    n = y.shape[0]
    if efficiency is not None:
        empty, full = (t.to(torch.float64).cpu() for t in efficiency)
        if design is not None:
            z = design.to(torch.float64).cpu()
            p = z.shape[1]
        gram = z.T @ (w.view(-1, 1) * z)
        system = torch.zeros(p + 1, p + 1, dtype=torch.float64)
        system[:p, :p] = gram
        system[:p, p] = 1.0
        system[p, :p] = 1.0
        rhs = torch.empty(p + 1, n, dtype=torch.float64)
        rhs[:p] = z.T @ (w.view(-1, 1) * (y - empty.view(-1, 1)).T)
        rhs[p] = full - empty
        solution = _solve(system, rhs)
        return solution[:p].T.contiguous(), empty
    design = torch.cat([torch.ones(m, 1, dtype=torch.float64), z], dim=1)
    system = design.T @ (w.view(-1, 1) * design)
    system[1:, 1:] += alpha * torch.eye(p, dtype=torch.float64)
    rhs = design.T @ (w.view(-1, 1) * y.T)
    solution = _solve(system, rhs)
    return solution[1:].T.contiguous(), solution[0].contiguous()


def _solve(system: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    try:
        solution, info = torch.linalg.solve_ex(system, rhs)
        if int(info) == 0 and bool(torch.isfinite(solution).all()):
            residual = (system @ solution - rhs).abs().max()
            if float(residual) <= 1e-8 * max(1.0, float(rhs.abs().max())):
                return solution
    except RuntimeError:  # pragma: no cover - solve_ex reports through info
        pass
    return torch.linalg.lstsq(system, rhs, driver="gelsd").solution


# ---- the method ---------------------------------------------------------------------------


Sampler = KernelSampler | BernoulliSampler | LeverageSampler
SURROGATES = ("auto", "linear", "cubic")
SAMPLINGS = {"leverage": LeverageSampler(), "kernel": KernelSampler()}
Kernel = Callable[[torch.Tensor], torch.Tensor]


class LinearSurrogate(PlayerMethod):
    """A weighted linear surrogate of the removal game: sampler x kernel x constraint.

    ``KernelSHAP`` and ``LIME`` are this class with their paper's configuration; other
    combinations (say LIME's kernel with paired sampling) are one constructor call away.

    Args:
        samples: coalitions (forwards) per sample and reference. When it reaches the number
            of coalitions the sampler can draw (``2^P - 2`` for the kernel and leverage
            samplers, ``2^P`` for Bernoulli), every coalition is taken once instead.
        sampler: ``LeverageSampler()``, ``KernelSampler()`` or ``BernoulliSampler()``.
        kernel: a function of the coalitions ``(M, P)`` bool giving ``pi(z)`` ``(M,)``.
        efficiency: constrain ``phi_0 = v(empty)`` and ``sum phi = v(all) - v(empty)``.
        alpha: ridge penalty on ``phi`` (only without the efficiency constraint).
        paired: draw coalitions in complementary pairs.
        surrogate: ``"linear"`` (the additive model), or, with ``efficiency``, ``"cubic"``
            (monomials of up to 3 players; its Shapley values read off exactly:
            ``interactions``) or ``"auto"`` (cubic once the draw holds twice as many
            coalitions as the cubic has coefficients, and not every coalition).
        tolerance: with ``efficiency``, stop once every player's standard error is at most
            this (in the units of the target score); ``samples`` is then the most coalitions
            drawn. Rounds of 32 units (pairs, or coalitions unpaired; at least two per
            player), doubling, each reusing the rows of the one before. ``None`` (default):
            all ``samples``.
        seed: makes the coalitions reproducible (``None``: drawn from torch's global RNG,
            recorded in ``params["seed"]``); they are shared by the samples of a batch.

    With ``efficiency``, ``params["player_standard_error"]`` ``(N, P)`` and
    ``params["standard_error"]`` (spread like ``values``) are the estimate's standard error
    (``surrogate_error``; 0 when every coalition was taken).
    """

    samples = Setting(REQUIRED, Count(1, "coalitions evaluated per sample"))
    sampler = Setting(
        REQUIRED,
        Instance(
            (LeverageSampler, KernelSampler, BernoulliSampler),
            "LeverageSampler(), KernelSampler() or BernoulliSampler()",
        ),
    )
    kernel = Setting(REQUIRED, Function("a function coalitions (M, P) -> weights (M,)"))
    efficiency = Setting(REQUIRED, FLAG)
    alpha = Setting(0.0, Number(0, purpose="ridge penalty"))
    paired = Setting(False, FLAG)
    surrogate = Setting("linear", Choice(SURROGATES))
    tolerance = Setting(None, Optional(Number(0, low_open=True, purpose="largest standard error")))
    seed = Setting(None, SEED)

    def configure(self) -> None:
        if self.surrogate != "linear" and not self.efficiency:
            raise SettingError(
                "surrogate",
                "'linear' without efficiency=True (the others read Shapley values off)",
                self.surrogate,
                "Use efficiency=True, or surrogate='linear'.",
            )
        if self.tolerance is not None and not self.efficiency:
            raise SettingError(
                "tolerance",
                "None without efficiency=True (the standard error is KernelSHAP's)",
                self.tolerance,
                "Use efficiency=True, or leave tolerance=None.",
            )

    def seed_for_call(self) -> int | None:
        return draw_seed(self.seed)

    def check_players(self, players: Players) -> None:
        if players.count > MAX_SURROGATE_PLAYERS:
            raise SettingError(
                "feature_mask",
                f"at most {MAX_SURROGATE_PLAYERS} players for a linear surrogate",
                f"a mask with {players.count} players",
                "Group features into players: feature_mask=grid(cell) or superpixels(n).",
            )

    def draw(self, players: int, generator: torch.Generator) -> Draw:
        """The coalitions of one call, with their design (``Draw``)."""
        if players <= MAX_ENUMERATED_PLAYERS and self.samples >= self.sampler.support(players):
            table = self.sampler.enumerate(players)
            ones = torch.ones(table.shape[0], dtype=torch.float64)
            return Draw.iid(table, ones, pairs=False, enumerated=True)
        if isinstance(self.sampler, LeverageSampler):
            return self.sampler.draw(self.samples, players, generator, self.paired)
        table = self.sampler.sample(self.samples, players, generator, self.paired)
        return Draw.iid(table, 1.0 / self.sampler.probability(table), self.paired)

    def coalitions(self, players: int, generator: torch.Generator) -> tuple[torch.Tensor, bool]:
        """The coalitions ``(M, P)`` of one call and whether they are all of them."""
        draw = self.draw(players, generator)
        return draw.table, draw.enumerated

    def weights(self, draw: Draw, sizes: torch.Tensor) -> torch.Tensor:
        """``pi(z)`` times each row's expansion (``Draw``): through the kernel's mass per
        size where it has one and the draw is stratified by size (no ``C(P, s)``, so no
        overflow for many players), else ``kernel(table) * expansion``."""
        by_size = draw.size_expansion()
        mass = getattr(self.kernel, "size_mass", None)
        if by_size is not None and mass is not None:
            return mass(draw.table.shape[1], sizes).to(torch.float64) * by_size
        return self.kernel(draw.table).to(torch.float64) * draw.expansion()

    def rounds(self, draw: Draw, players: int) -> list[int]:
        """Units evaluated after each round: all at once, or doubling with ``tolerance``."""
        if self.tolerance is None or draw.enumerated:
            return [draw.units]
        units, rounds = max(FIRST_ROUND_UNITS, 2 * players), []
        while units < draw.units:
            rounds.append(units)
            units *= 2
        return [*rounds, draw.units]

    def estimate(self, game: RemovalGame, generator: torch.Generator | None) -> Estimate:
        p = game.players.count
        assert generator is not None  # seed_for_call always gives a seed
        whole = self.draw(p, generator)
        full = game.full.cpu()
        # v(empty) is the constraint's intercept: one more row, in the first engine call
        evaluated = torch.zeros(game.n, 0, dtype=torch.float64)
        empty: torch.Tensor | None = None
        # players with no feature in a sample (superpixels of another image of the batch)
        absent = (game.players.sizes == 0).cpu()
        for units in self.rounds(whole, p):
            draw = whole.prefix(units)
            table = draw.table
            new = table[evaluated.shape[1] :]
            if self.efficiency and empty is None:
                got = game.values_of(torch.cat([torch.zeros(1, p, dtype=torch.bool), new]))
                empty, fresh = got[:, 0].cpu(), got[:, 1:].cpu()
            else:
                fresh = game.values_of(new).cpu()
            evaluated = torch.cat([evaluated, fresh], dim=1)
            sizes = table.sum(1)
            weights = self.weights(draw, sizes)
            if self.efficiency:
                # the empty and the full coalition are constraints, not rows of the regression
                trivial = (sizes == 0) | (sizes == p)
                weights = torch.where(trivial, torch.zeros_like(weights), weights)
            if not bool(torch.isfinite(weights).all()):
                raise SettingError(
                    "kernel",
                    "finite weights at every coalition the sampler draws (an infinite weight "
                    "needs efficiency=True, which makes it a constraint)",
                    self.kernel,
                )
            fit = self._fit(draw, weights, evaluated, empty, full, absent)
            phi, error = fit.phi, fit.error
            if self.tolerance is not None and error is not None:
                if float(error.max()) <= self.tolerance:
                    break
        device = game.device
        extra: dict[str, Any] = {
            "intercept": fit.intercept.to(device),
            "fit": _weighted_r2(evaluated, fit.fitted, weights).to(device),
            "enumerated": draw.enumerated,
            "surrogate_order": fit.order,
        }
        if error is not None:
            extra["player_standard_error"] = error.to(device)
            extra["standard_error"] = game.players.spread(
                error.to(device), game.inputs, self.spread
            )
        delta = None if empty is None else (phi.sum(1) - (full - empty)).to(device)
        return Estimate(phi.to(device), delta, extra)

    def _fit(
        self,
        draw: Draw,
        weights: torch.Tensor,
        evaluated: torch.Tensor,
        empty: torch.Tensor | None,
        full: torch.Tensor,
        absent: torch.Tensor,
    ) -> _Fit:
        """The surrogate fitted to ``evaluated`` ``(N, M)``, per group of samples that lack the
        same players: a player with no feature in a sample is a dummy there (its exact
        Shapley value is 0), so its column is left out of that sample's regression rather
        than given a share of the sampling noise that no feature would show."""
        n, p = absent.shape
        phi = torch.zeros(n, p, dtype=torch.float64)
        error = None if empty is None else torch.zeros(n, p, dtype=torch.float64)
        intercept = torch.zeros(n, dtype=torch.float64)
        fitted = torch.zeros_like(evaluated)
        orders = []
        groups, group_of = torch.unique(absent, dim=0, return_inverse=True)
        for g, lacks in enumerate(groups):
            rows = (group_of == g).nonzero().view(-1)
            keep = (~lacks).nonzero().view(-1)
            table = draw.table[:, keep]
            order = choose_order(self.surrogate, len(keep), table.shape[0], draw.enumerated)
            design = interaction_design(table, order)
            readout = shapley_readout(len(keep), order) if order > 1 else None
            values = evaluated[rows]
            bounds = None if empty is None else (empty[rows], full[rows])
            coefficients, icpt = fit_surrogate(
                table,
                weights,
                values,
                alpha=self.alpha,
                efficiency=bounds,
                design=design if readout is not None else None,
            )
            phi[rows.view(-1, 1), keep] = (
                coefficients if readout is None else coefficients @ readout.T
            )
            intercept[rows] = icpt
            fitted[rows] = icpt.view(-1, 1) + coefficients @ design.T
            orders.append((len(rows), order))
            if error is not None and bounds is not None and not draw.enumerated:
                error[rows.view(-1, 1), keep] = surrogate_standard_error(
                    draw, weights, values, bounds[0], coefficients, design, readout
                )
        return _Fit(phi, intercept, fitted, error, max(orders)[1])


@dataclass
class _Fit:
    """A fitted surrogate: Shapley estimates ``phi`` ``(N, P)``, intercepts, fitted values
    ``(N, M)``, standard errors (``None`` without efficiency) and the polynomial's order (that
    of the largest group of samples)."""

    phi: torch.Tensor
    intercept: torch.Tensor
    fitted: torch.Tensor
    error: torch.Tensor | None
    order: int


def _weighted_r2(values: torch.Tensor, fitted: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted R^2 of the surrogate on its own coalitions, per sample (LIME's ``score``)."""
    w = weights.view(1, -1)
    total = w.sum()
    if float(total) <= 0:
        return torch.full((values.shape[0],), math.nan, dtype=torch.float64)
    mean = (w * values).sum(1, keepdim=True) / total
    residual = (w * (values - fitted) ** 2).sum(1)
    spread = (w * (values - mean) ** 2).sum(1)
    return 1 - residual / spread.clamp(min=1e-300)


@register(
    family="perturbation",
    paper="Lundberg and Lee 2017",
    short="Shapley values by weighted regression",
    summary="A linear model fitted to random coalitions with the Shapley kernel; its "
    "coefficients are Shapley value estimates.",
    formula="min_φ Σ_z π(z) (v(z) − φ₀ − φ·z)²,  π = (P−1)/(C(P,|z|) |z| (P−|z|))",
    signed=True,
    completeness=True,
    image_recipe=players_grid(7, samples=256, seed=0),
)
class KernelSHAP(LinearSurrogate):
    """KernelSHAP (Lundberg and Lee 2017): Shapley values as the efficiency-constrained
    weighted regression with the Shapley kernel, on paired samples of coalitions.

    Args:
        samples: coalitions per sample and reference (default 512); with
            ``samples >= 2^P - 2`` every coalition is used once and the result is exact.
        sampling: which coalitions are drawn (the regression is the same):

            - ``"leverage"`` (default): Leverage SHAP (Musco and Witter 2025): sizes drawn
              uniformly (the leverage scores of the regression), in complementary pairs,
              without replacement and stratified by size, each coalition weighted
              ``pi(z) N_k / n_k``; small sizes are enumerated first. Fewer model calls for
              the same error (``benchmarks``: ``shapley-curves``); see ``leverage``.
            - ``"kernel"``: the classic sampler: i.i.d. coalitions with probability
              proportional to the Shapley kernel (``p(s) ~ 1 / (s (P - s))``), paired
              (Covert and Lee 2021).
        paired: complementary pairs (default True).
        surrogate: the function fitted to the coalitions (``interactions``): ``"auto"``
            (default) fits the additive model, or, once the draw holds twice as many
            coalitions as a cubic has coefficients (377 for 13 players, 696 for 16), a
            polynomial with the interactions of up to 3 players, whose Shapley values are
            exact (the regression-adjusted estimator of Witter et al. 2025): 3 to 4 times
            fewer calls for 1% error on the ``shapley-curves`` games. ``"linear"``: always
            the additive model (KernelSHAP as published); ``"cubic"``: always the cubic.
        tolerance: stop once every player's standard error is at most this (target-score
            units); ``samples`` is then the most drawn. See ``LinearSurrogate``.
        seed, feature_mask, spread, baseline, background, output, batch_size: see
            ``LinearSurrogate`` and ``PlayerMethod``.

    ``delta`` is the efficiency gap (zero up to rounding: it is a constraint);
    ``params["intercept"]`` is ``v(empty)``, ``params["fit"]`` the weighted R^2,
    ``params["player_standard_error"]`` ``(N, P)`` and ``params["standard_error"]`` (spread
    like ``values``) the standard error of the estimate (0 when enumerated).
    """

    samples = Setting(512, Count(1, "coalitions evaluated per sample"))
    sampling = Setting("leverage", Choice(tuple(SAMPLINGS)))
    paired = Setting(True, FLAG)
    surrogate = Setting("auto", Choice(SURROGATES))
    sampler = Fixed()
    kernel = Fixed(ShapleyKernel())
    efficiency = Fixed(True)
    alpha = Fixed(0.0)

    def configure(self) -> None:
        self.assign("sampler", SAMPLINGS[self.sampling])
        super().configure()


@register(
    family="perturbation",
    paper="Ribeiro et al. 2016",
    short="local linear surrogate model",
    summary="A sparse-ish linear model fitted to random coalitions, weighted by closeness to "
    "the input.",
    formula="min_g Σ_z π_x(z) (v(z) − g(z))² + Ω(g)",
    signed=True,
    image_recipe=players_grid(7, samples=256, seed=0),
)
class LIME(LinearSurrogate):
    """LIME (Ribeiro et al. 2016) on players: Bernoulli(1/2) coalitions, the exponential
    kernel on the cosine distance to the instance, ridge regression with a free intercept.

    Args:
        samples: coalitions per sample and reference (default 512; ``>= 2^P``: all of them).
        kernel_width: ``sigma`` of ``pi(z) = exp(-D^2 / sigma^2)`` (default 0.25). The
            ``lime`` package weighs by ``sqrt(exp(-D^2 / w^2))``, i.e. ``sigma = w sqrt(2)``.
        alpha: ridge penalty (default 1.0, as ``lime``'s ``Ridge(alpha=1)``).
        paired: complementary pairs (default False, as in the paper).
        seed, feature_mask, spread, baseline, background, output, batch_size: as KernelSHAP.

    Every player gets a coefficient (``lime``'s ``num_features >= P`` without feature
    selection). ``params["intercept"]`` and ``params["fit"]`` (weighted R^2) describe the
    surrogate; there is no efficiency, so ``delta`` is None.
    """

    samples = Setting(512, Count(1, "coalitions evaluated per sample"))
    kernel_width = Setting(0.25, Number(0, low_open=True, purpose="sigma of the kernel"))
    alpha = Setting(1.0, Number(0, purpose="ridge penalty"))
    sampler = Fixed(BernoulliSampler())
    kernel = Fixed()
    efficiency = Fixed(False)
    surrogate = Fixed("linear")
    tolerance = Fixed(None)

    def configure(self) -> None:
        self.assign("kernel", ExponentialKernel(self.kernel_width))

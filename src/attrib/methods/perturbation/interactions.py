"""A surrogate with interaction terms: KernelSHAP's regression over a richer function class.

KernelSHAP fits an additive model ``v(z) ~ v(empty) + phi . z`` with the Shapley kernel and
reads the Shapley values off its coefficients. Fitting instead a polynomial with the
interactions of up to ``d`` players,

    q(z) = v(empty) + sum_S theta_S prod_{i in S} z_i,      1 <= |S| <= d,

by the same weighted least squares and constraint (``q(all) = v(all)``: the coefficients sum
to ``v(all) - v(empty)``), the estimate is the *exact* Shapley value of ``q``, which a
monomial splits equally among its players (Harsanyi dividends):

    phi_i(q) = sum_{S containing i} theta_S / |S|.

This is the regression-adjusted estimator of Witter, Musco et al. (NeurIPS 2025,
"Regression-adjusted Monte Carlo estimators for Shapley values and probabilistic values")
with the polynomial as its function class and the Shapley-kernel fit as its adjustment:
their estimate ``phi(q) + phi_hat(v - q)`` adds a sampled estimate of the residual game,
and when ``q`` is the kernel-weighted fit on the same draw that correction is zero (the
residuals are orthogonal to every additive function with ``sum a = 0``, which is what
KernelSHAP's constrained regression of them solves), so ``phi(q)`` is the whole estimate.

Why order 3 and not 2: with complementary pairs, each of the same weight, the additive fit
is already exact on games of order 2 (a pair's two rows cancel the even part of the
residual), so pairwise terms change nothing; measured on the ``shapley-curves`` games, the
cubic fit reaches 1% error with 3 to 4 times fewer model calls than the additive one once
the draw holds about twice as many coalitions as the cubic has coefficients
(``1 + P + C(P, 2) + C(P, 3)``: 377 for 13 players, 696 for 16), and is worse below that
(it overfits). ``choose_order`` applies that rule. With every coalition the fit is exact
for any order (the same orthogonality), so an enumerated draw keeps the cheaper additive
fit. The standard error is the same delta-method estimate as the additive fit's
(``surrogate_error``), with the design's columns and the readout above.
"""

from __future__ import annotations

import itertools
import math

import torch

__all__ = [
    "CUBIC_OVER_COEFFICIENTS",
    "MAX_COEFFICIENTS",
    "choose_order",
    "coefficients",
    "interaction_design",
    "shapley_readout",
]

# the cubic surrogate is used once the draw has this many coalitions per coefficient
CUBIC_OVER_COEFFICIENTS = 2.0
# and only while its normal equations stay small (P <= 29 players)
MAX_COEFFICIENTS = 4096


def coefficients(players: int, order: int) -> int:
    """Monomials of 1 to ``order`` players: ``sum_k C(P, k)``."""
    return sum(math.comb(players, k) for k in range(1, order + 1))


def choose_order(surrogate: str, players: int, rows: int, enumerated: bool) -> int:
    """The polynomial order of the fit: 1 (``"linear"``) or 3 (``"cubic"``); ``"auto"``
    takes 3 when the draw has at least ``CUBIC_OVER_COEFFICIENTS`` coalitions per cubic
    coefficient and not every coalition (see the module)."""
    if surrogate == "linear" or enumerated:
        return 1
    k = coefficients(players, 3)
    if surrogate == "cubic":
        return 3
    return 3 if k <= MAX_COEFFICIENTS and rows >= CUBIC_OVER_COEFFICIENTS * k else 1


def _monomials(players: int, order: int) -> list[torch.Tensor]:
    """Per order ``k``: the ``(C(P, k), k)`` player sets, in lexicographic order."""
    sets = []
    for k in range(1, order + 1):
        chosen = list(itertools.combinations(range(players), k))
        sets.append(torch.tensor(chosen, dtype=torch.long).view(len(chosen), k))
    return sets


def interaction_design(coalitions: torch.Tensor, order: int) -> torch.Tensor:
    """The design ``(M, sum_k C(P, k))`` float64 of the polynomial: for each monomial ``S``,
    ``prod_{i in S} z_i`` (orders 1, 2, ..., ``order``, each in lexicographic order)."""
    z = coalitions.to(torch.float64)
    if order == 1:
        return z
    columns = [z]
    for sets in _monomials(z.shape[1], order)[1:]:
        columns.append(z[:, sets].prod(dim=2))
    return torch.cat(columns, dim=1)


def shapley_readout(players: int, order: int) -> torch.Tensor:
    """``R`` ``(P, sum_k C(P, k))`` float64 with ``phi = R theta``: ``R[i, S] = 1 / |S|``
    when ``i`` is in ``S`` (each monomial's Shapley values: equal shares of it)."""
    blocks = []
    for sets in _monomials(players, order):
        k = sets.shape[1]
        block = torch.zeros(players, sets.shape[0], dtype=torch.float64)
        columns = torch.arange(sets.shape[0]).repeat_interleave(k)
        block[sets.reshape(-1), columns] = 1.0 / k
        blocks.append(block)
    return torch.cat(blocks, dim=1)

"""Leverage-score sampling of coalitions (Leverage SHAP), stratified and without replacement.

Musco and Witter (ICLR 2025, "Provably Accurate Shapley Value Estimation via Leverage Score
Sampling") show that the leverage score of coalition ``z`` in KernelSHAP's regression (the
weighted design ``sqrt(pi) Z`` with the efficiency constraint projected out) is proportional
to ``1 / C(P, |z|)``: sampling by leverage scores draws the *size* uniformly from
``1 .. P - 1`` and then a uniform subset of that size, where KernelSHAP's sampler draws small
and large sizes far more often (``p(s) ~ 1 / (s (P - s))``). With paired sampling and
sampling without replacement, and the regression solved with the efficiency constraint
exactly, they prove that ``O(P log P + P / eps)`` coalitions give an ``eps``-accurate
solution of the regression, and measure a lower error than KernelSHAP on every game.

This module draws the same design with a fixed number of units (Leverage SHAP draws each
coalition independently with probability ``min(1, c / C(P, |z|))``, so its count varies):

- the strata are the sizes paired with their complements: stratum ``k`` holds the
  ``C(P, k)`` pairs ``(z, complement of z)`` with ``|z| = k < P / 2``, and for even ``P``
  the ``C(P, P/2) / 2`` pairs of the middle size; unpaired, stratum ``s`` holds the
  ``C(P, s)`` coalitions of size ``s``;
- leverage allocation: every size gets the same number of coalitions, so a stratum of two
  sizes gets one unit per "turn" and the middle stratum half a unit; a stratum that is
  used up (all its units drawn) drops out and the others share its turns. Small strata
  (sizes 1 and ``P - 1``: ``P`` pairs) are thus enumerated first, as shap's KernelExplainer
  does for the sizes its budget covers;
- the units of a stratum are a simple random sample without replacement, in random order.

The turns are a Sainte-Lague sequence (stratum ``k``'s ``j``-th unit comes at time
``(j + 1/2) / share_k``), so the allocation at a budget is a prefix of the allocation at
any larger one: ``Draw.prefix`` gives the draw of a smaller budget, used by ``tolerance=``.
A sampled coalition of stratum ``k`` is weighted ``pi(z) N_k / n_k`` (Horvitz-Thompson), so
the weighted regression estimates the one over all coalitions; with every unit drawn it is
that regression, and KernelSHAP's solution is the exact Shapley values.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from attrib.methods.perturbation.coalitions import from_bits
from attrib.methods.perturbation.draws import Draw

__all__ = ["LeverageSampler", "leverage_strata"]

# a stratum is enumerated (then permuted) when it has at most this many units, or when the
# draw takes more than a quarter of it (rejection sampling would then repeat itself often)
ENUMERATE_UNITS = 4096
BIG = 2**1000  # populations above this are stored as this (float64 holds up to ~2^1024)


def leverage_strata(players: int, paired: bool) -> list[tuple[int, int, float]]:
    """The strata ``(size, units N_k, share)``: the smaller size of the stratum, how many
    units it holds, and its share of the turns (1 per coalition size it covers)."""
    p = players
    if not paired:
        return [(s, math.comb(p, s), 1.0) for s in range(1, p)]
    strata = [(k, math.comb(p, k), 2.0) for k in range(1, (p + 1) // 2)]
    if p % 2 == 0 and p >= 2:
        strata.append((p // 2, math.comb(p, p // 2) // 2, 1.0))
    return strata


@dataclass(frozen=True)
class LeverageSampler:
    """Coalitions by leverage scores: sizes uniform, paired, stratified, without replacement
    (Musco and Witter 2025; see the module's docstring)."""

    def support(self, players: int) -> int:
        return 2**players - 2

    def enumerate(self, players: int) -> torch.Tensor:
        return from_bits(torch.arange(1, 2**players - 1), players)

    def draw(self, count: int, players: int, generator: torch.Generator, paired: bool) -> Draw:
        """``count`` coalitions (``count // 2`` pairs, at least one, when ``paired``)."""
        p = players
        strata = leverage_strata(p, paired)
        if not strata:
            empty = torch.zeros(0, p, dtype=torch.bool)
            return Draw.iid(empty, torch.zeros(0, dtype=torch.float64), paired)
        units = max(1, count // 2) if paired else count
        order = _turns(strata, units)  # stratum of each unit, in the order they are taken
        tables, positions = [], []
        for k, (size, population, _) in enumerate(strata):
            taken = (order == k).nonzero().view(-1)
            if len(taken) == 0:
                continue
            middle = paired and 2 * size == p
            tables.append(_distinct_subsets(p, size, len(taken), population, middle, generator))
            positions.append(taken)
        # unit i of the draw is the next unit of stratum order[i]
        table = torch.empty(units, p, dtype=torch.bool)
        table[torch.cat(positions)] = torch.cat(tables)
        if paired:
            table = torch.stack([table, ~table], dim=1).flatten(0, 1)
            unit = torch.arange(units).repeat_interleave(2)
        else:
            unit = torch.arange(units)
        # N_k as a float (beyond float64, a number no draw comes near: the fraction is 0)
        sizes = torch.tensor([float(min(n, BIG)) for _, n, _ in strata], dtype=torch.float64)
        # N_k / C(P, s): 1, or 1/2 for the middle stratum of pairs
        share = torch.tensor(
            [0.5 if paired and 2 * s == p else 1.0 for s, _, _ in strata], dtype=torch.float64
        )
        base = torch.ones(table.shape[0], dtype=torch.float64)
        return Draw(table, unit, order, sizes, base, size_share=share)


def _turns(strata: list[tuple[int, int, float]], units: int) -> torch.Tensor:
    """The stratum of each of the first ``units`` units: the Sainte-Lague sequence of the
    shares, stratum ``k``'s ``j``-th unit at time ``(j + 1/2) / share_k``, ``j < N_k``."""
    times, owner = [], []
    for k, (_, population, share) in enumerate(strata):
        j = torch.arange(min(population, units), dtype=torch.float64)
        times.append((j + 0.5) / share)
        owner.append(torch.full_like(j, k, dtype=torch.long))
    t, o = torch.cat(times), torch.cat(owner)
    # ties go to the smaller stratum index: sort by owner first, then stably by time
    by_owner = torch.argsort(o, stable=True)
    order = by_owner[torch.argsort(t[by_owner], stable=True)]
    return o[order[:units]]


def _distinct_subsets(
    players: int,
    size: int,
    count: int,
    population: int,
    middle: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """``count`` distinct units of a stratum, uniformly without replacement, in random order:
    subsets of ``size`` players (``middle``: the pairs of the middle size, each given by its
    member that holds player 0)."""
    if population <= max(ENUMERATE_UNITS, 4 * count):
        every = _every_subset(players, size, middle)
        pick = torch.randperm(population, generator=generator)[:count]
        return every[pick]
    found: dict[bytes, torch.Tensor] = {}
    while len(found) < count:
        # random subsets of one size: the players ranked below ``size`` by i.i.d. keys
        keys = torch.rand(2 * (count - len(found)), players, generator=generator)
        rows = keys.argsort(1).argsort(1) < size
        if middle:
            rows = torch.where(rows[:, :1], rows, ~rows)
        for row in rows:
            key = row.numpy().tobytes()
            if key not in found and len(found) < count:
                found[key] = row
    return torch.stack(list(found.values()))


def _every_subset(players: int, size: int, middle: bool) -> torch.Tensor:
    """Every subset of ``size`` players (``middle``: those holding player 0), bool rows."""
    if middle:
        chosen = [(0, *rest) for rest in itertools.combinations(range(1, players), size - 1)]
    else:
        chosen = list(itertools.combinations(range(players), size))
    table = torch.zeros(len(chosen), players, dtype=torch.bool)
    if size > 0:
        table[torch.arange(len(chosen)).view(-1, 1), torch.tensor(chosen).view(len(chosen), -1)] = (
            True
        )
    return table

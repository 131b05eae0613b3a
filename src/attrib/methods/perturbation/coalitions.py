"""Coalitions of ``P`` players as bool rows ``(count, P)``: enumerated, permuted or sampled.

Pure functions of their arguments (and of a ``torch.Generator`` where random), so that every
sampling method is reproducible from its ``seed`` and independent of how rows are chunked.

- ``from_bits``: coalition ``i`` is the set of players whose bit is set in ``i``;
- ``shapley_weights``: ``|S|! (P - |S| - 1)! / P!``, the weight of ``v(S + j) - v(S)`` in
  player ``j``'s Shapley value (Shapley 1953);
- ``shapley_kernel``: ``(P - 1) / (C(P, |z|) |z| (P - |z|))``, the Shapley kernel of
  KernelSHAP (Lundberg and Lee 2017), infinite at the empty and the full coalition;
- ``permutations``: random orders of the players, optionally antithetic (each order followed
  by its reverse);
- ``kernel_sample`` and ``bernoulli_sample``: i.i.d. coalitions, optionally paired (each
  followed by its complement).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "bernoulli_sample",
    "from_bits",
    "kernel_sample",
    "permutations",
    "shapley_kernel",
    "shapley_weights",
    "sizes_of_bits",
]


def from_bits(index: torch.Tensor, players: int) -> torch.Tensor:
    """Bool rows ``(len(index), players)``: player ``j`` is in coalition ``i`` iff bit ``j``
    of ``i`` is set."""
    bits = torch.arange(players, device=index.device)
    return (index.view(-1, 1).bitwise_right_shift(bits) & 1).bool()


def sizes_of_bits(players: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``|S|`` for every coalition ``S = 0 .. 2^P - 1`` in bit order."""
    index = torch.arange(2**players, device=device)
    return from_bits(index, players).sum(1)


def shapley_weights(players: int) -> torch.Tensor:
    """``w(s) = s! (P - s - 1)! / P!`` for ``s = 0 .. P - 1``, float64 (they sum to 1 over
    the coalitions not containing a given player: ``sum_s C(P-1, s) w(s) = 1``)."""
    p = players
    return torch.tensor(
        [math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)],
        dtype=torch.float64,
    )


def shapley_kernel(players: int, sizes: torch.Tensor) -> torch.Tensor:
    """The Shapley kernel ``pi(z) = (P - 1) / (C(P, |z|) |z| (P - |z|))`` at coalition sizes
    ``sizes``; ``inf`` at ``|z| = 0`` and ``|z| = P`` (those are constraints, not samples)."""
    p = players
    s = sizes.to(torch.float64)
    log_binom = torch.lgamma(torch.tensor(p + 1.0)) - torch.lgamma(s + 1) - torch.lgamma(p - s + 1)
    inner = (s > 0) & (s < p)
    safe = torch.where(inner, s, torch.ones_like(s))
    kernel = (p - 1) / (torch.exp(log_binom) * safe * (p - safe))
    return torch.where(inner, kernel, torch.full_like(s, math.inf))


def permutations(
    count: int, players: int, generator: torch.Generator, antithetic: bool
) -> torch.Tensor:
    """``count`` random orders of the players, long ``(count, P)``; with ``antithetic``, order
    ``2i + 1`` is order ``2i`` reversed (Mitchell et al. 2022, "Sampling Permutations for
    Shapley Value Estimation")."""
    drawn = (count + 1) // 2 if antithetic else count
    orders = torch.rand(drawn, players, generator=generator, dtype=torch.float64).argsort(1)
    if antithetic:
        orders = torch.stack([orders, orders.flip(1)], dim=1).flatten(0, 1)[:count]
    return orders


def kernel_sample(
    count: int, players: int, generator: torch.Generator, paired: bool
) -> torch.Tensor:
    """``count`` coalitions drawn with probability proportional to the Shapley kernel.

    The size ``s`` is drawn with ``p(s) ~ C(P, s) pi(s) = (P - 1) / (s (P - s))`` for
    ``0 < s < P``, then a subset of that size uniformly: so ``q(z) ~ pi(z)``. With ``paired``
    each coalition is followed by its complement (Covert and Lee 2021, "Improving KernelSHAP");
    the kernel is symmetric, so complements have the same distribution.
    """
    if players < 2:
        return torch.zeros(0, players, dtype=torch.bool)
    drawn = (count + 1) // 2 if paired else count
    s = torch.arange(1, players, dtype=torch.float64)
    size_probability = 1.0 / (s * (players - s))
    sizes = torch.multinomial(size_probability, drawn, replacement=True, generator=generator) + 1
    return _subsets_of_size(sizes, players, generator, paired)[:count]


def bernoulli_sample(
    count: int, players: int, generator: torch.Generator, paired: bool, p: float = 0.5
) -> torch.Tensor:
    """``count`` coalitions, each player present with probability ``p`` independently
    (LIME's sampler for images and tabular data; Ribeiro et al. 2016)."""
    drawn = (count + 1) // 2 if paired else count
    present = torch.rand(drawn, players, generator=generator, dtype=torch.float64) < p
    if paired:
        present = torch.stack([present, ~present], dim=1).flatten(0, 1)
    return present[:count]


def _subsets_of_size(
    sizes: torch.Tensor, players: int, generator: torch.Generator, paired: bool
) -> torch.Tensor:
    # the ranks of i.i.d. uniform keys are a uniform random permutation; the players ranked
    # below s are a uniform subset of size s
    keys = torch.rand(len(sizes), players, generator=generator, dtype=torch.float64)
    ranks = keys.argsort(1).argsort(1)
    present = ranks < sizes.view(-1, 1)
    if paired:
        present = torch.stack([present, ~present], dim=1).flatten(0, 1)
    return present

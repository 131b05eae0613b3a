"""Seeds derived from a user's seed and a row's coordinates, independent of chunking.

A method or metric that draws random numbers per row (sample ``i``, draw ``j``, input ``k``)
seeds one generator per row with ``mix_seed(seed, i, j, k)``: the draws then do not depend
on how rows are split into chunks, nor on the order chunks run in, and the first draws stay
the same when more are asked for.
"""

from __future__ import annotations

__all__ = ["MASK64", "draw_seed", "mix_seed", "splitmix64"]

MASK64 = (1 << 64) - 1


def splitmix64(z: int) -> int:
    """One step of SplitMix64 (Steele, Lea and Flood 2014): a bijective 64-bit mixer."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mix_seed(seed: int, *keys: int) -> int:
    """A 64-bit seed from ``seed`` and ``keys`` by chained SplitMix64."""
    z = splitmix64(seed & MASK64)
    for key in keys:
        z = splitmix64(z ^ (key & MASK64))
    return z


def draw_seed(seed: int | None = None) -> int:
    """``seed``, or one drawn from torch's global RNG (so ``torch.manual_seed`` repeats a call
    made with ``seed=None``); the sampling itself then uses a dedicated generator."""
    if seed is not None:
        return seed
    import torch

    return int(torch.randint(0, 2**62, (), dtype=torch.int64))

"""Row seeds: SplitMix64 against its published sequence, and mixing that tells keys apart."""

from __future__ import annotations

from attrib.core.seeding import MASK64, mix_seed, splitmix64

GOLDEN = 0x9E3779B97F4A7C15


def test_splitmix64_reproduces_the_reference_sequence_from_seed_0():
    # the reference generator adds the golden gamma to its state, then mixes:
    # outputs e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f (Vigna's splitmix64.c)
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert [splitmix64((k * GOLDEN) & MASK64) for k in range(3)] == expected


def test_mix_seed_depends_on_every_key_and_their_order():
    seeds = {mix_seed(7, i, j) for i in range(20) for j in range(20)}
    assert len(seeds) == 400
    assert mix_seed(7, 1, 2) != mix_seed(7, 2, 1)
    assert mix_seed(7) == splitmix64(7) and all(0 <= s <= MASK64 for s in seeds)

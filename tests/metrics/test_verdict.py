"""The verdict: which methods to trust, from numbers derived by hand through its rules."""

from __future__ import annotations

import math

import pytest
import torch

from attrib.core.errors import SettingError
from attrib.metrics import random_maps, verdict


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_against_the_random_map_by_paired_differences():
    # deletion (lower is better): d_i = r_i - v_i = 0.2 for every image: sd 0, better
    # insertion (higher is better), the same numbers: d_i = -0.2, worse
    faithfulness = {
        "deletion": {"A": _t(0.1, 0.2, 0.3)},
        "insertion": {"A": _t(0.1, 0.2, 0.3)},
    }
    random = {"deletion": _t(0.3, 0.4, 0.5), "insertion": _t(0.3, 0.4, 0.5)}
    directions = {"deletion": "lower", "insertion": "higher"}
    judged = verdict(faithfulness, directions, random).methods[0]
    deletion, insertion = judged.comparisons
    assert (deletion.outcome, insertion.outcome) == ("better", "worse")
    assert deletion.advantage == pytest.approx(0.2) and deletion.sem == pytest.approx(0.0)
    assert (deletion.value, deletion.random) == (pytest.approx(0.2), pytest.approx(0.4))
    assert judged.trust == "distrust" and judged.reason == "worse than a random map on insertion"


def test_a_difference_within_two_standard_errors_is_no_clear_difference():
    # d = 0.3, -0.1, 0.1: mean 0.1, sd sqrt((0.04 + 0.04 + 0) / 2) = 0.2, se = 0.2 / sqrt(3)
    # = 0.115; 0.1 < 2 se: a tie; with margin 0.5 (0.058) it is better
    faithfulness = {"insertion": {"A": _t(0.6, 0.2, 0.4)}}
    random = {"insertion": _t(0.3, 0.3, 0.3)}
    tie = verdict(faithfulness, {"insertion": "higher"}, random).methods[0].comparisons[0]
    assert tie.advantage == pytest.approx(0.1)
    assert tie.sem == pytest.approx(0.2 / math.sqrt(3))
    assert tie.outcome == "tie"
    loose = verdict(faithfulness, {"insertion": "higher"}, random, margin=0.5)
    assert loose.methods[0].comparisons[0].outcome == "better"


def test_the_sanity_check_passes_fails_or_cannot_tell():
    # per-step means over the 2 images: original 1, then 0.3, 0.1, 0.1: kept 0.5 / 3 < 0.5
    passing = _t(1, 1, 0.4, 0.2, 0.1, 0.1, 0.0, 0.2).view(4, 2)
    # 0.85, 0.8, 0.55: kept 2.2 / 3 = 0.733 >= 0.5
    failing = _t(1, 1, 0.9, 0.8, 0.8, 0.8, 0.6, 0.5).view(4, 2)
    # a method that does not reproduce its own map (0.3 < 0.5) cannot show a change
    noisy = _t(0.3, 0.3, 0.0, 0.0).view(2, 2)
    judged = verdict({}, {}, {}, {"P": passing, "F": failing, "N": noisy})
    p, f, n = judged.methods
    assert p.sanity.kept == pytest.approx(0.5 / 3) and p.sanity.passed is True
    assert f.sanity.kept == pytest.approx(2.2 / 3) and f.sanity.passed is False
    assert n.sanity.floor == pytest.approx(0.3) and n.sanity.passed is None
    # a randomization result is read through its similarity of the measure
    from attrib.metrics import RandomizationResult

    result = RandomizationResult("P", "cascading", ("original", "a", "b", "c"), {"ssim": passing})
    assert verdict({}, {}, {}, {"P": result}, measure="ssim").methods[0].sanity.passed is True


def test_the_sentence_names_whom_to_trust_and_why():
    faithfulness = {
        "deletion": {
            "Good": _t(0.1, 0.1),  # better than 0.3 (d = 0.2, 0.2)
            "Blind": _t(0.1, 0.1),  # better, but fails the sanity check
            "Worse": _t(0.5, 0.5),  # worse
            "Unchecked": _t(0.1, 0.1),  # better, not sanity-checked
            "Same": _t(0.2, 0.4),  # d = 0.1, -0.1: a tie
        }
    }
    sanity = {"Good": _t(1, 1, 0, 0).view(2, 2), "Blind": _t(1, 1, 1, 1).view(2, 2)}
    sanity["Same"] = sanity["Good"]
    judged = verdict(faithfulness, {"deletion": "lower"}, {"deletion": _t(0.3, 0.3)}, sanity)
    assert [m.trust for m in judged.methods] == [
        "trust",
        "distrust",
        "distrust",
        "undecided",
        "undecided",
    ]
    assert judged.sentence() == (
        "Trust on this model (on 2 images): Good. "
        "Do not trust: Blind (failed the randomization check); "
        "Worse (worse than a random map on deletion). "
        "Undecided: Unchecked (not sanity-checked); "
        "Same (no clear difference from a random map on deletion)."
    )
    # methods named but never evaluated are undecided, for that reason
    alone = verdict({}, {}, {}, methods=["Lonely"])
    assert (
        alone.methods[0].reason == "not sanity-checked; no faithfulness metric against a random map"
    )
    assert alone.sentence().startswith("No method earned trust on this model. Undecided:")


def test_values_must_pair_with_the_random_maps():
    with pytest.raises(SettingError, match="one value per sample"):
        verdict({"deletion": {"A": _t(0.1, 0.2)}}, {"deletion": "lower"}, {"deletion": _t(0.3)})


def test_random_maps_are_uniform_seeded_and_keep_their_first_rows():
    x = torch.zeros(3, 2, 5, 7)
    maps = random_maps(x, seed=4)
    assert maps.values.shape == (3, 5, 7) and maps.channel_dim is None
    assert maps.method == "random map"
    assert float(maps.values.min()) >= 0.0 and float(maps.values.max()) < 1.0
    assert torch.equal(random_maps(x[:1], seed=4).values[0], maps.values[0])
    assert not torch.equal(random_maps(x, seed=5).values, maps.values)
    assert not torch.equal(maps.values[0], maps.values[1])

"""The engine: exact reductions, chunk-size invariance, ceil(rows / batch_size) calls."""

from __future__ import annotations

import math

import pytest
import torch

from attrib.core.batching import chunks, default_batch_size, run_chunks
from attrib.core.errors import SettingError

N, S, D = 3, 7, 5


def rows_table() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(N, S, D, dtype=torch.float64) * 10 + 3


def evaluator(table, seen_sizes=None):
    def evaluate(chunk):
        if seen_sizes is not None:
            seen_sizes.append(len(chunk))
        return table[chunk.sample, chunk.item]

    return evaluate


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 20, 21, 100])
def test_reductions_equal_the_direct_formulas_at_every_chunk_size(batch_size):
    table = rows_table()
    weights = torch.linspace(0.1, 1.0, S, dtype=torch.float64)
    expected = {
        "sum": (table * weights.view(1, S, 1)).sum(1),
        "mean": table.mean(1),
        "mean_square": (table**2).mean(1),
        "var": table.var(1, unbiased=False),
        "keep": table,
    }
    for reduce, want in expected.items():
        got = run_chunks(
            evaluator(table), N, S, batch_size, reduce, weights=weights if reduce == "sum" else None
        )
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_per_sample_weights():
    table = rows_table()
    weights = torch.rand(N, S, dtype=torch.float64)
    got = run_chunks(evaluator(table), N, S, 4, "sum", weights=weights)
    torch.testing.assert_close(got, (table * weights.unsqueeze(-1)).sum(1))


def test_variance_stays_exact_for_large_offsets():
    # values near 1e3 with a spread near 0.1: float32 keeps ~6e-5 of each value, so
    # mean-of-squares minus square-of-mean loses every digit while merged moments keep ~1e-3
    table = (rows_table() * 1e-2 + 1e3).float()
    got = run_chunks(evaluator(table), N, S, 2, "var")
    want = table.double().var(1, unbiased=False)
    torch.testing.assert_close(got.double(), want, rtol=1e-2, atol=0)
    naive = (table**2).mean(1) - table.mean(1) ** 2
    assert ((naive.double() - want).abs() / want).max() > 0.1


@pytest.mark.parametrize(
    "total_rows, batch_size", [(21, 4), (1001, 500), (64, 16), (5, 50), (7, 1)]
)
def test_calls_are_ceil_rows_over_batch_size_and_never_exceed_it(total_rows, batch_size):
    sizes = []
    table = torch.randn(total_rows, 1, 2)
    run_chunks(evaluator(table, sizes), total_rows, 1, batch_size, "keep")
    assert len(sizes) == math.ceil(total_rows / batch_size)
    assert max(sizes) <= batch_size
    assert sum(sizes) == total_rows
    assert max(sizes) - min(sizes) <= 1  # balanced: no wastefully small last chunk


def test_chunks_cover_rows_in_order():
    seen = [
        (int(s), int(i)) for c in chunks(2, 3, 4) for s, i in zip(c.sample, c.item, strict=True)
    ]
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_dict_results_reduce_leaf_by_leaf():
    table = rows_table()

    def evaluate(chunk):
        rows = table[chunk.sample, chunk.item]
        return {"a": rows, "b": rows[:, :2] * 2}

    got = run_chunks(evaluate, N, S, 4, "mean")
    torch.testing.assert_close(got["a"], table.mean(1))
    torch.testing.assert_close(got["b"], table[..., :2].mean(1) * 2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_bad_batch_size(bad):
    with pytest.raises(SettingError, match="batch_size"):
        run_chunks(evaluator(rows_table()), N, S, bad, "sum")


def test_unknown_reduction():
    with pytest.raises(SettingError, match="reduce"):
        run_chunks(evaluator(rows_table()), N, S, 2, "median")


def test_default_batch_size_scales_with_the_row_size():
    image = torch.zeros(1, 3, 224, 224)
    assert default_batch_size(image, 1000) == 8
    assert default_batch_size(image, 5) == 5  # never more rows than there are
    assert default_batch_size(torch.zeros(1, 10), 10**6) == 4096
    assert (
        default_batch_size(
            {"a": torch.zeros(1, 3, 224, 224), "b": torch.zeros(1, 3, 224, 224)}, 100
        )
        == 4
    )

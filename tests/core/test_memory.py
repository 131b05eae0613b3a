"""Out of memory: the engine halves a chunk that does not fit, remembers what worked and
says so once; on CUDA the rows per forward come from the free memory and one measured row.

A fake allocator stands for the device: a function or a model that raises
``torch.OutOfMemoryError`` when it is given more rows than "fit", and a fake probe that
reports free memory and a peak per row.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from attrib import IntegratedGradients
from attrib.core import memory
from attrib.core.batching import run_chunks
from attrib.core.memory import OutOfMemoryWarning, is_out_of_memory
from tests.conftest import assert_state_restored, model_state


@pytest.fixture(autouse=True)
def _forget():
    memory.forget()
    yield
    memory.forget()


class Allocator:
    """Raises out-of-memory for more than ``fits`` rows; records every chunk it saw."""

    def __init__(self, fits: int) -> None:
        self.fits = fits
        self.seen: list[int] = []
        self.failed: list[int] = []

    def __call__(self, rows: int) -> None:
        self.seen.append(rows)
        if rows > self.fits:
            self.failed.append(rows)
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {rows} rows")


def _keep_rows(allocator: Allocator, n: int, per_sample: int, batch_size: int, **kw):
    def evaluate(chunk):
        allocator(len(chunk))
        return (chunk.sample * 1000 + chunk.item).double()  # exact: integers

    return run_chunks(evaluate, n, per_sample, batch_size, "keep", **kw)


def test_a_chunk_that_does_not_fit_is_halved_and_the_size_remembered_with_one_warning():
    allocator = Allocator(fits=20)
    want = torch.arange(10)[:, None] * 1000 + torch.arange(15)[None, :]
    with pytest.warns(OutOfMemoryWarning, match="at most 25 rows per forward"):
        got = _keep_rows(allocator, 10, 15, 64)
    torch.testing.assert_close(got, want.double(), rtol=0, atol=0)
    # 150 rows at most 64 per chunk: 3 balanced chunks of 50, which fails; halved to 25,
    # which fails; then 12: 13 chunks of 11 or 12 that fit
    assert allocator.failed == [50, 25]
    assert allocator.seen[2:] == [12] * 7 + [11] * 6
    assert sum(allocator.seen[len(allocator.failed) :]) == 150  # every row once

    # the next call starts at the size that worked: no failure, no second warning
    again = Allocator(fits=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfMemoryWarning)
        got = _keep_rows(again, 10, 15, 64)
    torch.testing.assert_close(got, want.double(), rtol=0, atol=0)
    assert again.failed == [] and max(again.seen) <= 12


def test_one_row_that_does_not_fit_and_other_errors_are_raised_as_they_are():
    with pytest.raises(torch.OutOfMemoryError), pytest.warns(OutOfMemoryWarning):
        _keep_rows(Allocator(fits=0), 2, 3, 8)  # 6 -> 3 -> 1 row, which fails too

    def broken(chunk):
        raise ValueError("not memory")

    with pytest.raises(ValueError, match="not memory"):
        run_chunks(broken, 2, 3, 8, "keep")
    assert memory.remembered(("cpu", "broken")) is None
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


class FakeProbe:
    """A device with ``free`` bytes where one row's forward peaks at ``per_row`` bytes."""

    def __init__(self, free: int, per_row: int) -> None:
        self.free, self.per_row = free, per_row
        self.measured = 0

    def applies(self, device):
        return True

    def free_bytes(self, device):
        return self.free

    def peak_bytes(self, device, work):
        self.measured += 1
        return work(), self.per_row

    def empty_cache(self, device):
        pass


def test_automatic_rows_come_from_the_free_memory_and_one_measured_row(monkeypatch):
    probe = FakeProbe(free=50_000, per_row=1_000)
    monkeypatch.setattr(memory, "PROBE", probe)
    allocator = Allocator(fits=10**9)
    got = _keep_rows(allocator, 4, 25, 8, automatic=True)
    want = torch.arange(4)[:, None] * 1000 + torch.arange(25)[None, :]
    torch.testing.assert_close(got, want.double(), rtol=0, atol=0)
    fits = int(memory.FREE_FRACTION * 50_000 // 1_000)  # 30 rows
    # one measured row, then 99 rows in balanced chunks of at most 30: 4 chunks of 24-25
    assert probe.measured == 1 and allocator.seen[0] == 1
    assert max(allocator.seen[1:]) <= fits and len(allocator.seen[1:]) == -(-99 // fits)
    # a batch size the user chose is theirs: no measurement
    probe.measured = 0
    chosen = Allocator(fits=10**9)
    _keep_rows(chosen, 4, 25, 8, automatic=False)
    assert probe.measured == 0 and chosen.seen == [8] * 9 + [7] * 4  # 100 rows in 13


class FitsRows(nn.Module):
    """A model whose "device" holds at most ``fits`` rows per forward."""

    def __init__(self, fits: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        self.allocator = Allocator(fits)
        self.eval()

    def forward(self, x):
        self.allocator(x.shape[0])
        return self.net(x)


def test_integrated_gradients_finishes_on_a_device_that_holds_fewer_rows_than_asked():
    model = FitsRows(fits=40)
    before = model_state(model)
    x = torch.randn(3, 6)
    ig = IntegratedGradients(model, steps=50, batch_size=150)
    with pytest.warns(OutOfMemoryWarning):
        got = ig(x, target=1)
    assert_state_restored(model, before)
    model.allocator.fits = 10**9
    want = IntegratedGradients(model, steps=50, batch_size=25)(x, target=1)
    # the same rows summed in other chunks: float32 rounding of 50-term sums
    scale = float(want.values.abs().max())
    torch.testing.assert_close(got.values, want.values, rtol=0, atol=50 * 2.0**-24 * scale)
    assert got.delta is not None and want.delta is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_measured_rows_give_the_same_integrated_gradients():
    from tests.models import GapCNN

    model = GapCNN().eval()
    x = torch.randn(4, 3, 12, 12)
    want = IntegratedGradients(model, steps=64, batch_size=16)(x, target=1).values
    free_before = memory.PROBE.free_bytes(torch.device("cuda"))
    got = IntegratedGradients(model.cuda(), steps=64)(x.cuda(), target=1).values
    assert free_before > 0 and got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-5)

"""The local engine: one process explains, ``DataLoader`` workers decode, a thread writes.

Decoding (Pillow, resizing) runs in ``workers`` processes ahead of the explanation (two
shards each, their tensors stacked: ``PackedSamples``), and committing a shard (Parquet, map
files, fsync, rename) runs in a writer thread while the next shard is explained: torch
releases the interpreter lock in its kernels, so the three overlap and the run goes at the
speed of the model. At most two finished shards wait for the writer, so memory stays
bounded.

When the model computes on the CPU, the decoding processes run at the lowest priority
(``nice`` 19, ``BACKGROUND_NICENESS``): they then take the cores in the gaps the model leaves
(resnet18 on two cores keeps them about 80% busy) instead of slowing its threads, which wait
for each other at every operation, so that one slowed thread stalls them all. Their work is
a tenth of the model's, so they keep up; where they do not, the model waits and its cores
are theirs. On a GPU they keep the priority they have (the model then waits for them, not
the reverse). The writer thread keeps the caller's priority: the thread pools that Parquet
and Zarr start from it on first use would inherit a lower one and keep it in the caller's
process after the run.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from attrib.runs.engines.shards import PackedShards, ShardReader
from attrib.runs.store import RunStore, ShardResult
from attrib.runs.work import Job, ShardWorker

__all__ = ["run_local"]

_DONE = object()

BACKGROUND_NICENESS = 19
"""How much lower the decoding processes run than the model, on CPU (the kernel's ceiling
is 19: a niceness of 19 in all)."""


def _as_is(item: Any) -> Any:
    return item


def lower_priority() -> None:
    """Lower this process's priority by ``BACKGROUND_NICENESS`` (a decoding process; nothing
    where the system has no priorities or will not lower it)."""
    if hasattr(os, "nice"):
        try:
            os.nice(BACKGROUND_NICENESS)
        except OSError:  # not allowed here: the worker goes on at the usual priority
            pass


def _lower_worker(worker_id: int) -> None:
    lower_priority()


class _Writer:
    """Commits shards in a thread, in order; an error stops the run at the next ``put``."""

    def __init__(
        self,
        store: RunStore,
        map_format: str | None,
        on_commit: Callable[[ShardResult], None],
    ) -> None:
        self.store = store
        self.map_format = map_format
        self.on_commit = on_commit
        self.pending: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="attrib-run-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.pending.get()
            if item is _DONE:
                return
            if self.error is not None:
                continue
            try:
                self.store.commit(item, self.map_format)
                self.on_commit(item)
            except BaseException as error:  # reported to the main thread at the next put
                self.error = error

    def put(self, result: ShardResult) -> None:
        self._raise()
        self.pending.put(result)

    def close(self) -> None:
        self.pending.put(_DONE)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def run_local(
    store: RunStore,
    reader: ShardReader,
    job: Job,
    *,
    workers: int = 2,
    map_format: str | None = None,
    on_commit: Callable[[ShardResult], None] = lambda result: None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Explain and commit every shard of ``reader`` (see the module)."""
    if not len(reader):
        return
    worker = ShardWorker(job, say)
    background = job.device == "cpu"
    loader: DataLoader[Any] = DataLoader(
        PackedShards(reader),  # type: ignore[arg-type]
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        prefetch_factor=2 if workers else None,
        worker_init_fn=_lower_worker if background and workers else None,
    )
    writer = _Writer(store, map_format, on_commit)
    try:
        for shard, packed in loader:
            writer.put(worker.explain(shard, packed.unpack()))
    finally:
        writer.close()

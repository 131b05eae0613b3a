"""The Ray engine: Ray Data hands shards to an actor pool that explains and commits them.

The pipeline is ``from_items(shards to do) -> map_batches(explain and commit, an actor per
worker)``; each actor holds the job (the model, on its GPU where there is one) for its whole
life and takes two shards at a time (``max_concurrent_calls_per_actor=2``), so that the
work around a shard's explanation overlaps the next one's: one call decodes its shard or
commits it while the other explains (under a lock: the model runs one shard at a time).

Where the shards are decoded depends on the actors:

* CPU actors decode their own shards, in that second call. The CPUs are shared by every
  process on a node, so a separate decoding task would do the same work on the same cores,
  plus a process of its own to start (Python, torch, Ray Data: seconds of CPU on a small
  machine) and a copy of every decoded shard through Ray's object store.
* GPU actors are fed by Ray tasks (``map(decode)``, half a CPU each) that decode on every
  CPU of the cluster, ahead of the actors: one CPU per GPU could not keep a GPU busy.

Actors commit their shards to the run directory themselves (on a cluster it must be a folder
every node sees) by the store's rules: a shard is done once its folder is renamed into
``shards/``, and a call returns only after its commit, so a task retried after a worker's
death commits its shard at most once and none is counted done before it is on disk. Ray
restarts dead actors and retries their tasks (Ray Data's default for actor pools).

Without an address Ray starts on this machine (``ray.init(num_cpus=...)``) and stops at the
end; with one (``ray://head:10001`` or ``auto``) it joins that cluster and leaves it running.
Ray is an optional extra: ``pip install 'attrib[ray]'``.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from attrib.core.errors import SettingError
from attrib.runs.engines.shards import ShardReader
from attrib.runs.store import RunStore
from attrib.runs.work import Job, ShardWorker, outcome_of

__all__ = ["ShardOutcome", "run_ray"]

ShardOutcome = dict[str, Any]
"""What the driver learns of a committed shard: ``shard``, ``ok``, ``errors``, ``failed``
(every readable sample failed in the model or a method) and ``first_error``."""

Decode = Literal["actors", "tasks"]

CALLS_PER_ACTOR = 2
"""Shards an actor works on at once: one explained, one decoded or committed."""


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise SettingError(
            "engine",
            "'local', or Ray installed for 'ray'",
            "ray",
            "pip install 'attrib[ray]'",
        ) from None
    return ray


def _decode(row: dict[str, Any], reader: ShardReader) -> dict[str, Any]:
    shard = int(row["shard"])
    return {"shard": shard, "samples": pickle.dumps(reader.read(shard))}


class _Explain:
    """The actor: a job's worker and the store; decodes (``reader``) or unpickles each shard,
    explains it under the lock and commits it."""

    def __init__(
        self,
        root: str,
        job: Job,
        map_format: str | None,
        pid_dir: str | None,
        threads: int | None = None,
        reader: ShardReader | None = None,
    ) -> None:
        if threads is not None:  # Ray sets OMP_NUM_THREADS to whole CPUs, 1 for 1.5
            import torch

            torch.set_num_threads(threads)
        self.store = RunStore(root)
        self.worker = ShardWorker(job)
        self.map_format = map_format
        self.reader = reader
        self.model_lock = threading.Lock()
        if pid_dir:  # tests find the actors' processes here (to kill one)
            with open(os.path.join(pid_dir, f"{os.getpid()}.pid"), "w") as handle:
                handle.write(str(os.getpid()))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in ("shard", "ok", "errors", "failed", "first")}
        for i, shard in enumerate(batch["shard"]):
            if self.reader is not None:
                samples = self.reader.read(int(shard))
            else:
                samples = pickle.loads(batch["samples"][i])
            with self.model_lock:
                result = self.worker.explain(int(shard), samples)
            self.store.commit(result, self.map_format)
            outcome = outcome_of(result)
            for key in out:
                out[key].append(outcome[key])
        return {k: np.asarray(v, dtype=object if k == "first" else None) for k, v in out.items()}


def run_ray(
    store: RunStore,
    reader: ShardReader,
    job: Job,
    *,
    workers: int = 2,
    address: str | None = None,
    num_cpus: int | None = None,
    gpus_per_worker: float | None = None,
    map_format: str | None = None,
    on_shard: Callable[[ShardOutcome], None] = lambda outcome: None,
    pid_dir: str | None = None,
    decode: Decode | None = None,
) -> None:
    """Explain and commit every shard of ``reader`` on Ray (see the module). ``decode``:
    ``"actors"`` or ``"tasks"`` (``None``: tasks for GPU actors, the actors themselves on
    CPUs, or tasks where this Ray cannot run two calls of an actor at once)."""
    if not len(reader):
        return
    ray = _ray()
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started = address is None
    try:
        if gpus_per_worker is None:
            gpus = ray.cluster_resources().get("GPU", 0)
            gpus_per_worker = 1.0 if gpus >= 1 and job.device.startswith("cuda") else 0.0
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        pool, concurrent = actor_pool(ray, workers)
        if decode is None:
            decode = "actors" if concurrent and not gpus_per_worker else "tasks"
        items = [{"shard": k} for k in reader.shards]
        data = ray.data.from_items(items, override_num_blocks=len(items))
        if decode == "tasks":
            data = data.map(_decode, fn_args=(reader,), num_cpus=0.5)
        cpus = _cpus_per_worker(ray, workers, gpus_per_worker, decode)
        threads = None if gpus_per_worker else max(1, round(cpus))
        explained = data.map_batches(
            _Explain,
            fn_constructor_args=(
                str(store.root),
                job,
                map_format,
                pid_dir,
                threads,
                reader if decode == "actors" else None,
            ),
            batch_size=1,
            compute=pool,
            num_cpus=cpus,
            num_gpus=gpus_per_worker or None,
        )
        for row in explained.iter_rows():
            on_shard({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    finally:
        if started:
            ray.shutdown()


def actor_pool(ray: Any, workers: int) -> tuple[Any, bool]:
    """Ray Data's pool of ``workers`` actors, each running ``CALLS_PER_ACTOR`` calls at once,
    and whether it does: older Ray Data has no such setting (calls then run one at a time per
    actor and the shards are decoded in tasks: the same run, with less overlap)."""
    try:
        pool = ray.data.ActorPoolStrategy(
            size=workers,
            max_concurrent_calls_per_actor=CALLS_PER_ACTOR,
            enable_true_multi_threading=True,
        )
    except TypeError:
        return ray.data.ActorPoolStrategy(size=workers), False
    return pool, True


def _cpus_per_worker(ray: Any, workers: int, gpus: float, decode: Decode) -> float:
    """CPUs each actor asks for: a GPU actor needs one to feed it; CPU actors share the
    cluster's CPUs (leaving room for the decoding tasks when there are any), and run torch on
    as many threads, rounded (1.5 CPUs: 2 threads, as the local engine uses both cores of a
    2-core machine)."""
    if gpus:
        return 1.0
    total = ray.cluster_resources().get("CPU", 1)
    spare = 0.5 if decode == "tasks" else 0.0
    return max(0.5, (total - spare) / max(1, workers))

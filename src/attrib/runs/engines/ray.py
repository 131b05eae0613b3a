"""The Ray engine: Ray Data decodes shards in tasks and explains them in an actor pool.

The pipeline is ``from_items(shards to do) -> map(decode a shard) -> map_batches(explain and
commit, an actor per worker)``: Ray streams it, so decoding overlaps the explanation, and
each actor holds the job (the model, on its GPU where there is one) for its whole life.
Actors commit their shards to the run directory themselves (on a cluster it must be a folder
every node sees) by the store's rules: a shard is done once its folder is renamed into
``shards/``, so a retried task after a worker's death commits it at most once. Ray restarts
dead actors and retries their tasks (Ray Data's default for actor pools).

Without an address Ray starts on this machine (``ray.init(num_cpus=...)``) and stops at the
end; with one (``ray://head:10001`` or ``auto``) it joins that cluster and leaves it running.
Ray is an optional extra: ``pip install 'attrib[ray]'``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from attrib.core.errors import SettingError
from attrib.runs.engines.shards import ShardReader
from attrib.runs.store import RunStore
from attrib.runs.work import Job, ShardWorker, outcome_of

__all__ = ["ShardOutcome", "run_ray"]

ShardOutcome = dict[str, Any]
"""What the driver learns of a committed shard: ``shard``, ``ok``, ``errors``, ``failed``
(every readable sample failed in the model or a method) and ``first_error``."""


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
    _, samples = ShardReader(reader.source, [shard], reader.size)[0]
    return {"shard": shard, "samples": pickle.dumps(samples)}


class _Explain:
    """The actor: a job's worker and the store; commits each shard it explains."""

    def __init__(
        self,
        root: str,
        job: Job,
        map_format: str | None,
        pid_dir: str | None,
        threads: int | None = None,
    ) -> None:
        if threads is not None:  # Ray sets OMP_NUM_THREADS to whole CPUs, 1 for 1.5
            import torch

            torch.set_num_threads(threads)
        self.store = RunStore(root)
        self.worker = ShardWorker(job)
        self.map_format = map_format
        if pid_dir:  # tests find the actors' processes here (to kill one)
            with open(os.path.join(pid_dir, f"{os.getpid()}.pid"), "w") as handle:
                handle.write(str(os.getpid()))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in ("shard", "ok", "errors", "failed", "first")}
        for shard, blob in zip(batch["shard"], batch["samples"], strict=True):
            samples = pickle.loads(blob)
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
) -> None:
    """Explain and commit every shard of ``reader`` on Ray (see the module)."""
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
        items = [{"shard": k} for k in reader.shards]
        data = ray.data.from_items(items, override_num_blocks=len(items))
        decoded = data.map(_decode, fn_args=(reader,), num_cpus=0.5)
        cpus = _cpus_per_worker(ray, workers, gpus_per_worker)
        threads = None if gpus_per_worker else max(1, round(cpus))
        explained = decoded.map_batches(
            _Explain,
            fn_constructor_args=(str(store.root), job, map_format, pid_dir, threads),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus,
            num_gpus=gpus_per_worker or None,
        )
        for row in explained.iter_rows():
            on_shard({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    finally:
        if started:
            ray.shutdown()


def _cpus_per_worker(ray: Any, workers: int, gpus: float) -> float:
    """CPUs each actor asks for: a GPU actor needs one to feed it; CPU actors share the
    cluster's CPUs (leaving room for the decoding tasks), and run torch on as many threads,
    rounded (1.5 CPUs: 2 threads, as the local engine uses both cores of a 2-core machine)."""
    if gpus:
        return 1.0
    total = ray.cluster_resources().get("CPU", 1)
    return max(0.5, (total - 0.5) / max(1, workers))

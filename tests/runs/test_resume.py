"""A run killed with SIGKILL at any moment, then resumed, ends with the store of a run that
was never interrupted: every sample exactly once, the same rows, scores and maps.

The interrupted runs are subprocesses (``_SCRIPT``) killed before any shard is committed,
inside a commit (its files written in ``RUN/.incoming``, not yet renamed into ``shards/``),
between commits, and at seeded random moments. The script slows every commit down (a sleep
before the shard's files are flushed) so that a random kill often lands inside one, and can
hang inside the commit of a chosen shard so that the test kills it exactly there.

The resumes and the reference run are in this process. The comparison is bitwise: every
shard is explained with the same samples in one batch (the same ``shard_size``), by the same
torch build and CPU kernels with one thread (the script calls ``torch.set_num_threads(1)``,
the test session's conftest does the same here) on the same decoded inputs (the same PNG
files): the same operations in the same order, so the same floats, whichever process
computes a shard. (Runs with other shard sizes or thread counts would need a tolerance.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import attrib
from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.runs import Run, run
from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.store import RunStore

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 24
SHARD = 3
SHARDS = N // SHARD  # 8
SETTINGS = {
    "methods": "saliency,gradcam",
    "metrics": "deletion",
    "layer": "features.9",
    "preset": "none",
    "shard_size": SHARD,
    "steps": 5,
    "seed": 0,
    "workers": 0,
    "progress": False,
}
COMMIT_DELAY = 0.05  # seconds added to each commit by the script
NO_HANG = -1

_SCRIPT = """
import sys, time
from pathlib import Path
import torch

torch.set_num_threads(1)
from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.runs import run, store

data, out, markers, hang, delay, settings = sys.argv[1:7]
hang, delay = int(hang), float(delay)
flush = store._sync_tree


def slow_flush(work):
    # the shard's files are in RUN/.incoming/<shard>.<pid>.<random>, not yet renamed
    shard = int(Path(work).name.split(".")[0])
    if shard == hang:
        (Path(markers) / f"inside-{shard}").write_text("")
        time.sleep(600)
    time.sleep(delay)
    flush(work)


store._sync_tree = slow_flush
import json

model = load_ground_truth_cnn()
print("start", flush=True)
run(model, data, out=out, **json.loads(settings))
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    return write_ground_truth_folder(tmp_path_factory.mktemp("gt"), n=N, seed=3)


@pytest.fixture(scope="module")
def model():
    return load_ground_truth_cnn()


@pytest.fixture(scope="module")
def reference(gt, model, tmp_path_factory) -> Run:
    return run(model, gt, out=tmp_path_factory.mktemp("reference") / "run", **SETTINGS)


class Killable:
    """The script in a subprocess of its own (its own process group, killed whole)."""

    def __init__(self, folder: Path, gt: Path, hang: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder / "run"
        self.markers = folder / "markers"
        self.markers.mkdir(exist_ok=True)
        script = folder / "script.py"
        script.write_text(_SCRIPT)
        env = dict(os.environ)
        here = str(Path(attrib.__file__).resolve().parents[1])  # the attrib under test
        env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
        env["OMP_NUM_THREADS"] = "1"
        arguments = [str(gt), str(self.out), str(self.markers), str(hang), str(COMMIT_DELAY)]
        self.process = subprocess.Popen(
            [sys.executable, str(script), *arguments, json.dumps(SETTINGS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def started(self) -> None:
        """Wait for the script to reach ``run(...)``."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the line or the end
        assert line.strip() == "start", self._failure()
        self.start = time.monotonic()

    def wait_for(self, condition, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self._failure()
            assert time.monotonic() < end, "timed out"
            time.sleep(0.005)

    def kill(self) -> None:
        assert self.process.poll() is None, "the run ended before it was killed"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        assert self.process.returncode == -signal.SIGKILL
        self.process.communicate()

    def _failure(self) -> str:
        if self.process.poll() is None:
            return "still running"
        out, err = self.process.communicate()
        return f"exit {self.process.returncode}\n{out}\n{err}"


def done_shards(out: Path) -> set[int]:
    return RunStore(out).done_shards()


def incoming(out: Path) -> list[Path]:
    folder = out / ".incoming"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def stamps(out: Path) -> dict[str, int]:
    """Every file of the done shards with its inode and modification time."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted((out / "shards").rglob("*"))
    }


def resume(gt: Path, model, out: Path, monkeypatch) -> Run:
    """Resume the run in ``out``; checks that only the shards not done are explained."""
    import attrib.runs.engines.local as local

    explained: list[int] = []

    class Recording(local.ShardWorker):
        def explain(self, shard, samples):
            explained.append(shard)
            return super().explain(shard, samples)

    assert torch.get_num_threads() == 1  # as in the script (see the module)
    todo = set(range(SHARDS)) - done_shards(out) if (out / "manifest.json").exists() else None
    monkeypatch.setattr(local, "ShardWorker", Recording)
    resumed = run(model, gt, out=out, **SETTINGS)
    monkeypatch.undo()
    assert len(explained) == len(set(explained))
    assert set(explained) == (set(range(SHARDS)) if todo is None else todo)
    return resumed


def assert_same_run(got: Run, want: Run) -> None:
    """Every sample exactly once, and the tables and maps of ``want`` bit for bit (see the
    module: the same computation)."""
    rows = got.samples.to_pylist()
    assert [r["index"] for r in rows] == list(range(N))
    assert {r["status"] for r in rows} == {"ok"}
    assert rows == want.samples.to_pylist()  # ids, predictions, top-k, shards: identical

    def keyed(run: Run) -> list[dict]:
        return sorted(run.scores.to_pylist(), key=lambda r: (r["index"], r["method"]))

    scores = keyed(got)
    keys = [(r["index"], r["method"], r["metric"]) for r in scores]
    assert len(keys) == len(set(keys)) == N * 3  # Saliency, GradCAM, random map; deletion
    assert scores == keyed(want)
    for method in ("Saliency", "GradCAM"):
        ids, maps = got.maps(method)
        want_ids, want_maps = want.maps(method)
        assert ids == want_ids == [r["id"] for r in rows]
        assert maps.dtype == want_maps.dtype == np.float16
        assert np.array_equal(maps.view(np.uint16), want_maps.view(np.uint16))
    assert got.notes == want.notes
    assert (got.path / "summary.md").read_text() == (want.path / "summary.md").read_text()
    assert incoming(got.path) == []  # nothing half-written is left


def test_the_reference_is_a_whole_run(reference):
    # what the comparisons below rely on: a complete run, where the maps are not all zero
    assert done_shards(reference.path) == set(range(SHARDS))
    assert reference.samples.num_rows == N
    for method in ("Saliency", "GradCAM"):
        assert np.abs(reference.maps(method)[1].astype(np.float32)).max() > 0


def test_killed_inside_the_first_commit_nothing_is_done_then_resumed(
    gt, model, reference, tmp_path, monkeypatch
):
    job = Killable(tmp_path, gt, hang=0)
    job.started()
    job.wait_for(lambda: (job.markers / "inside-0").exists())
    job.kill()
    # shard 0 is written whole in .incoming but never renamed: not done, not read
    assert done_shards(job.out) == set()
    (left,) = incoming(job.out)
    assert left.name.startswith("000000.") and (left / "samples.parquet").exists()
    assert Run(job.out).samples.num_rows == 0
    assert_same_run(resume(gt, model, job.out, monkeypatch), reference)


def test_killed_between_commits_keeps_the_done_shards_and_ignores_a_half_written_one(
    gt, model, reference, tmp_path, monkeypatch
):
    k = 3
    job = Killable(tmp_path, gt, hang=NO_HANG)
    job.started()
    job.wait_for(lambda: len(done_shards(job.out)) >= k)
    job.kill()
    done = done_shards(job.out)
    assert len(done) >= k and done == set(range(len(done)))  # committed in order
    assert len(done) < SHARDS, "the run finished before the kill; make its commits slower"
    before = stamps(job.out)

    # a shard a crash left half-written: a samples table of wrong rows, no scores, no maps
    half = job.out / ".incoming" / f"{SHARDS - 1:06d}.99999.deadbeef"
    half.mkdir(parents=True)
    bogus = [{**row, "id": "bogus", "prediction": 99} for row in reference.samples.to_pylist()]
    pq.write_table(
        pa.Table.from_pylist(bogus[-SHARD:], schema=reference.samples.schema),
        half / "samples.parquet",
    )
    (half / "scores.parquet").write_bytes(b"PAR1 cut short")
    # ... and one named exactly as the shard's folder will be
    (job.out / ".incoming" / f"{SHARDS - 2:06d}").mkdir()
    assert done_shards(job.out) == done
    partial = Run(job.out)
    assert partial.samples.column("index").to_pylist() == [
        i for k in sorted(done) for i in range(k * SHARD, (k + 1) * SHARD)
    ]
    assert "bogus" not in partial.samples.column("id").to_pylist()

    resumed = resume(gt, model, job.out, monkeypatch)
    assert_same_run(resumed, reference)
    after = stamps(job.out)
    # the shards done before the kill were skipped: the same files, untouched
    assert {p: after[p] for p in before} == before


def test_killed_inside_a_commit_after_k_shards(gt, model, reference, tmp_path, monkeypatch):
    k = 5
    job = Killable(tmp_path, gt, hang=k)
    job.started()
    job.wait_for(lambda: (job.markers / f"inside-{k}").exists())
    job.kill()
    assert done_shards(job.out) == set(range(k))
    assert [p.name.split(".")[0] for p in incoming(job.out)] == [f"{k:06d}"]
    assert_same_run(resume(gt, model, job.out, monkeypatch), reference)


def test_killed_at_seeded_random_moments(gt, model, reference, tmp_path, monkeypatch):
    # the kills fall anywhere from the start of run(...) (planning, the manifest) to the end
    # of its commits: the runs hang in the last commit, so none ends before its kill
    rng = random.Random(19)
    expected = SHARDS * (COMMIT_DELAY + 0.1)  # commits plus explaining, about
    delays = sorted(rng.uniform(0, expected) for _ in range(3))
    jobs = [Killable(tmp_path / f"kill{i}", gt, hang=SHARDS - 1) for i in range(len(delays))]
    for job in jobs:  # started together (each delay runs from its job's start)
        job.started()
    for job, delay in zip(jobs, delays, strict=True):
        time.sleep(max(0.0, job.start + delay - time.monotonic()))
        job.kill()
    for job in jobs:
        if (job.out / "manifest.json").exists():
            assert len(done_shards(job.out)) < SHARDS
        assert_same_run(resume(gt, model, job.out, monkeypatch), reference)

"""The Ray engine on a local Ray of 2 CPUs started here (once for the module; ``run_ray``
joins it): the same store as the local engine; an actor killed in the middle of a shard
(Ray restarts it and retries its task) loses no sample and commits none twice; a run whose
driver is killed is finished by a local resume.

Ray's actors run torch with their own thread count (Ray sets ``OMP_NUM_THREADS`` from the
actor's CPUs), and a different thread count may sum floats in another order, so maps and
scores of the two engines are compared within a tolerance derived below, never bit for bit.
The shards, and so the batches, are the same (shard ``k`` holds the same samples anywhere).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.runs import Run, run
from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.store import RunStore

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = [
    # Ray Data's own deprecated settings, warned about inside ray.data.context whenever a
    # dataset runs: nothing attrib can change
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
    # one Ray for the module under `pytest -n 2 --dist loadgroup` (each worker that runs
    # a test of this module starts its own Ray otherwise)
    pytest.mark.xdist_group("ray"),
]

REPO = Path(__file__).resolve().parents[2]
N = 24
SHARD = 4
SHARDS = N // SHARD
FLOAT16 = 2.0**-11  # relative rounding of a float16 map (half its spacing)
SETTINGS = {
    "methods": "saliency,gradcam",
    "metrics": "deletion",
    "preset": "none",
    "shard_size": SHARD,
    "steps": 5,
    "seed": 0,
    "progress": False,
}


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs whose workers import the ``attrib`` under test and ``tests``
    (the slow model's module): workers inherit the environment of the process that starts
    Ray, so ``PYTHONPATH`` names both while it starts."""
    if ray.is_initialized():  # pragma: no cover - another module left it running
        ray.shutdown()
    here = str(Path(attrib.__file__).resolve().parents[1])
    with pytest.MonkeyPatch.context() as patch:
        paths = [str(REPO), here, os.environ.get("PYTHONPATH", "")]
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=2**28,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    return write_ground_truth_folder(tmp_path_factory.mktemp("gt"), n=N, seed=4)


@pytest.fixture(scope="module")
def local(gt, tmp_path_factory) -> Run:
    """The local engine's run, the reference of every Ray run here."""
    out = tmp_path_factory.mktemp("local") / "run"
    model = load_ground_truth_cnn()
    return run(model, gt, out=out, engine="local", workers=0, layer="features.9", **SETTINGS)


def assert_equal_runs(got: Run, want: Run) -> None:
    """Every sample once, with the reference's rows; maps and scores within float rounding.

    Maps: both engines compute each map in float32 from the same batch, and the sums of a
    convolution's backward pass may be added in another order with another thread count:
    float32 values a few float32 ulps (2^-24 relative) apart. Stored in float16, two such
    values round to the same float16 or to neighbours, one float16 spacing (2^-10
    relative, ``2 * FLOAT16``) apart; near zero, where spacings are smaller than the float32
    error of a sum of terms as large as the map's largest value, ``FLOAT16 * scale``.
    Scores: the deletion curve's areas are float32 means of the model's probabilities:
    1e-5 relative (about a hundred float32 ulps), as ``tests/runs/test_run.py`` derives."""
    rows, want_rows = got.samples.to_pylist(), want.samples.to_pylist()
    assert [r["index"] for r in rows] == list(range(N))
    assert {r["status"] for r in rows} == {"ok"}
    for row, wanted in zip(rows, want_rows, strict=True):
        probabilities = row.pop("top_probabilities"), wanted.pop("top_probabilities")
        assert row == wanted  # ids, labels, predictions, top classes, shards
        np.testing.assert_allclose(*probabilities, rtol=1e-6)
    for method in ("Saliency", "GradCAM"):
        ids, maps = got.maps(method)
        want_ids, want_maps = want.maps(method)
        assert ids == want_ids == [r["id"] for r in rows]
        b = want_maps.astype(np.float32)
        scale = float(np.abs(b).max())
        assert scale > 0
        np.testing.assert_allclose(
            maps.astype(np.float32), b, rtol=2 * FLOAT16, atol=scale * FLOAT16
        )

    def keyed(r: Run) -> dict:
        return {(s["index"], s["method"], s["metric"]): s["value"] for s in r.scores.to_pylist()}

    scores, wanted_scores = keyed(got), keyed(want)
    assert got.scores.num_rows == len(scores) == N * 3  # each (sample, method, metric) once
    assert scores.keys() == wanted_scores.keys()
    keys = sorted(scores)
    np.testing.assert_allclose(
        [scores[k] for k in keys], [wanted_scores[k] for k in keys], rtol=1e-5, atol=1e-6
    )


def test_ray_and_local_engines_write_equal_stores(ray_cluster, gt, local, tmp_path):
    """The default pipeline (CPU actors decode their own shards, two calls at a time): the
    local engine's store, and each actor's model never runs two shards at once (the calls
    share the model under a lock; its forwards in one process never overlap)."""
    from tests.runs.slow_model import forward_spans, slow_cnn

    log = tmp_path / "forwards"
    log.mkdir()
    model = slow_cnn(0.0, log=str(log))
    done = run(
        model,
        gt,
        out=tmp_path / "ray",
        engine="ray",
        workers=2,
        layer="inner.features.9",
        **SETTINGS,
    )
    assert ray_cluster.is_initialized()  # run_ray joined the module's Ray, left it running
    assert RunStore(done.path).done_shards() == set(range(SHARDS))
    assert done.manifest.engine == "ray"
    assert_equal_runs(done, local)
    assert done.summary().to_json()["methods"] == local.summary().to_json()["methods"]
    spans = forward_spans(log)
    assert spans and os.getpid() not in spans  # the actors ran the model, not this process
    for pid, forwards in spans.items():
        for (_, end), (start, _) in itertools.pairwise(forwards):
            assert start >= end, f"two forwards at once in actor {pid}"


def test_ray_with_decoding_tasks_writes_the_same_store(
    ray_cluster, gt, local, tmp_path, monkeypatch
):
    """The pipeline of GPU actors (and of a Ray whose actors take one call at a time): Ray
    tasks decode the shards, the actors unpickle them."""
    import attrib.runs.engines.ray as engine

    monkeypatch.setattr(engine, "run_ray", functools.partial(engine.run_ray, decode="tasks"))
    model = load_ground_truth_cnn()
    done = run(
        model, gt, out=tmp_path / "ray", engine="ray", workers=2, layer="features.9", **SETTINGS
    )
    assert_equal_runs(done, local)


def test_actors_take_two_calls_at_once_on_this_ray(ray_cluster):
    """The overlap of decoding and committing with the explanation rests on Ray Data's
    concurrent actor calls: a Ray that drops them is found here, not in a benchmark."""
    from attrib.runs.engines.ray import CALLS_PER_ACTOR, actor_pool

    pool, concurrent = actor_pool(ray_cluster, 2)
    assert concurrent
    assert pool.max_concurrent_calls_per_actor == CALLS_PER_ACTOR
    assert pool.enable_true_multi_threading


def test_an_older_ray_data_gets_one_call_per_actor():
    """Without the concurrency settings (older Ray Data) the pool is a plain one and the
    engine decodes in tasks (``run_ray`` reads the flag)."""
    from attrib.runs.engines.ray import actor_pool

    class OldStrategy:
        def __init__(self, *, size: int) -> None:
            self.size = size

    class OldData:
        ActorPoolStrategy = OldStrategy

    class OldRay:
        data = OldData

    pool, concurrent = actor_pool(OldRay, 3)
    assert isinstance(pool, OldStrategy) and pool.size == 3
    assert not concurrent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids(folder: Path) -> list[int]:
    return sorted(int(p.stem) for p in folder.glob("*.pid"))


def _wait(condition, what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_killed_actor_loses_no_sample_and_repeats_none(
    ray_cluster, gt, local, tmp_path, monkeypatch
):
    import attrib.runs.engines.ray as engine
    from tests.runs.slow_model import slow_cnn

    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setattr(engine, "run_ray", functools.partial(engine.run_ray, pid_dir=str(pids)))
    out = tmp_path / "run"
    found: dict = {}
    counted: list[tuple[int, int]] = []  # what the driver counts, (samples done, total)

    def explain() -> None:
        try:  # the slow model: each shard takes long enough to be killed in the middle
            found["run"] = run(
                slow_cnn(0.1),
                gt,
                out=out,
                engine="ray",
                workers=2,
                layer="inner.features.9",
                **{**SETTINGS, "progress": lambda done, total: counted.append((done, total))},
            )
        except BaseException as error:  # reported by the test's thread
            found["error"] = error

    thread = threading.Thread(target=explain)
    thread.start()
    try:
        store = RunStore(out)
        # Ray and two actors start first: minutes on a loaded 2-core machine
        _wait(lambda: len(store.done_shards()) >= 1 or not thread.is_alive(), "a shard", 600)
        assert thread.is_alive(), found
        victim = _pids(pids)[0]
        assert len(store.done_shards()) < SHARDS, "the run ended before the kill"
        os.kill(victim, signal.SIGKILL)
    finally:
        thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in found, found["error"]
    assert not _alive(victim)
    done = found["run"]
    assert RunStore(out).done_shards() == set(range(SHARDS))
    assert_equal_runs(done, local)
    # the retried shard is counted once: the progress ends at the number of samples
    assert [d for d, _ in counted] == [SHARD * (k + 1) for k in range(SHARDS)]
    assert {t for _, t in counted} == {N}


_DRIVER = """
import functools, json, sys
import torch

torch.set_num_threads(1)
import attrib.runs.engines.ray as engine
from attrib.runs import run
from tests.runs.slow_model import slow_cnn

data, out, pids, address, settings = sys.argv[1:6]
engine.run_ray = functools.partial(engine.run_ray, pid_dir=pids)
print("start", flush=True)
run(slow_cnn(0.1), data, out=out, engine="ray", address=address, workers=2,
    layer="inner.features.9", **json.loads(settings))
"""


def test_a_killed_driver_leaves_shards_that_a_local_resume_finishes(
    ray_cluster, gt, local, tmp_path
):
    from tests.runs.slow_model import slow_cnn

    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "run"
    env = dict(os.environ)
    here = str(Path(attrib.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), here, env.get("PYTHONPATH", "")])
    address = ray_cluster.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, str(script), str(gt), str(out), str(pids), address, json.dumps(SETTINGS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "start"
        store = RunStore(out)
        _wait(lambda: len(store.done_shards()) >= 1 or driver.poll() is not None, "a shard", 600)
        assert driver.poll() is None, driver.communicate()
        driver.kill()  # SIGKILL
    finally:
        driver.kill()
        driver.communicate(timeout=60)
    assert driver.returncode == -signal.SIGKILL
    # Ray ends the dead driver's actors; wait for them so that none commits during the resume
    actors = _pids(pids)
    assert actors
    _wait(lambda: not any(_alive(p) for p in actors), "the actors' end", timeout=60)
    done = store.done_shards()
    assert 1 <= len(done) < SHARDS
    kept = {k: (store.shard_dir(k) / "samples.parquet").stat().st_mtime_ns for k in done}

    resumed = run(
        slow_cnn(0.0), gt, out=out, engine="local", workers=0, layer="inner.features.9", **SETTINGS
    )
    assert resumed.manifest.engine == "ray"  # the run's record; the engine is not compared
    assert {k: (store.shard_dir(k) / "samples.parquet").stat().st_mtime_ns for k in done} == kept
    assert not any((out / ".incoming").glob("*"))
    assert_equal_runs(resumed, local)

"""Reports ``runs-*``: dataset runs (``attrib.runs``) against the work they cannot avoid.

The data: ``SAMPLES`` (2,000) synthetic photographs written by the benchmark as JPEG files
(256 x 256, quality 90, smooth random colour fields with noise, so that they cost a real
decode) in an ImageFolder of 10 classes; the model: torchvision's resnet18 with random
weights (seeded), ``preset="imagenet"`` (resize to 256, centre crop 224, normalise).

==================  =========================================================================
report              what it measures
==================  =========================================================================
``runs-local``      per method (``Saliency``; ``GradCAM`` at ``layer4``): the local engine's
                    samples/s against **a plain loop** calling the same method on the same
                    batches (``shard_size`` 64 rows), pre-decoded in memory and written
                    nowhere. The run decodes (``DataLoader`` workers), predicts, explains,
                    writes the maps (Zarr) and tables and fsyncs; the target is >= 0.9x.
``runs-ray``        the Ray engine (a local Ray of the machine's CPUs, 2 actors) on the same
                    work, against the local engine run before and after it (ABA): >= 0.75x,
                    and the same store (every sample once; maps within float16 rounding);
                    Ray's overhead made visible: seconds to the first shard written, and
                    the steady rate from the first shard to the last, per engine.
``runs-resume``     a run of ``RESUME_DONE`` (10,240) done samples of 32 x 32 images and one
                    shard to do: seconds from ``run()`` until the model first computes
                    (the manifest checked, the source listed, the done shards skipped);
                    target < 2 s.
``runs-store``      bytes on disk per sample and method (maps) and per sample (tables), from
                    the local runs above; the maps' write and read MB/s in the default
                    format, timed on the run's own Grad-CAM and Saliency shards.
``runs-estimate``   on paper, from the per-image costs measured here: the hours for 10^6
                    ImageNet images with Grad-CAM and Integrated Gradients on N workers, and
                    which stage limits them (decode, model, write).
==================  =========================================================================

``--only runs`` runs them all (in that order: the later ones read the earlier ones' figures,
and measure what is missing on their own when run alone). 2,000 samples of resnet18 are
minutes of steady work on 2 cores, yet the same run on this shared machine takes anywhere
within +-8% of its mean from one minute to the next; so ``runs-local`` interleaves the plain
loop and the engine (loop, run, loop, run, loop: ``LOCAL_RUNS``) and compares their means,
so that a drift of the machine during the report cancels and a passing slow minute counts
half. ``BENCH_RUN_SAMPLES=256`` makes a smoke run.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.report import text_table

SAMPLES = int(os.environ.get("BENCH_RUN_SAMPLES", "2000"))
CLASSES = 10
SIDE = 256
SHARD = 64
SEED = 0
RESUME_DONE = 10_240
RESUME_SIDE = 32
METHODS = {"Saliency": ("saliency", None), "GradCAM": ("gradcam", "layer4")}
LOCAL_RUNS = 2  # runs-local: loop, run, loop, run, loop (one run is +-8% on a shared machine)
ESTIMATE_IMAGES = 10**6
IG_STEPS = 32  # attrib's IntegratedGradients default

_FIGURES: dict[str, Any] = {}  # what one report measured, for the later ones


# -- the data and the model --------------------------------------------------------------


def write_photos(folder: Path, n: int, side: int = SIDE, quality: int = 90) -> Path:
    """``n`` synthetic JPEG photographs in ``CLASSES`` sub-folders of ``folder``: a smooth
    random colour field (an 8 x 8 grid upsampled) plus pixel noise, seeded by the index."""
    from PIL import Image

    for i in range(n):
        rng = np.random.default_rng([SEED, i])
        coarse = rng.uniform(0, 255, size=(8, 8, 3)).astype(np.uint8)
        field = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
        pixels = np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, size=(side, side, 3))
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        where = folder / f"class{i % CLASSES:02d}"
        where.mkdir(parents=True, exist_ok=True)
        image.save(where / f"{i:07d}.jpg", quality=quality)
    return folder


def _resnet18() -> torch.nn.Module:
    import torchvision

    torch.manual_seed(SEED)
    return torchvision.models.resnet18(weights=None).eval()


def _method(model: torch.nn.Module, name: str) -> Any:
    """The method as the run builds it: a CAM keeps its layer's resolution (7 x 7)."""
    from attrib.methods import GradCAM, Saliency

    return GradCAM(model, "layer4", upsample=False) if name == "GradCAM" else Saliency(model)


def _decoded(folder: Path) -> list[torch.Tensor]:
    """The source's inputs in batches of ``SHARD``, decoded as the run decodes them."""
    from attrib.runs.sources import open_source

    source = open_source(folder, preset="imagenet")
    inputs = [source[i].input for i in range(len(source))]
    return [torch.stack(inputs[k : k + SHARD]) for k in range(0, len(inputs), SHARD)]


def _loop(method: Any, batches: list[torch.Tensor]) -> float:
    """Seconds of the plain loop: the method on every batch, the maps kept in memory."""
    start = time.perf_counter()
    for x in batches:
        method(x, "predicted").saliency()
    return time.perf_counter() - start


def _run(
    model: torch.nn.Module, folder: Path, name: str, out: Path, engine: str, **extra: Any
) -> tuple[float, Any]:
    """Seconds of ``attrib.runs.run`` on ``folder`` into ``out``, and the run."""
    from attrib.runs import run

    methods, layer = METHODS[name]
    start = time.perf_counter()
    done = run(
        model,
        folder,
        methods=methods,
        layer=layer,
        out=out,
        engine=engine,
        shard_size=SHARD,
        preset="imagenet",
        progress=False,
        verdict=False,
        **extra,
    )
    return time.perf_counter() - start, done


def _commits(out: Path, started: float) -> tuple[float, float]:
    """When a run that started at ``started`` (``time.time()``) wrote its first shard
    (seconds; a shard folder's time is its last file's, just before its fsync and rename),
    and its steady rate (samples/s from the first shard written to the last)."""
    times = sorted(p.stat().st_mtime for p in (out / "shards").iterdir())
    steady = (len(times) - 1) * SHARD / max(times[-1] - times[0], 1e-9)
    return times[0] - started, steady


class _Workspace:
    """The photographs, written once per benchmark process, and a folder for the runs."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="attrib-bench-runs-"))
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)  # ~500 MB of files
        self.photos: Path | None = None
        self.model: torch.nn.Module | None = None

    def data(self, progress: Callable[[str], None]) -> tuple[torch.nn.Module, Path]:
        if self.photos is None:
            progress(f"writing {SAMPLES} JPEG photographs")
            self.photos = write_photos(self.root / "photos", SAMPLES)
            self.model = _resnet18()
        assert self.model is not None
        return self.model, self.photos

    def fresh(self, name: str) -> Path:
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        return path


_WORKSPACE: _Workspace | None = None


def _workspace() -> _Workspace:
    global _WORKSPACE
    if _WORKSPACE is None:
        _WORKSPACE = _Workspace()
    return _WORKSPACE


# -- runs-local ------------------------------------------------------------------------


def measure_local(progress: Callable[[str], None]) -> dict[str, Any]:
    """Per method: the plain loop (ABA) and the local engine on the same photographs."""
    space = _workspace()
    model, photos = space.data(progress)
    progress("decoding the photographs for the plain loop")
    batches = _decoded(photos)
    out: dict[str, Any] = {}
    for name in METHODS:
        method = _method(model, name)
        method(batches[0][:2], "predicted")  # warm-up: first use of the kernels
        loops, runs = [], []
        for k in range(LOCAL_RUNS):
            progress(f"{name}: plain loop ({k + 1}/{LOCAL_RUNS + 1})")
            loops.append(_loop(method, batches))
            progress(f"{name}: local engine ({k + 1}/{LOCAL_RUNS})")
            started = time.time()  # the last run's: its store is the one kept
            runs.append(_run(model, photos, name, space.fresh(f"local-{name}"), "local")[0])
        progress(f"{name}: plain loop ({LOCAL_RUNS + 1}/{LOCAL_RUNS + 1})")
        loops.append(_loop(method, batches))
        loop, seconds = statistics.mean(loops), statistics.mean(runs)
        out[name] = {
            "loop_s": loops,
            "runs_s": runs,
            "run_s": runs[-1],  # the run just before runs-ray's (the A of its ABA)
            "started": started,
            "loop_samples_s": SAMPLES / loop,
            "run_samples_s": SAMPLES / seconds,
            "ratio": loop / seconds,
            "store": str(space.root / f"local-{name}"),
        }
    _FIGURES["local"] = out
    return out


def _ratio_cells(name: str, first: float, second: float, ratio: float, target: float) -> list:
    """A table row: two rates, their ratio and whether it meets ``target``."""
    return [
        name,
        f"{first:.2f}",
        f"{second:.2f}",
        f"{ratio:.2f}",
        "yes" if ratio >= target else "NO",
    ]


def _local_report(ctx: ReportContext) -> ReportResult:
    data = measure_local(ctx.progress)
    rows = [
        _ratio_cells(name, d["loop_samples_s"], d["run_samples_s"], d["ratio"], 0.9)
        for name, d in data.items()
    ]
    header = ["method", "plain loop samples/s", "attrib run samples/s", "run/loop", ">= 0.9"]
    title = (
        f"== runs-local: {SAMPLES} JPEGs ({SIDE}^2 -> 224^2), resnet18, shards of {SHARD}, "
        f"{torch.get_num_threads()} torch threads =="
    )
    notes = [
        f"  loop: the method on pre-decoded batches, nothing written; run: attrib.runs.run, "
        f"decode + predict + explain + write + fsync; means of {LOCAL_RUNS + 1} loops and "
        f"{LOCAL_RUNS} runs, interleaved (loop, run, loop, ...)"
    ]
    return ReportResult("runs-local", [title, *text_table(header, rows), *notes], data)


# -- runs-ray --------------------------------------------------------------------------


def _same_store(a: Any, b: Any, name: str) -> tuple[bool, float]:
    """Whether two runs hold the same samples and predictions, and the largest difference of
    their maps relative to the map's scale (float16 rounding and thread counts: small)."""
    rows_a, rows_b = a.samples.to_pylist(), b.samples.to_pylist()
    key = [(r["id"], r["status"], r["prediction"]) for r in rows_a]
    same = key == [(r["id"], r["status"], r["prediction"]) for r in rows_b]
    ids = [r["id"] for r in rows_a if r["status"] == "ok"]
    worst = 0.0
    for start in range(0, len(ids), 256):
        chunk = ids[start : start + 256]
        ma = a.maps(name, chunk)[1].astype(np.float32)
        mb = b.maps(name, chunk)[1].astype(np.float32)
        scale = np.abs(ma).reshape(len(chunk), -1).max(axis=1).clip(min=1e-30)
        diff = np.abs(ma - mb).reshape(len(chunk), -1).max(axis=1) / scale
        worst = max(worst, float(diff.max()))
    return same, worst


def measure_ray(progress: Callable[[str], None], workers: int = 2) -> dict[str, Any]:
    """Per method: the Ray engine (local Ray) against the local engine run before and after
    it (ABA: the machine's drift cancels), the stores, and where Ray's time goes."""
    import ray

    from attrib.runs import open_run

    space = _workspace()
    model, photos = space.data(progress)
    local = _FIGURES.get("local", {})
    out: dict[str, Any] = {}
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    try:
        for name in METHODS:
            if name in local:  # runs-local's run, just before: the A of ABA
                before, local_store = local[name]["run_s"], open_run(local[name]["store"])
                local_out, local_start = Path(local[name]["store"]), local[name]["started"]
            else:
                progress(f"{name}: local engine (1/2)")
                local_out, local_start = space.fresh(f"local-{name}"), time.time()
                before, local_store = _run(model, photos, name, local_out, "local")
            progress(f"{name}: Ray engine, {workers} actors")
            ray_out, ray_start = space.fresh(f"ray-{name}"), time.time()
            ray_s, ray_store = _run(model, photos, name, ray_out, "ray", workers=workers)
            same, worst = _same_store(local_store, ray_store, name)
            progress(f"{name}: local engine (2/2)")
            after, _ = _run(model, photos, name, space.fresh(f"local-after-{name}"), "local")
            local_s = (before + after) / 2
            local_first, local_steady = _commits(local_out, local_start)
            ray_first, ray_steady = _commits(ray_out, ray_start)
            out[name] = {
                "local_s": [before, after],
                "ray_s": ray_s,
                "ratio": local_s / ray_s,
                "workers": workers,
                "same_rows": same,
                "max_map_rel_diff": worst,
                "first_commit_s": {"local": local_first, "ray": ray_first},
                "steady_samples_s": {"local": local_steady, "ray": ray_steady},
            }
    finally:
        ray.shutdown()
    _FIGURES["ray"] = out
    return out


def _ray_report(ctx: ReportContext) -> ReportResult:
    try:
        import ray  # noqa: F401
    except ImportError:
        return ReportResult("runs-ray", ["== runs-ray: skipped (pip install 'attrib[ray]') =="])
    data = measure_ray(ctx.progress)
    rows = []
    for name, d in data.items():
        local_rate = SAMPLES / statistics.mean(d["local_s"])
        first, steady = d["first_commit_s"], d["steady_samples_s"]
        rows.append(
            [
                *_ratio_cells(name, local_rate, SAMPLES / d["ray_s"], d["ratio"], 0.75),
                f"{first['local']:.1f} / {first['ray']:.1f}",
                f"{steady['ray'] / steady['local']:.2f}",
                "yes" if d["same_rows"] else "NO",
                f"{d['max_map_rel_diff']:.1e}",
            ]
        )
    header = ["method", "local samples/s", "ray samples/s", "ray/local", ">= 0.75"]
    header += ["first shard s (local/ray)", "steady ray/local", "same rows", "max map diff"]
    title = f"== runs-ray: the runs of runs-local on a local Ray ({os.cpu_count()} CPUs) =="
    notes = [
        "  local: mean of a local run before and after the Ray run; first shard: seconds "
        "from run() to the first shard on disk (Ray: its actors start, import torch and the "
        "model's package, unpickle the job); steady: samples/s from the first commit to the "
        "last, Ray's over local's",
        "  max map diff: largest |ray - local| over a map's largest magnitude (float16 "
        "rounding 4.9e-4; other thread counts sum in another order)",
    ]
    return ReportResult("runs-ray", [title, *text_table(header, rows), *notes], data)


# -- runs-resume -----------------------------------------------------------------------


class _FirstCall(torch.nn.Module):
    """A small CNN that notes when it is first asked to compute (armed by the benchmark)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(SEED)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Linear(128, CLASSES),
        )
        self.armed = False
        self.first: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.armed and self.first is None:
            self.first = time.perf_counter()
        return self.net(x)


def measure_resume(progress: Callable[[str], None]) -> dict[str, Any]:
    """Seconds from ``run()`` to the first forward, resuming ``RESUME_DONE`` done samples."""
    from attrib.runs import run

    space = _workspace()
    folder = space.root / "resume-photos"
    total = RESUME_DONE + SHARD
    if not folder.exists():
        progress(f"writing {total} small photographs")
        write_photos(folder, total, side=RESUME_SIDE)
    out_dir = space.fresh("resume")
    model = _FirstCall().eval()
    settings: dict[str, Any] = {
        "methods": "saliency",
        "out": out_dir,
        "shard_size": SHARD,
        "preset": "none",
        "progress": False,
        "verdict": False,
    }
    progress(f"a run of {total} samples")
    run(model, folder, **settings)
    times = []
    for attempt in range(3):
        shutil.rmtree(sorted((out_dir / "shards").iterdir())[-1])  # one shard left to do
        model.armed, model.first = True, None
        progress(f"resuming ({attempt + 1}/3)")
        start = time.perf_counter()
        run(model, folder, **settings)
        end = time.perf_counter()
        assert model.first is not None, "the resumed run computed nothing"
        times.append({"first_forward_s": model.first - start, "whole_s": end - start})
    data = {
        "done": RESUME_DONE,
        "to_do": SHARD,
        "first_forward_s": statistics.median(t["first_forward_s"] for t in times),
        "whole_s": statistics.median(t["whole_s"] for t in times),
        "all": times,
    }
    _FIGURES["resume"] = data
    return data


def _resume_report(ctx: ReportContext) -> ReportResult:
    data = measure_resume(ctx.progress)
    title = (
        f"== runs-resume: {data['done']} samples done (a folder of {data['done'] + data['to_do']}"
        f" JPEGs), one shard of {data['to_do']} to do =="
    )
    header = ["run() to first forward s", "< 2 s", "whole resumed run s"]
    rows = [
        [
            f"{data['first_forward_s']:.2f}",
            "yes" if data["first_forward_s"] < 2 else "NO",
            f"{data['whole_s']:.2f}",
        ]
    ]
    notes = ["  medians of 3 resumes (the last shard removed before each)"]
    return ReportResult("runs-resume", [title, *text_table(header, rows), *notes], data)


# -- runs-store ------------------------------------------------------------------------


def _bytes_under(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def measure_store(progress: Callable[[str], None]) -> dict[str, Any]:
    """Bytes per sample of the local runs' maps and tables; the maps' write and read MB/s."""
    from attrib.runs.maps import DEFAULT_FORMAT, check_format, read_maps, write_maps

    local = _FIGURES.get("local") or measure_local(progress)
    fmt = check_format(None)
    out: dict[str, Any] = {"format": fmt, "default": DEFAULT_FORMAT, "methods": {}}
    for name, d in local.items():
        root = Path(d["store"])
        maps = sorted(root.glob(f"shards/*/maps/{name}.*"))
        tables = _bytes_under(root, "shards/*/*.parquet")
        write, read = [], []
        with tempfile.TemporaryDirectory(prefix="attrib-bench-store-") as folder:
            for k, path in enumerate(maps):
                ids, values = read_maps(path)
                raw = values.nbytes
                again = Path(folder) / f"{k}{path.name[len(name) :]}"
                start = time.perf_counter()
                write_maps(again, ids, values, fmt=fmt)
                write.append(raw / (time.perf_counter() - start) / 1e6)
                start = time.perf_counter()
                read_maps(again)
                read.append(raw / (time.perf_counter() - start) / 1e6)
        shape = list(values.shape[1:]) if maps else []
        out["methods"][name] = {
            "map_shape": shape,
            "map_bytes_per_sample": sum(p.stat().st_size for p in maps) / SAMPLES,
            "raw_bytes_per_sample": 2 * math.prod(shape) if shape else 0,
            "table_bytes_per_sample": tables / SAMPLES,
            "write_mb_s": statistics.median(write) if write else float("nan"),
            "read_mb_s": statistics.median(read) if read else float("nan"),
        }
    _FIGURES["store"] = out
    return out


def _store_report(ctx: ReportContext) -> ReportResult:
    data = measure_store(ctx.progress)
    header = ["method", "map", "map B/sample", "of raw", "tables B/sample"]
    header += ["write MB/s", "read MB/s"]
    rows = []
    for name, d in data["methods"].items():
        raw = d["raw_bytes_per_sample"] or 1
        rows.append(
            [
                name,
                "x".join(map(str, d["map_shape"])),
                f"{d['map_bytes_per_sample']:.0f}",
                f"{d['map_bytes_per_sample'] / raw:.3f}",
                f"{d['table_bytes_per_sample']:.0f}",
                f"{d['write_mb_s']:.0f}",
                f"{d['read_mb_s']:.0f}",
            ]
        )
    title = f"== runs-store: the runs of runs-local, maps in {data['format']} (float16) =="
    notes = [
        "  MB/s: raw float16 map bytes per second, one shard file at a time, medians "
        "(reads from the page cache); tables: samples + scores Parquet"
    ]
    return ReportResult("runs-store", [title, *text_table(header, rows), *notes], data)


# -- runs-estimate ---------------------------------------------------------------------


def _decode_per_core(photos: Path, count: int = 200) -> float:
    """Images per second one core decodes (Pillow + the imagenet preset), one thread."""
    from attrib.runs.sources import open_source

    source = open_source(photos, preset="imagenet")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        source[0]
        start = time.perf_counter()
        for i in range(min(count, len(source))):
            source[i]
        return min(count, len(source)) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


# What a GPU would do per second is not measured on a machine without one; the estimate
# takes it as a stated assumption, scaled from the FLOPs: resnet50's forward is 4.1 GFLOP at
# 224^2, a backward to the input (no weight gradients) about as much again, at a sustained
# ASSUMED_GPU_TFLOPS (mixed precision on an A100-class card runs convnets at 30-40% of its
# 312 TFLOP/s peak).
ASSUMED_GPU_TFLOPS = 100.0
RESNET50_FORWARD_GFLOP = 4.1


def estimate(
    decode_per_core: float,
    write_mb_s: float,
    map_bytes: dict[str, float],
    model_per_s: dict[str, float],
    workers: tuple[int, ...] = (1, 8, 64),
    cores_per_worker: int = 8,
) -> dict[str, Any]:
    """Hours for ``ESTIMATE_IMAGES`` per method and worker count, and the limiting stage.

    A worker decodes on ``cores_per_worker - 1`` cores, computes at ``model_per_s`` and
    writes with one thread at ``write_mb_s`` of raw maps (``map_bytes[method]`` raw per
    image: 224^2 float16 for input maps, 7^2 for a CAM at its layer's resolution); the
    stages overlap (as in both engines), so a worker runs at the slowest stage's rate.
    """
    out: dict[str, Any] = {}
    for method, model_rate in model_per_s.items():
        stages = {
            "decode": decode_per_core * (cores_per_worker - 1),
            "model": model_rate,
            "write": write_mb_s * 1e6 / map_bytes[method],
        }
        limit = min(stages, key=stages.__getitem__)
        out[method] = {
            "stages_per_s": stages,
            "limit": limit,
            "hours": {n: ESTIMATE_IMAGES / (stages[limit] * n) / 3600 for n in workers},
        }
    return out


def measure_estimate(progress: Callable[[str], None], device: torch.device) -> dict[str, Any]:
    space = _workspace()
    _, photos = space.data(progress)
    progress("decoding on one core")
    decode = _decode_per_core(photos)
    store = _FIGURES.get("store") or measure_store(progress)
    saliency = store["methods"]["Saliency"]
    write = saliency["write_mb_s"]
    raw = saliency["raw_bytes_per_sample"]  # 224 x 224 float16
    gpu_grad = ASSUMED_GPU_TFLOPS * 1e12 / (2 * RESNET50_FORWARD_GFLOP * 1e9)
    ig = f"IntegratedGradients ({IG_STEPS} steps)"
    rates = {"GradCAM": gpu_grad, ig: gpu_grad / IG_STEPS}
    cam_raw = 7 * 7 * 2  # resnet50's layer4 at 224^2, float16
    raws = {"GradCAM": cam_raw, ig: raw, "GradCAM (resnet18)": cam_raw}
    data = {
        "decode_per_core_s": decode,
        "write_mb_s": write,
        "raw_map_bytes": raw,
        "assumed_gpu_tflops": ASSUMED_GPU_TFLOPS,
        "measured_on_gpu": device.type == "cuda",
        "gpu": estimate(decode, write, raws, rates),
    }
    local = _FIGURES.get("local")
    if local:  # workers like this machine: every stage measured
        cpu_rates = {"GradCAM (resnet18)": local["GradCAM"]["run_samples_s"]}
        data["this_machine"] = estimate(decode, write, raws, cpu_rates, cores_per_worker=2)
    _FIGURES["estimate"] = data
    return data


def _estimate_report(ctx: ReportContext) -> ReportResult:
    data = measure_estimate(ctx.progress, ctx.device)
    lines = [
        f"== runs-estimate: {ESTIMATE_IMAGES:.0e} ImageNet images on N workers of 8 cores "
        "(7 decode) and a GPU, resnet50 ==",
        f"  measured here: decode {data['decode_per_core_s']:.0f} images/s per core; maps "
        f"written at {data['write_mb_s']:.0f} MB/s by one thread "
        f"({data['raw_map_bytes'] / 1e3:.0f} KB raw per 224^2 map)",
        f"  ASSUMED, not measured (no GPU here): resnet50 forward + input backward = "
        f"{2 * RESNET50_FORWARD_GFLOP:.1f} GFLOP at {data['assumed_gpu_tflops']:.0f} TFLOP/s",
    ]
    header = ["method", "decode/s", "model/s", "write/s", "limit", "1 worker h", "8 h", "64 h"]

    def table(found: dict[str, Any]) -> list[str]:
        rows = []
        for method, d in found.items():
            s, h = d["stages_per_s"], d["hours"]
            rows.append(
                [method, *(f"{s[k]:.0f}" for k in ("decode", "model", "write")), d["limit"]]
                + [f"{v:.2f}" for v in h.values()]
            )
        return text_table(header, rows)

    lines += table(data["gpu"])
    if "this_machine" in data:
        lines.append("  workers like this machine (2 cores, no GPU; every stage measured):")
        lines += table(data["this_machine"])
    return ReportResult("runs-estimate", lines, data)


for _name, _run_report in (
    ("runs-local", _local_report),
    ("runs-ray", _ray_report),
    ("runs-resume", _resume_report),
    ("runs-store", _store_report),
    ("runs-estimate", _estimate_report),
):
    register_report(Report(_name, family="runs", run=_run_report))

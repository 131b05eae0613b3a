"""Reports ``maps-*``: write and read speed and size of the formats a run can store maps in.

A run writes one maps file per shard and method (``attrib.runs.maps``); this measures each
format (Parquet with a fixed-shape tensor column, Zarr v3 in a zip, npz) with the compression
its library uses when asked nothing (``library``) and with ours (``tuned``), on

==================  ============================================  ==========================
report              maps                                          shape (float16)
==================  ============================================  ==========================
``maps-saliency``   ``Saliency`` (max-abs over channels)          224 x 224
``maps-gradcam``    ``GradCAM`` at ``head``, upsampled            224 x 224
``maps-gradcam7``   ``GradCAM`` at ``head``, ``upsample=False``   7 x 7
``maps-gxi``        ``GradientXInput``, the full attribution      3 x 224 x 224
==================  ============================================  ==========================

of ``SAMPLES`` (2,000) samples in shards of ``SHARD`` (256). ``--only maps`` runs the four.

The maps are real: the demo model (EfficientNet-Lite0) explaining its predicted class on crops
of the demo photographs (random size, place and flip), in float16, because how well float16
maps compress depends on what they hold (smooth CAMs, noisy gradients). A file must not
hold a map twice, or a compressor would find the copy: the CAM kinds explain ``SHARD`` crops
(the backward stops at ``head``: about a forward each); the gradient kinds, whose backward
runs to the input, explain ``GRADIENT_POOL`` crops and turn each map by the 8 rotations and
flips of the square (map ``j`` is crop ``j % 32`` turned by symmetry ``j // 32``). Two turned
copies of a map may share rows (a map and its upside-down copy), but they lie 32 maps (3 MB)
or more apart, in row groups and chunks that are compressed apart; 7 x 7 maps all share one,
hence real crops for the CAMs. Every file holds the same maps under other ids.

Measured per shard, the formats interleaved (shard 1 in each format, shard 2 in each, ...)
so that a slow spell of the machine hits them alike; **medians over the shards**:

- **write MB/s**: raw map bytes (``n x prod(shape) x 2``) over the time of ``write_maps``
  (conversion to Arrow/Zarr, compression, the file written and renamed; no fsync);
- **read MB/s**: the same bytes over ``read_maps(path)`` (all ids and maps, as numpy);
- **16 ids**: ``read_maps(path, ids)`` for 16 ids drawn at random (seeded) in random order,
  as the explorer asks for a page of thumbnails: ms per call, and MB/s of the maps returned;
- **1 id ms**: ``read_maps(path, [id])``, one id at random: what a page of thumbnails costs
  per file when its samples come from many shards (sorted by a score);
- **B/sample**: file bytes over samples (all files); **of raw**: that over the raw bytes.

Reads follow the writes, so the files are in the page cache: this times decoding, not the
disk. Every read is checked bit-exact against what was written (outside the timings). A
format whose package is not installed (pyarrow, zarr) is left out and the table says so.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.core.errors import SettingError
from attrib.runs.maps import (
    COMPRESSIONS,
    DEFAULT_FORMAT,
    FORMATS,
    SUFFIXES,
    read_maps,
    write_maps,
)
from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.report import text_table

SAMPLES = 2000
SHARD = 256
SELECT = 16
GRADIENT_POOL = 32  # crops explained for the gradient kinds; x 8 symmetries = SHARD maps
EXPLAIN_BATCH = 32
SEED = 0
CROP = 224

PACKAGES = {"zarr": "zarr", "parquet": "pyarrow"}
# what each compression is, per format (attrib.runs.maps says the same in words)
CODECS = {
    ("parquet", "tuned"): "zstd-3, byte-stream split",
    ("parquet", "library"): "snappy, dictionary",
    ("zarr", "tuned"): "blosc zstd-5, shuffle",
    ("zarr", "library"): "zstd",
    ("npz", "tuned"): "deflate-1",
    ("npz", "library"): "stored",
}


@dataclass(frozen=True)
class Kind:
    """One kind of map: how the demo model's maps of a batch of crops are made, and of how
    many crops (``SHARD``, or ``GRADIENT_POOL`` turned by the 8 symmetries of the square)."""

    name: str
    what: str
    make: Callable[[Any, torch.Tensor], torch.Tensor]
    crops: int


def _saliency(model: Any, x: torch.Tensor) -> torch.Tensor:
    from attrib import Saliency

    return Saliency(model)(x, target="predicted").saliency()


def _gradcam(upsample: bool) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    def make(model: Any, x: torch.Tensor) -> torch.Tensor:
        from attrib import GradCAM
        from attrib.data.imagenet_demo import CAM_LAYER

        return GradCAM(model, CAM_LAYER, upsample=upsample)(x, target="predicted").values

    return make


def _gradient_x_input(model: Any, x: torch.Tensor) -> torch.Tensor:
    from attrib import GradientXInput

    return GradientXInput(model)(x, target="predicted").values


KINDS = {
    "saliency": Kind("saliency", "Saliency, max-abs over channels", _saliency, GRADIENT_POOL),
    "gradcam": Kind("gradcam", "GradCAM at head, upsampled", _gradcam(True), SHARD),
    "gradcam7": Kind("gradcam7", "GradCAM at head, upsample=False", _gradcam(False), SHARD),
    "gxi": Kind("gxi", "GradientXInput, the full attribution", _gradient_x_input, GRADIENT_POOL),
}

_CACHE: dict[str, Any] = {}  # the model and the crops, made once per process


def _crops(count: int) -> tuple[Any, torch.Tensor]:
    """The demo model and ``count`` crops of the demo photos (random size, place and flip;
    the first crops are the same whatever ``count``)."""
    if "model" not in _CACHE:
        from attrib.data.imagenet_demo import load_efficientnet_lite0
        from attrib.data.photos import load_photos

        _CACHE["model"] = load_efficientnet_lite0().eval()
        _CACHE["photos"] = list(load_photos().values())
        _CACHE["crops"] = torch.empty(0, 3, CROP, CROP)
    made: torch.Tensor = _CACHE["crops"]
    if len(made) < count:
        import torch.nn.functional as F

        photos = _CACHE["photos"]
        rng = np.random.default_rng([SEED, len(made)])
        crops = [made]
        for i in range(len(made), count):
            photo = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1).float() / 255
            _, h, w = photo.shape
            side = int(rng.uniform(0.5, 1.0) * min(h, w))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = photo[None, :, top : top + side, left : left + side]
            crop = F.interpolate(crop, size=(CROP, CROP), mode="bilinear", antialias=True)
            crops.append(crop.flip(-1) if rng.random() < 0.5 else crop)
        _CACHE["crops"] = made = torch.cat(crops).clamp(0, 1)
    return _CACHE["model"], made[:count]


def shard_maps(kind: Kind) -> np.ndarray:
    """``SHARD`` distinct float16 maps of ``kind`` (see the module's docstring)."""
    model, x = _crops(kind.crops)
    maps = np.concatenate(
        [kind.make(model, batch).detach().float().numpy() for batch in x.split(EXPLAIN_BATCH)]
    )
    turned = []
    for symmetry in range(SHARD // kind.crops):
        rotated = np.rot90(maps, k=symmetry % 4, axes=(-2, -1))
        turned.append(rotated[..., ::-1] if symmetry >= 4 else rotated)
    return np.ascontiguousarray(np.concatenate(turned).astype(np.float16))


def _ids(shard: int, n: int) -> list[str]:
    # the length of ImageNet validation paths, the ids a run over a folder gets
    return [f"val/n{shard:08d}/ILSVRC2012_val_{shard * SHARD + i:08d}.JPEG" for i in range(n)]


def _installed(fmt: str) -> bool:
    return fmt == "npz" or importlib.util.find_spec(PACKAGES[fmt]) is not None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(
    kind: Kind, samples: int = SAMPLES, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write and read ``samples`` maps of ``kind`` in every format and compression."""
    progress(f"explaining {kind.crops} crops ({kind.what})")
    block = shard_maps(kind)
    shape = block.shape[1:]
    per_map = math.prod(shape) * block.itemsize
    variants = [(f, c) for f in FORMATS if _installed(f) for c in COMPRESSIONS]
    sizes = [min(SHARD, samples - start) for start in range(0, samples, SHARD)]
    rng = np.random.default_rng(SEED)
    got: dict[tuple[str, str], dict[str, list[float]]] = {
        v: {"write": [], "read": [], "select": [], "one": [], "bytes": []} for v in variants
    }
    with tempfile.TemporaryDirectory(prefix="attrib-maps-") as folder:
        paths = {}
        for shard, n in enumerate(sizes):
            progress(f"writing shard {shard + 1}/{len(sizes)}")
            ids, maps = _ids(shard, n), block[:n]
            for fmt, compression in variants:
                path = Path(folder) / f"{shard:05d}.{compression}{SUFFIXES[fmt]}"
                start = time.perf_counter()
                write_maps(path, ids, maps, fmt=fmt, compression=compression)
                got[fmt, compression]["write"].append(
                    n * per_map / (time.perf_counter() - start) / 1e6
                )
                got[fmt, compression]["bytes"].append(path.stat().st_size)
                paths[shard, fmt, compression] = path
        for shard, n in enumerate(sizes):
            progress(f"reading shard {shard + 1}/{len(sizes)}")
            ids, maps = _ids(shard, n), block[:n]
            chosen = rng.choice(n, size=min(SELECT, n), replace=False)
            wanted = [ids[i] for i in chosen]
            one = int(rng.integers(n))
            for fmt, compression in variants:
                path = paths[shard, fmt, compression]
                start = time.perf_counter()
                back_ids, back = read_maps(path)
                got[fmt, compression]["read"].append(
                    n * per_map / (time.perf_counter() - start) / 1e6
                )
                start = time.perf_counter()
                some_ids, some = read_maps(path, wanted)
                got[fmt, compression]["select"].append((time.perf_counter() - start) * 1e3)
                start = time.perf_counter()
                one_ids, one_map = read_maps(path, [ids[one]])
                got[fmt, compression]["one"].append((time.perf_counter() - start) * 1e3)
                if (
                    back_ids != ids
                    or some_ids != wanted
                    or one_ids != [ids[one]]
                    or not np.array_equal(back.view(np.uint16), maps.view(np.uint16))
                    or not np.array_equal(some.view(np.uint16), maps[chosen].view(np.uint16))
                    or not np.array_equal(one_map[0].view(np.uint16), maps[one].view(np.uint16))
                ):
                    raise AssertionError(f"{path.name}: the maps read differ from those written")
    results = {}
    for (fmt, compression), runs in got.items():
        select_ms = _median(runs["select"])
        results[f"{fmt} {compression}"] = {
            "format": fmt,
            "compression": compression,
            "codec": CODECS[fmt, compression],
            "write_mb_s": _median(runs["write"]),
            "read_mb_s": _median(runs["read"]),
            "select_ms": select_ms,
            "select_mb_s": SELECT * per_map / (select_ms / 1e3) / 1e6,
            "one_ms": _median(runs["one"]),
            "bytes_per_sample": sum(runs["bytes"]) / samples,
            "of_raw": sum(runs["bytes"]) / (samples * per_map),
            "write_mb_s_all": runs["write"],
            "read_mb_s_all": runs["read"],
            "select_ms_all": runs["select"],
            "one_ms_all": runs["one"],
        }
    return {
        "kind": kind.name,
        "what": kind.what,
        "shape": list(shape),
        "samples": samples,
        "shard": SHARD,
        "select": SELECT,
        "raw_bytes_per_sample": per_map,
        "not_installed": [f for f in FORMATS if not _installed(f)],
        "variants": results,
    }


def _table(data: dict[str, Any]) -> list[str]:
    shape = "x".join(map(str, data["shape"]))
    title = (
        f"== maps-{data['kind']}: {data['samples']} maps of {data['what']} ({shape} float16, "
        f"{data['raw_bytes_per_sample']} B raw), shards of {data['shard']} =="
    )
    header = ["format", "compression", "write MB/s", "read MB/s", f"{SELECT} ids ms"]
    header += [f"{SELECT} ids MB/s", "1 id ms", "B/sample", "of raw"]
    rows = []
    for v in data["variants"].values():
        default = " *" if v["format"] == DEFAULT_FORMAT and v["compression"] == "tuned" else ""
        rows.append(
            [
                v["format"] + default,
                f"{v['compression']}: {v['codec']}",
                f"{v['write_mb_s']:.0f}",
                f"{v['read_mb_s']:.0f}",
                f"{v['select_ms']:.1f}",
                f"{v['select_mb_s']:.0f}",
                f"{v['one_ms']:.1f}",
                f"{v['bytes_per_sample']:.0f}",
                f"{v['of_raw']:.3f}",
            ]
        )
    notes = [
        f"  {fmt}: not measured, its package is not installed" for fmt in data["not_installed"]
    ]
    notes += [
        "  MB/s: raw float16 map bytes (1e6) per second; medians over the shards; reads from "
        "the page cache",
        f"  * the default (attrib.runs.maps.DEFAULT_FORMAT = {DEFAULT_FORMAT!r}, tuned)",
    ]
    return [title, *text_table(header, rows), *notes]


def _report(name: str) -> Callable[[ReportContext], ReportResult]:
    def run(ctx: ReportContext) -> ReportResult:
        try:
            data = measure(KINDS[name], progress=ctx.progress)
        except (SettingError, ImportError) as error:  # the demo model's packages
            return ReportResult(f"maps-{name}", [f"== maps-{name}: skipped ({error}) =="])
        return ReportResult(f"maps-{name}", _table(data), data)

    return run


for _name in KINDS:
    register_report(Report(f"maps-{_name}", family="maps", run=_report(_name)))

"""One benchmark run: for each model, its limit curves; for each batch, every selected case."""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.cases import Case, ReportContext, select_cases, select_reports
from benchmarks.limits import (
    Curves,
    bare_memory_mib,
    curve_limit_ms,
    measure_curves,
    schedule_fns,
)
from benchmarks.machine import NeighbourMeter, busy_fraction, cpu_name, load_average
from benchmarks.memory import peak_memory_mib
from benchmarks.models import Setup, build_model, make_setup
from benchmarks.report import format_config
from benchmarks.results import CaseResult, ConfigResult, write_json
from benchmarks.timing import interleaved, median_ms

__all__ = ["Config", "run"]


@dataclass(frozen=True)
class Config:
    """What to run; see ``python -m benchmarks --help`` for the meaning of each field."""

    models: tuple[str, ...]
    batches: tuple[int, ...]
    rows: tuple[int, ...]
    size: int
    repeats: int
    device: torch.device
    only: tuple[str, ...]
    out: Path
    threads: int | None = None  # torch intra-op threads (None: torch's default)


class _Progress:
    """Progress lines on stderr (stdout carries only the tables), with elapsed time."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.prefix = ""

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:6.1f}s] {self.prefix}{message}", file=sys.stderr, flush=True)


def _max_rel_diff(ours: torch.Tensor, peer: torch.Tensor) -> float:
    scale = peer.abs().max().item()
    return (ours - peer).abs().max().item() / (scale if scale > 0 else 1.0)


def _run_case(
    case: Case, setup: Setup, curves: Curves, config: Config, progress: _Progress
) -> CaseResult:
    contenders = case.build(setup)
    fns = {"ours": contenders.ours}
    diff = None
    if contenders.peer is not None:
        fns["peer"] = contenders.peer
        ours, peer = contenders.agree or (contenders.ours, contenders.peer)
        diff = _max_rel_diff(ours().detach(), peer().detach())
    timed = dict(fns)
    # The limit is timed here, in the same rounds as ours and the peer, so that the machine's
    # drift since the curves were timed cancels; the curves only choose its rows per forward.
    schedules = schedule_fns(setup.spec, case.needs, curves, setup.batch, config.size, setup.device)
    timed.update(schedules or {})
    repeats = min(config.repeats, case.repeats or config.repeats)
    counts = {name: repeats for name in timed}
    if "peer" in counts and case.peer_repeats is not None:
        counts["peer"] = min(repeats, case.peer_repeats)
    samples = interleaved(timed, counts, setup.device, progress=progress)
    limit_name = min(schedules or {}, key=lambda name: median_ms(samples[name]), default=None)
    progress("peak memory")
    mib = {name: peak_memory_mib(fn, setup.device) for name, fn in fns.items()}
    has_peer = "peer" in fns
    return CaseResult(
        name=case.name,
        peer_name=contenders.peer_name,
        ours_ms=median_ms(samples["ours"]),
        peer_ms=median_ms(samples["peer"]) if has_peer else None,
        limit_ms=median_ms(samples[limit_name]) if limit_name is not None else None,
        limit_schedule=limit_name,
        other_schedules_ms={
            name: median_ms(samples[name]) for name in schedules or {} if name != limit_name
        },
        curve_limit_ms=curve_limit_ms(case.needs, curves, setup.batch),
        ours_mib=mib["ours"],
        peer_mib=mib.get("peer"),
        bare_mib=bare_memory_mib(setup.spec, case.needs, setup.batch, config.size, setup.device),
        max_rel_diff=diff,
        ours_samples_s=samples["ours"],
        peer_samples_s=samples.get("peer", []),
        limit_samples_s=samples[limit_name] if limit_name is not None else [],
    )


def _warn_if_busy(progress: _Progress) -> float | None:
    # Another process on the same cores slows whichever run it overlaps; interleaving and
    # medians absorb short spells, not a neighbour that runs for the whole benchmark.
    busy = busy_fraction()
    if busy is not None and busy > 0.25:
        progress(
            f"warning: the CPU is {busy:.0%} busy before starting; other processes are "
            "running, and timings will be slower and noisier"
        )
    return busy


def _meta(config: Config) -> dict[str, Any]:
    import captum
    import torchvision

    import attrib

    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": str(config.device),
        "device_name": (
            torch.cuda.get_device_name(config.device)
            if config.device.type == "cuda"
            else cpu_name()
        ),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_average(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "captum": captum.__version__,
            "attrib": attrib.__version__,
        },
        "config": {
            "models": list(config.models),
            "batches": list(config.batches),
            "rows_per_forward": list(config.rows),
            "size": config.size,
            "repeats": config.repeats,
            "only": list(config.only),
            "threads": config.threads,
        },
    }


def run(config: Config) -> list[ConfigResult]:
    """Measure everything in ``config``, print one table per configuration, write the JSON."""
    cases = select_cases(config.only)
    reports = select_reports(config.only)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    progress = _Progress()
    meta = _meta(config)
    meta["cpu_busy_before"] = _warn_if_busy(progress)
    threads = torch.get_num_threads()
    results: list[ConfigResult] = []
    for model_name in config.models:
        if not any(c.runs_on(model_name, b, config.size) for c in cases for b in config.batches):
            continue  # no case here: no limits to measure
        spec = build_model(model_name, config.device)
        progress.prefix = f"{model_name} limits: "
        meter = NeighbourMeter()
        curves = measure_curves(
            spec, config.rows, config.size, config.repeats, config.device, progress
        )
        limits_share = meter.share()
        for batch in config.batches:
            here = [c for c in cases if c.runs_on(model_name, batch, config.size)]
            if not here:
                continue  # no table without a case
            setup = make_setup(spec, batch, config.size, config.device, curves)
            best = {k: b for k in curves.ms_per_row if (b := curves.best(k, batch)) is not None}
            result = ConfigResult(
                model_name,
                batch,
                config.size,
                str(config.device),
                spec.layer_name,
                curves.ms_per_row,
                best,
                neighbours_limits=limits_share,
                limit_samples_s=curves.samples_s,
            )
            meter = NeighbourMeter()
            for case in here:
                progress.prefix = f"{model_name} batch {batch} {case.name}: "
                result.cases.append(_run_case(case, setup, curves, config, progress))
            result.neighbours_methods = meter.share()
            results.append(result)
            print(format_config(result, threads) + "\n", flush=True)
    context = ReportContext(
        config.models,
        config.batches,
        config.size,
        config.device,
        progress,
        results_dir=Path(config.out).parent,
    )
    report_data: dict[str, Any] = {}
    for report in reports:
        progress.prefix = f"{report.name}: "
        meter = NeighbourMeter()
        got = report.run(context)
        share = meter.share()
        lines = list(got.lines)
        if share is not None:
            lines.append(f"  other processes used {share:.0%} of the CPU meanwhile")
        report_data[got.name] = {**got.data, "neighbours_cpu_share": share}
        print("\n".join(lines) + "\n", flush=True)
    meta["elapsed_s"] = round(time.perf_counter() - progress.start, 1)
    meta["load_average_after"] = load_average()
    write_json(config.out, meta, results, report_data)
    progress.prefix = ""
    progress(f"done; results in {config.out}")
    return results

"""What one run measured, as plain data: printed by ``report`` and written as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CaseResult", "ConfigResult", "write_json"]


@dataclass
class CaseResult:
    """One method on one configuration. Times are medians in ms per call; memory in MiB."""

    name: str
    peer_name: str | None
    ours_ms: float
    peer_ms: float | None
    # the limit: its schedule (each need's rows as bare passes at the curve's best r), timed
    # in the contenders' own interleaved rounds
    limit_ms: float | None
    # which candidate schedule that was ("limit input@r=8 forward@r=8"), and the others' medians
    limit_schedule: str | None
    other_schedules_ms: dict[str, float]
    # the curves' estimate of the same: sum over needs of R * min_{r <= R} cost(r), timed
    # minutes earlier, a min over noisy medians (biased low; kept for comparison)
    curve_limit_ms: float | None
    ours_mib: float
    peer_mib: float | None
    bare_mib: float | None  # one bare pass of the needed kind(s) on the same batch
    # max |ours - peer| / max |peer| on the benchmarked batch: both must compute the same thing
    max_rel_diff: float | None
    ours_samples_s: list[float] = field(default_factory=list)
    peer_samples_s: list[float] = field(default_factory=list)
    limit_samples_s: list[float] = field(default_factory=list)

    @property
    def ours_over_peer(self) -> float | None:
        return None if self.peer_ms is None else self.ours_ms / self.peer_ms

    @property
    def ours_over_limit(self) -> float | None:
        return None if self.limit_ms is None else self.ours_ms / self.limit_ms

    @property
    def ours_over_curve_limit(self) -> float | None:
        """Ours over the curve's estimate of the limit (timed in an earlier phase)."""
        return None if self.curve_limit_ms is None else self.ours_ms / self.curve_limit_ms

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ours_over_peer": self.ours_over_peer,
            "ours_over_limit": self.ours_over_limit,
            "ours_over_curve_limit": self.ours_over_curve_limit,
        }


@dataclass
class ConfigResult:
    """One (model, batch) configuration: its limit curves and one result per case."""

    model: str
    batch: int
    size: int
    device: str
    layer_name: str | None
    # kind -> rows per forward -> median ms per row (the whole curve, also r > batch)
    ms_per_row: dict[str, dict[int, float]]
    # kind -> [r, ms per row] of the cheapest r <= batch
    best: dict[str, tuple[int, float]]
    # share of the CPU that other processes used while the limits / the methods were timed
    neighbours_limits: float | None = None
    neighbours_methods: float | None = None
    # kind -> rows per forward -> every timed run of one pass (seconds), for re-analysis
    limit_samples_s: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "batch": self.batch,
            "size": self.size,
            "device": self.device,
            "layer": self.layer_name,
            "neighbours_cpu_share": {
                "limits": self.neighbours_limits,
                "methods": self.neighbours_methods,
            },
            "ms_per_row": {
                k: {str(r): v for r, v in c.items()} for k, c in self.ms_per_row.items()
            },
            "best": {
                k: {"rows_per_forward": r, "ms_per_row": v} for k, (r, v) in self.best.items()
            },
            "limit_samples_s": {
                k: {str(r): v for r, v in c.items()} for k, c in self.limit_samples_s.items()
            },
            "cases": [c.to_json() for c in self.cases],
        }


def write_json(
    path: Path,
    meta: dict[str, Any],
    configs: list[ConfigResult],
    reports: dict[str, Any] | None = None,
) -> None:
    """Write the run to ``path`` (its folder is created; ``benchmarks/results/`` is git-ignored).

    ``reports``: report name -> its data, written under ``"reports"`` when given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"meta": meta, "configs": [c.to_json() for c in configs]}
    if reports:
        payload["reports"] = reports
    path.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")

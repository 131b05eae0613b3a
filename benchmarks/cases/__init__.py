"""The registry of benchmark cases: one module per method family, found automatically.

A case module calls ``register(Case(...))`` at import time; ``all_cases()`` imports every
module in this package, so adding a method family is adding one file here.

A module may also register a ``Report``: a measurement that is not a timed race against a
peer (peak memory against the number of steps, gradient evaluations to reach an accuracy).
It runs once per benchmark run, after the cases, and prints its own small table.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.limits import Need
from benchmarks.models import Setup

__all__ = [
    "Case",
    "Contenders",
    "Report",
    "ReportContext",
    "ReportResult",
    "all_cases",
    "all_reports",
    "register",
    "register_report",
    "select_cases",
    "select_reports",
]


@dataclass(frozen=True)
class Contenders:
    """Zero-argument callables that compute the same attribution on the same batch.

    Each returns the attribution values as a tensor shaped like the input (so results can be
    checked to agree). ``peer`` is ``None`` for a method no other library offers.

    ``agree``: for randomised methods, whose timed calls each draw their own random numbers,
    a pair ``(ours, peer)`` that computes the same thing from the *same* draws; the agreement
    is checked on it instead of on the timed callables (``None``: check the timed ones).
    """

    ours: Callable[[], torch.Tensor]
    peer: Callable[[], torch.Tensor] | None
    peer_name: str | None = None
    agree: tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]] | None = None


@dataclass(frozen=True)
class Case:
    """One benchmarked method.

    Args:
        name: the row label and the name ``--only`` selects by.
        family: the module (method family) it comes from.
        needs: the passes the method cannot avoid, per image; they define its limit.
        build: makes the contenders for one configuration (called once per configuration,
            outside the timings, so one-off set-up such as constructing the explainer is not
            timed).
        models: the models the case runs on (``None``: every model of the run); a case whose
            peer takes minutes per call, or that the issue asks for on one model only, says so.
        batches: the batch sizes the case runs on (``None``: every batch of the run).
        sizes: the input sizes the case runs on (``None``: any ``--size``); for a case whose
            needs were counted for one size (windows, grid cells).
        repeats: at most this many timed calls per contender (``None``: the run's
            ``--repeats``); for calls of seconds, whose medians need fewer samples.
        peer_repeats: at most this many timed calls of the peer alone (a peer 300x slower
            than ours is timed a few times, not fifteen).
    """

    name: str
    family: str
    needs: tuple[Need, ...]
    build: Callable[[Setup], Contenders]
    models: tuple[str, ...] | None = None
    batches: tuple[int, ...] | None = None
    sizes: tuple[int, ...] | None = None
    repeats: int | None = None
    peer_repeats: int | None = None

    def runs_on(self, model: str, batch: int, size: int) -> bool:
        """Whether the case takes part in the configuration ``(model, batch, size)``."""
        return (
            (self.models is None or model in self.models)
            and (self.batches is None or batch in self.batches)
            and (self.sizes is None or size in self.sizes)
        )


@dataclass(frozen=True)
class ReportContext:
    """What a report may use: the run's models, batches, input size and device, and the
    folder of the run's JSON results (where a report may write its pictures)."""

    models: tuple[str, ...]
    batches: tuple[int, ...]
    size: int
    device: torch.device
    progress: Callable[[str], None]
    results_dir: Path | None = None


@dataclass
class ReportResult:
    """A report's printed lines (a title first) and its data for the JSON file."""

    name: str
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """A measurement run once per benchmark run (selected like a case, by name or family)."""

    name: str
    family: str
    run: Callable[[ReportContext], ReportResult]


_CASES: dict[str, Case] = {}
_REPORTS: dict[str, Report] = {}


def register(case: Case) -> Case:
    """Add ``case`` to the registry (a name may be registered once)."""
    if case.name in _CASES:
        raise ValueError(f"benchmark case {case.name!r} is registered twice")
    _CASES[case.name] = case
    return case


def register_report(report: Report) -> Report:
    """Add ``report`` to the registry (its name may not be a case's or another report's)."""
    if report.name in _REPORTS or report.name in _CASES:
        raise ValueError(f"benchmark report {report.name!r} is registered twice")
    _REPORTS[report.name] = report
    return report


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def all_cases() -> list[Case]:
    """Every registered case, after importing every module of this package."""
    _import_all()
    return list(_CASES.values())


def all_reports() -> list[Report]:
    """Every registered report, after importing every module of this package."""
    _import_all()
    return list(_REPORTS.values())


def _check_known(only: Sequence[str]) -> None:
    entries: list[Case | Report] = [*all_cases(), *all_reports()]
    known = {e.name for e in entries} | {e.family for e in entries}
    unknown = set(only) - known
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")


def select_cases(only: Sequence[str] | None) -> list[Case]:
    """The cases whose name or family is in ``only`` (all of them when ``only`` is empty)."""
    cases = all_cases()
    if not only:
        return cases
    _check_known(only)
    return [c for c in cases if c.name in only or c.family in only]


def select_reports(only: Sequence[str] | None) -> list[Report]:
    """The reports whose name or family is in ``only`` (all of them when ``only`` is empty)."""
    reports = all_reports()
    if not only:
        return reports
    _check_known(only)
    return [r for r in reports if r.name in only or r.family in only]

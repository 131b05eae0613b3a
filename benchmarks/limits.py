"""The limits: what the passes a method needs cost at best, on this model, input and machine.

Three kinds of pass, each timed at several rows per forward ``r``:

- ``forward``: one forward under ``no_grad``;
- ``input``: one forward plus a backward to the input (the input requires grad, the
  parameters do not: ``torch.autograd.grad(score.sum(), x)``);
- ``layer``: one forward plus a backward to one layer's output only (a forward hook hands
  on ``out.detach().requires_grad_()``, so the backward stops there).

``cost_K(r)`` is the median time of a pass of kind ``K`` on ``r`` rows, divided by ``r``. A
method that needs ``R`` rows of kind ``K`` in total can at best run them in forwards of at
most ``R`` rows (a batch of 2 images cannot use 16 rows per forward), so the cheapest way to
run them is in passes of ``r* = argmin_{r <= R} cost_K(r)`` rows.

The limit is that schedule (every need's rows in bare passes of its ``r*`` rows), timed in
the same interleaved rounds as the method: ``schedule_fns``. The curves only choose ``r*``
(and a runner-up within 5% of it, whose schedule is timed too: the smaller median counts).
Their own estimate, ``R * cost_K(r*)`` summed over the needs (``curve_limit_ms``), is kept for
comparison; it is a minimum over noisy medians (biased low: the cheapest point is partly the
luckiest one), and it was timed minutes before the method, while the machine's speed drifts
(either way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from benchmarks.memory import peak_memory_mib
from benchmarks.models import ModelSpec, make_inputs, make_targets
from benchmarks.timing import Progress, interleaved, median_ms

__all__ = [
    "KINDS",
    "Curves",
    "Need",
    "PassKind",
    "bare_memory_mib",
    "curve_limit_ms",
    "frozen",
    "kind_label",
    "measure_curves",
    "pass_fn",
    "schedule_fns",
]

PassKind = Literal["forward", "input", "layer"]
KINDS: tuple[PassKind, ...] = ("forward", "input", "layer")
# Large-r points run long and vary little, so they need fewer repeats than the 1-row point.
MIN_POINT_REPEATS = 5
# Curve points whose per-row costs differ by less than this are a tie: the limit times both.
TIE = 0.05


@dataclass(frozen=True)
class Need:
    """Passes a method needs: ``rows_per_image`` rows of kind ``kind`` for every image, plus
    ``rows_per_call`` rows whatever the batch (e.g. one forward per reference of a set)."""

    kind: PassKind
    rows_per_image: int = 1
    rows_per_call: int = 0

    def rows(self, images: int) -> int:
        return self.rows_per_image * images + self.rows_per_call


@dataclass
class Curves:
    """Per-row cost curves of one model at one input size: kind -> rows per forward -> ms."""

    ms_per_row: dict[str, dict[int, float]] = field(default_factory=dict)
    samples_s: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def best(self, kind: str, total_rows: int) -> tuple[int, float] | None:
        """``(r, cost)`` minimising the per-row cost over measured ``r <= total_rows``."""
        points = self._points(kind, total_rows)
        return points[0] if points else None

    def runner_up(self, kind: str, total_rows: int, tie: float) -> tuple[int, float] | None:
        """The second cheapest ``(r, cost)``, when within ``tie`` (a fraction) of the best.

        On a flat curve the cheapest point is partly chance; the limit then times both.
        """
        points = self._points(kind, total_rows)
        if len(points) < 2 or points[1][1] > points[0][1] * (1.0 + tie):
            return None
        return points[1]

    def _points(self, kind: str, total_rows: int) -> list[tuple[int, float]]:
        points = [(r, c) for r, c in self.ms_per_row.get(kind, {}).items() if r <= total_rows]
        return sorted(points, key=lambda p: p[1])


def kind_label(kind: str, layer_name: str | None) -> str:
    """How a kind of pass is named in the table."""
    if kind == "layer":
        return f"fwd+bwd to {layer_name}"
    return {"forward": "forward", "input": "fwd+bwd to input"}[kind]


def curve_limit_ms(needs: Sequence[Need], curves: Curves, images: int) -> float | None:
    """The curves' estimate (ms) of the least time the passes in ``needs`` can take for
    ``images`` images: ``sum R * min_{r <= R} cost(r)``.

    ``None`` when a needed kind (or any ``r`` small enough) was not measured.
    """
    total = 0.0
    for need in needs:
        rows = need.rows(images)
        best = curves.best(need.kind, rows)
        if best is None:
            return None
        total += rows * best[1]
    return total


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Parameters do not require grad inside (no weight gradients are computed); restored after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _score(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return output.gather(1, target[:, None]).sum()


def pass_fn(
    spec: ModelSpec, kind: PassKind, x: torch.Tensor, target: torch.Tensor
) -> Callable[[], Any]:
    """One bare pass of ``kind`` on the rows of ``x`` (call it inside ``frozen(model)``)."""
    model = spec.model
    if kind == "forward":

        def forward() -> torch.Tensor:
            with torch.no_grad():
                return model(x)

        return forward

    if kind == "input":

        def input_backward() -> torch.Tensor:
            with torch.enable_grad():
                tracked = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(_score(model(tracked), target), tracked)
            return grad

        return input_backward

    layer = spec.layer
    if layer is None:
        raise ValueError(f"no layer known for {spec.name}")

    def layer_backward() -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
            # A leaf from here on: the backward stops at the layer. (Handed on as is, not
            # cloned: nothing after the known layers modifies their output in place.)
            start = out.detach().requires_grad_(True)
            captured.append(start)
            return start

        handle = layer.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                score = _score(model(x), target)
                (grad,) = torch.autograd.grad(score, captured[0])
        finally:
            handle.remove()
        return grad

    return layer_backward


def _point_repeats(rows: int, repeats: int) -> int:
    # About the same number of timed rows per point: ceil(repeats / r), but at least the
    # minimum (or all of them, when fewer repeats than that were asked for).
    return max(min(MIN_POINT_REPEATS, repeats), math.ceil(repeats / rows))


def measure_curves(
    spec: ModelSpec,
    rows: Sequence[int],
    size: int,
    repeats: int,
    device: torch.device,
    progress: Progress | None = None,
) -> Curves:
    """Time every (kind, rows per forward) point, interleaved round by round; medians per row.

    All points of all kinds share the rounds, so the curves are comparable with each other
    even while the machine's speed drifts.
    """
    kinds = [k for k in KINDS if k != "layer" or spec.layer_name is not None]
    fns: dict[str, Callable[[], Any]] = {}
    counts: dict[str, int] = {}
    for kind in kinds:
        for r in rows:
            key = f"{kind}@{r}"
            fns[key] = pass_fn(spec, kind, make_inputs(r, size, device), make_targets(r, device))
            counts[key] = _point_repeats(r, repeats)
    with frozen(spec.model):
        samples = interleaved(fns, counts, device, progress=progress)
    curves = Curves()
    for kind in kinds:
        curves.ms_per_row[kind] = {r: median_ms(samples[f"{kind}@{r}"], r) for r in rows}
        curves.samples_s[kind] = {r: samples[f"{kind}@{r}"] for r in rows}
    return curves


def schedule_fns(
    spec: ModelSpec,
    needs: Sequence[Need],
    curves: Curves,
    images: int,
    size: int,
    device: torch.device,
) -> dict[str, Callable[[], None]] | None:
    """The limit's candidate schedules, runnable, keyed by a label of each need's rows per pass.

    A schedule runs each need's rows as bare passes of ``r`` rows: one at every need's
    cheapest ``r`` on the curves and, where a need's second cheapest ``r`` is within
    ``TIE`` of it, one at that ``r`` too. Timed in the same interleaved rounds as the
    contenders, the smaller median is the limit: the machine's speed is the same for both,
    and a point that looked cheapest by chance does not make the limit lenient.
    ``None`` when a needed kind was not measured.
    """
    bests = [curves.best(need.kind, need.rows(images)) for need in needs]
    if any(best is None for best in bests):
        return None
    choices = [[best[0] for best in bests if best is not None]]
    seconds = [curves.runner_up(need.kind, need.rows(images), TIE) for need in needs]
    if any(second is not None for second in seconds):
        choices.append(
            [
                second[0] if second is not None else first
                for second, first in zip(seconds, choices[0], strict=True)
            ]
        )
    return {
        _schedule_label(needs, rows): _schedule(spec, needs, rows, images, size, device)
        for rows in choices
    }


def _schedule_label(needs: Sequence[Need], rows: Sequence[int]) -> str:
    return "limit " + " ".join(f"{need.kind}@r={r}" for need, r in zip(needs, rows, strict=True))


def _schedule(
    spec: ModelSpec,
    needs: Sequence[Need],
    rows_per_forward: Sequence[int],
    images: int,
    size: int,
    device: torch.device,
) -> Callable[[], None]:
    passes: list[Callable[[], Any]] = []
    for need, per_forward in zip(needs, rows_per_forward, strict=True):
        rows = need.rows(images)
        for start in range(0, rows, per_forward):
            r = min(per_forward, rows - start)
            passes.append(
                pass_fn(spec, need.kind, make_inputs(r, size, device), make_targets(r, device))
            )

    def run() -> None:
        with frozen(spec.model):
            for fn in passes:
                fn()

    return run


def bare_memory_mib(
    spec: ModelSpec, needs: Sequence[Need], images: int, size: int, device: torch.device
) -> float | None:
    """Peak memory of one bare pass of each needed kind on all ``images`` at once (the max).

    The reference for a method's memory: what the pass it cannot avoid costs on the same
    batch, with nothing kept but the result. (Not the limit schedule's memory: its best ``r``
    is picked by noisy timings, so that figure would jump between runs.)
    """
    peaks = []
    x, target = make_inputs(images, size, device), make_targets(images, device)
    with frozen(spec.model):
        for kind in dict.fromkeys(need.kind for need in needs):
            if kind == "layer" and spec.layer_name is None:
                return None
            peaks.append(peak_memory_mib(pass_fn(spec, kind, x, target), device))
    return max(peaks, default=None)

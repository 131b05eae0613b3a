"""The limits: what the passes a method needs cost at best, on this model, input and machine.

Three kinds of pass, each timed at several rows per forward ``r``:

- ``forward``: one forward under ``no_grad``;
- ``input``: one forward plus a backward to the input (the input requires grad, the
  parameters do not: ``torch.autograd.grad(score.sum(), x)``);
- ``layer``: one forward plus a backward to one layer's output only (a forward hook hands
  on ``out.detach().requires_grad_()``, so the backward stops there).

``cost_K(r)`` is the median time of a pass of kind ``K`` on ``r`` rows, divided by ``r``. A
method that needs ``R`` rows of kind ``K`` in total can at best run them in forwards of at
most ``R`` rows (a batch of 2 images cannot use 16 rows per forward), so its limit is
``R * min_{r <= R} cost_K(r)``; a method needing several kinds adds their limits.
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
    "frozen",
    "kind_label",
    "limit_ms",
    "measure_curves",
    "pass_fn",
    "schedule_fn",
]

PassKind = Literal["forward", "input", "layer"]
KINDS: tuple[PassKind, ...] = ("forward", "input", "layer")
# Large-r points run long and vary little, so they need fewer repeats than the 1-row point.
MIN_POINT_REPEATS = 5


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
        points = [(r, c) for r, c in self.ms_per_row.get(kind, {}).items() if r <= total_rows]
        return min(points, key=lambda p: p[1]) if points else None


def kind_label(kind: str, layer_name: str | None) -> str:
    """How a kind of pass is named in the table."""
    if kind == "layer":
        return f"fwd+bwd to {layer_name}"
    return {"forward": "forward", "input": "fwd+bwd to input"}[kind]


def limit_ms(needs: Sequence[Need], curves: Curves, images: int) -> float | None:
    """The least time (ms) the passes in ``needs`` can take for ``images`` images.

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


def schedule_fn(
    spec: ModelSpec,
    needs: Sequence[Need],
    curves: Curves,
    images: int,
    size: int,
    device: torch.device,
) -> Callable[[], None] | None:
    """The limit's own schedule, runnable: bare passes at each need's best ``r`` over its rows.

    Timed in the same interleaved rounds as the contenders, it shows whether the machine was
    as fast then as while the curves were measured (its median should be near the limit).
    ``None`` when a needed kind was not measured.
    """
    passes: list[Callable[[], Any]] = []
    for need in needs:
        rows = need.rows(images)
        best = curves.best(need.kind, rows)
        if best is None:
            return None
        for start in range(0, rows, best[0]):
            r = min(best[0], rows - start)
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

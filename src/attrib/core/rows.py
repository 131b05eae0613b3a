"""Which of the user's samples each row of a model call comes from.

Methods evaluate the model on rows derived from the batch: points of integration paths,
noisy copies, masked copies, the ``[x; x']`` pairs of DeepLIFT. Data that belongs to each
sample but is not explained (extra forward inputs bound with ``bind``, the input of a model
explained at one of its layers) has to follow its sample into every such row. Whoever calls
the model (or another method) on rows that are not the current batch's rows says where they
come from, ``with rows_from(index):``; the engine does so for every chunk. Inside, the
mapping composes: the rows of an inner method's chunk map to its batch's rows, which map to
the user's samples, so wrappers of wrappers need nothing more.

``row_origin()`` is ``None`` at the top (the rows are the user's samples) and else the index
of the user's sample of each row of the current batch. The levels are kept apart, so an object
made at some depth (a model explained at a layer holds the batch of that moment) can map the
rows back to that batch: ``origin_since(depth)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

from attrib.core.errors import InputError
from attrib.core.inputs import Inputs, Model, batch_size_of, call_model, map_inputs

__all__ = [
    "Bound",
    "bind",
    "depth",
    "needs_row_origin",
    "origin_since",
    "row_origin",
    "rows_from",
    "sample_rows",
]

# one index tensor per level: rows of level k+1 come from rows index_k of level k
_LEVELS: ContextVar[tuple[torch.Tensor, ...]] = ContextVar("attrib_row_levels", default=())


def depth() -> int:
    """How many row sets are nested now (0: the user's batch)."""
    return len(_LEVELS.get())


def origin_since(level: int) -> torch.Tensor | None:
    """For each row now evaluated, its row in the batch that was current at depth
    ``level`` (``None`` when no rows were built since)."""
    levels = _LEVELS.get()[level:]
    if not levels:
        return None
    index = levels[-1]
    for outer in reversed(levels[:-1]):
        index = outer[index]
    return index


def row_origin() -> torch.Tensor | None:
    """The user's sample of each row of the current batch (``None``: they are the samples)."""
    return origin_since(0)


@contextmanager
def rows_from(index: torch.Tensor) -> Iterator[None]:
    """Rows evaluated inside come from rows ``index`` of the current batch."""
    token = _LEVELS.set((*_LEVELS.get(), index.detach().long().cpu()))
    try:
        yield
    finally:
        _LEVELS.reset(token)


def sample_rows(n_rows: int, level: int = 0) -> torch.Tensor:
    """The row of the batch current at depth ``level`` (default: the user's sample) of each
    of the ``n_rows`` rows now being evaluated."""
    origin = origin_since(level)
    if origin is None:
        return torch.arange(n_rows)
    if len(origin) != n_rows:
        raise InputError(
            "rows",
            f"{len(origin)} rows, one per row the method built",
            f"{n_rows} rows",
            "A per-sample input reached a model call whose rows were not declared "
            "(attrib.core.rows.rows_from); please report it.",
        )
    return origin


def needs_row_origin(model: Any) -> bool:
    """Whether ``model``'s output depends on which sample a row comes from (then a method
    must not score one shared row for several samples)."""
    return bool(getattr(model, "per_sample_rows", False))


class Bound:
    """``model`` with extra inputs per sample that are passed to it but not explained.

    ``Bound(model, meta=meta)(x)`` is ``model(x, meta=meta)``; when a method evaluates rows
    built from the batch (path points, noisy copies, masked copies, baselines), each row gets
    the ``meta`` row of the sample it comes from. Every value must be a tensor with one row
    per sample (values shared by all samples go in ``functools.partial`` instead).
    """

    per_sample_rows = True

    def __init__(self, model: Model, **per_sample: torch.Tensor) -> None:
        if not callable(model):
            raise InputError("model", "an nn.Module or a callable", model)
        for name, value in per_sample.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                raise InputError(
                    name,
                    "a tensor with one row per sample",
                    value,
                    "Bind values shared by every sample with functools.partial.",
                )
        self.model = model
        self.per_sample = per_sample

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs: Inputs = kwargs if kwargs and not args else args[0]
        rows = sample_rows(batch_size_of(inputs))
        needed = int(rows.max()) + 1 if len(rows) else 0
        extra = {}
        for name, value in self.per_sample.items():
            if needed > len(value):
                raise InputError(
                    name,
                    f"one row per sample of the batch (at least {needed})",
                    value,
                    "Bind the tensor that goes with the batch you explain.",
                )
            extra[name] = value[rows.to(value.device)]
        if isinstance(inputs, dict):
            return self.model(**inputs, **extra)
        return self.model(inputs, *args[1:], **kwargs, **extra)

    @property
    def module(self) -> Any:
        """What runs: its layers are the model's (``module_of`` finds the ``nn.Module``)."""
        return self.model

    def __repr__(self) -> str:
        return f"bind({self.model!r}, {', '.join(self.per_sample)})"


def bind(model: Model, **per_sample: torch.Tensor) -> Bound:
    """``model`` with per-sample extra inputs that follow their samples into every row a
    method builds: ``IntegratedGradients(bind(model, meta=meta))(x, target=0)`` calls
    ``model(rows, meta=meta[sample of each row])``."""
    return Bound(model, **per_sample)


def call_rows(model: Model, inputs: Inputs, index: torch.Tensor) -> Any:
    """``model(inputs)``, where row ``r`` of ``inputs`` comes from row ``index[r]`` of the
    current batch."""
    with rows_from(index):
        return call_model(model, inputs)


def take_rows(inputs: Inputs, index: torch.Tensor) -> Inputs:
    """Rows ``index`` of every input."""
    return map_inputs(lambda t: t[index.to(t.device)], inputs)

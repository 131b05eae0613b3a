"""``Attribution``: what every method returns, whatever its settings.

No flag changes the return type: the completeness gap of path methods always lives in
``delta`` (``None`` where a method has none), and the resolved target is always recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from attrib.core.errors import FileFormatError, SettingError

__all__ = ["SALIENCY_REDUCTIONS", "Attribution", "SaliencyReduction"]

SaliencyReduction = Literal["max_abs", "sum", "abs_sum", "l2"]
SALIENCY_REDUCTIONS: tuple[str, ...] = get_args(SaliencyReduction)
"""The ways ``Attribution.saliency`` collapses channels; only ``"sum"`` keeps the sign."""


@dataclass(frozen=True)
class Attribution:
    """The attributions of one batch.

    Attributes:
        values: relevance per input feature, with the shape of the input (input methods),
            ``(N, H, W)`` maps (CAM methods), or a dict of those for dict inputs.
        target: the resolved target: class index per sample (``(N,)`` long tensor), the
            callable that was given, or ``None`` when the model outputs one score per sample.
        method: the method's name, e.g. ``"IntegratedGradients"``.
        params: the settings the method ran with.
        baseline: the reference input where the method has one.
        delta: the completeness gap per sample, ``sum(values) - (f(x) - f(baseline))``,
            where the method has one.
        output: the model's output at the inputs (detached).
        channel_dim: the dimension that ``saliency()`` reduces (``None`` for maps that have
            no channel dimension, such as CAM maps).
    """

    values: Any
    target: Any = None
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None
    delta: torch.Tensor | None = None
    output: Any = None
    channel_dim: int | None = 1

    def saliency(
        self, reduce: SaliencyReduction | str = "max_abs", key: str | None = None
    ) -> torch.Tensor:
        """One map per sample, reducing the channel dimension.

        ``max_abs`` is ``M_ij = max_c |w_ijc|`` (Simonyan et al. 2014); ``sum`` keeps the
        sign; ``abs_sum`` is ``sum_c |w_ijc|``; ``l2`` is ``sqrt(sum_c w_ijc^2)``.
        For dict inputs, ``key`` says which input's map to draw.
        """
        if reduce not in SALIENCY_REDUCTIONS:
            raise SettingError("reduce", f"one of {SALIENCY_REDUCTIONS}", reduce, "")
        values = self._tensor(key)
        if self.channel_dim is None or values.dim() < 3:
            # no channel dimension to collapse: the reduction acts on each value alone
            return values if reduce == "sum" else values.abs()
        dim = self.channel_dim
        if reduce == "max_abs":
            return values.abs().amax(dim=dim)
        if reduce == "sum":
            return values.sum(dim=dim)
        if reduce == "abs_sum":
            return values.abs().sum(dim=dim)
        return values.pow(2).sum(dim=dim).sqrt()

    def numpy(self, key: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """The values as numpy arrays (a dict of them for dict inputs unless ``key`` is given)."""
        if isinstance(self.values, dict) and key is None:
            return {k: v.detach().cpu().numpy() for k, v in self.values.items()}
        return self._tensor(key).detach().cpu().numpy()

    def save(self, path: str | os.PathLike[str], *, inputs: Any = None) -> Path:
        """Write this attribution to ``path`` (an ``.npz`` archive; no pickle); returns it.

        Every field is kept: tensors (``values``, ``delta``, a tensor ``target``, ``baseline``
        or ``output``, dicts of them, tensors inside ``params``) as arrays of their dtype,
        numbers and strings as JSON. What a file cannot hold (a callable target, a module
        among the settings) is kept as its type and ``repr``, and comes back from ``load``
        as a ``SavedRepr`` that says so. ``inputs`` (the explained tensor or dict of tensors)
        is stored beside it, for ``load_inputs``. See ``attrib.core.saving`` for the layout.
        """
        from attrib.core.saving import write_fields

        stored = {f.name: getattr(self, f.name) for f in fields(self)}
        return write_fields(path, {"attribution": stored, "inputs": inputs})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Attribution:
        """The attribution ``save`` wrote to ``path``, its tensors on the CPU.

        Read with ``numpy.load(allow_pickle=False)``: loading never runs code from the file.
        Raises ``FileFormatError`` (an ``AttribError``) for any other file.
        """
        stored = _read(path)["attribution"]
        values = stored["values"]
        tensors = values.values() if isinstance(values, dict) else [values]
        if not tensors or not all(isinstance(v, torch.Tensor) for v in tensors):
            raise _not_an_attribution(path, "values that are not a tensor or a dict of them")
        if not isinstance(stored["params"], dict):
            raise _not_an_attribution(path, "params that are not a dict")
        if stored["delta"] is not None and not isinstance(stored["delta"], torch.Tensor):
            raise _not_an_attribution(path, "a delta that is not a tensor")
        channel_dim = stored["channel_dim"]
        if channel_dim is not None and (
            isinstance(channel_dim, bool) or not isinstance(channel_dim, int)
        ):
            raise _not_an_attribution(path, "a channel_dim that is not an int")
        if not isinstance(stored["method"], str):
            raise _not_an_attribution(path, "a method name that is not a string")
        return cls(**stored)

    @staticmethod
    def load_inputs(path: str | os.PathLike[str]) -> Any:
        """The inputs saved with the attribution at ``path`` (``save(path, inputs=x)``), or
        ``None`` where none were."""
        return _read(path)["inputs"]

    def _tensor(self, key: str | None) -> torch.Tensor:
        if isinstance(self.values, dict):
            if key is None:
                if len(self.values) == 1:
                    return next(iter(self.values.values()))
                raise SettingError("key", f"one of {list(self.values)}", key, "")
            return self.values[key]
        return self.values

    def __repr__(self) -> str:
        shape = (
            {k: tuple(v.shape) for k, v in self.values.items()}
            if isinstance(self.values, dict)
            else tuple(self.values.shape)
        )
        extra = "" if self.delta is None else f", max|delta|={float(self.delta.abs().max()):.3g}"
        return f"Attribution(method={self.method!r}, values={shape}{extra})"


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields of a file ``Attribution.save`` wrote, checked for every field."""
    from attrib.core.saving import read_fields

    found = read_fields(path)
    stored = found.get("attribution")
    names = {f.name for f in fields(Attribution)}
    if not isinstance(stored, dict) or set(stored) != names or "inputs" not in found:
        given = sorted(stored) if isinstance(stored, dict) else type(stored).__name__
        raise _not_an_attribution(path, f"fields {given}")
    return found


def _not_an_attribution(path: str | os.PathLike[str], what: str) -> FileFormatError:
    names = ", ".join(sorted(f.name for f in fields(Attribution)))
    return FileFormatError(
        "path",
        f"an attribution saved by Attribution.save (fields {names})",
        f"{str(path)!r}, with {what}",
        "The file is damaged or was changed; save the attribution again.",
    )

"""What every source shares: reading a sample without raising, labels, presets, fingerprints."""

from __future__ import annotations

import copy
import hashlib
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attrib.core.errors import SettingError, did_you_mean
from attrib.runs.images import PRESETS, Preset
from attrib.runs.samples import Sample, SourceKind

__all__ = [
    "SourceBase",
    "UnreadableError",
    "as_label",
    "as_preset",
    "file_digest",
    "is_missing",
    "one_line",
    "resolve_labels",
]

_LONGEST_REASON = 300
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class UnreadableError(Exception):
    """A sample that cannot be read; the message is the whole reason, said to the user."""


def one_line(error: BaseException) -> str:
    """``error`` in one line: an ``UnreadableError``'s message, else ``Type: message``."""
    # the same reason in every process: no object addresses ("<_io.BytesIO object at 0x7f..>")
    text = _ADDRESS.sub("", " ".join(str(error).split()))
    if not isinstance(error, UnreadableError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= _LONGEST_REASON else text[: _LONGEST_REASON - 3] + "..."


class SourceBase:
    """The plumbing of a source: ``source[i]`` reads sample ``i`` with ``_read`` and turns any
    exception into a ``Sample`` whose ``error`` says why (only an index out of range raises).

    Subclasses set ``kind`` and ``class_names`` and define ``__len__``, ``_read(i)``,
    ``_id(i)`` and ``_where(i)`` (the id and the source of sample ``i`` without reading it;
    ``_label(i)`` too where the label is known so) and ``describe()``: an error sample keeps
    them.
    """

    kind: SourceKind
    class_names: list[str] | None
    keep_pixels: bool = True
    """Whether image samples carry ``pixels`` (the picture as drawn); a run draws nothing."""

    def __len__(self) -> int:
        raise NotImplementedError

    def without_pixels(self) -> SourceBase:
        """This source reading its samples with no ``pixels`` (a shallow copy: the source
        itself is left as it is). A run reads every image of the data and stores only the
        model inputs: the picture as drawn would be a float copy of each, made for nothing."""
        twin = copy.copy(self)
        twin.keep_pixels = False
        return twin

    def description(
        self, location: Any, preset: Any, columns: Any, fingerprint: str
    ) -> dict[str, Any]:
        """The ``describe()`` dict every source gives (JSON values the manifest records)."""
        return {
            "kind": self.kind,
            "source": type(self).__name__,
            "location": location,
            "count": len(self),
            "preset": preset.name if preset is not None else None,
            "columns": dict(columns) if columns is not None else None,
            "class_names": self.class_names,
            "fingerprint": fingerprint,
        }

    def __getitem__(self, index: int) -> Sample:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"a source is indexed by an int, not {type(index).__name__}")
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"sample {index} of a source of {n}")
        try:
            return self._read(i)
        except Exception as error:  # one bad sample never stops a run
            try:
                name, where, label = self._id(i), self._where(i), self._label(i)
            except Exception:
                name, where, label = f"[{i}]", f"[{i}]", None
            return Sample(index=i, id=name, source=where, label=label, error=one_line(error))

    def _read(self, i: int) -> Sample:
        raise NotImplementedError

    def _id(self, i: int) -> str:
        raise NotImplementedError

    def _where(self, i: int) -> str:
        raise NotImplementedError

    def _label(self, i: int) -> int | None:
        """The label of sample ``i`` where it is known without reading the sample."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, {self.kind})"


def as_preset(chosen: str | Preset) -> Preset:
    """A preset given by name (``"imagenet"``, ``"crop224"``, ``"none"``) or as a ``Preset``."""
    if isinstance(chosen, Preset):
        return chosen
    if not isinstance(chosen, str) or chosen not in PRESETS:
        raise SettingError(
            "preset",
            f"one of {sorted(PRESETS)} or an attrib.runs.images.Preset",
            chosen,
            did_you_mean(str(chosen), PRESETS),
        )
    return PRESETS[chosen]


def as_label(value: Any) -> int | None:
    """A class index from an int, an integral float, a 0-d tensor or array, or a string of
    digits; ``None`` for a missing or negative label (Hugging Face marks none with -1)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        if int(np.prod(value.shape)) != 1:
            raise ValueError(f"a label has one value, not shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise ValueError(f"label {value!r} is not a class index")
        value = int(value)
    if isinstance(value, float):
        if value != value:  # NaN: pandas writes a missing int as a float NaN
            return None
        if not value.is_integer():
            raise ValueError(f"label {value!r} is not a class index")
    index = int(value)
    return index if index >= 0 else None


def resolve_labels(
    values: Sequence[Any], class_names: Sequence[str] | None, column: str
) -> tuple[list[int | None], list[str] | None]:
    """A column of labels as class indices, and the class names.

    Indices (ints, or strings of digits in a CSV file) are kept; otherwise every label is a
    class name, mapped through ``class_names`` when given, else through the sorted distinct
    names. Missing labels (null, empty) stay ``None``.
    """
    names = list(class_names) if class_names is not None else None
    present = [v for v in values if not is_missing(v)]
    try:
        indices = [None if is_missing(v) else as_label(v) for v in values]
    except (TypeError, ValueError):
        indices = []
    if indices or not present:
        if names is not None:
            beyond = [i for i in indices if i is not None and i >= len(names)]
            if beyond:
                raise SettingError(
                    column,
                    f"class indices below {len(names)} (the number of class names)",
                    beyond[0],
                    "",
                )
        return indices, names
    if names is None:
        names = sorted({str(v) for v in present})
    position = {name: k for k, name in enumerate(names)}
    unknown = sorted({str(v) for v in present} - set(position))
    if unknown:
        raise SettingError(
            column,
            f"class names among {names if len(names) <= 10 else f'{len(names)} names'}",
            unknown[0],
            did_you_mean(unknown[0], names) or f"{len(unknown)} unknown name(s).",
        )
    return [None if is_missing(v) else position[str(v)] for v in values], names


def is_missing(value: Any) -> bool:
    """Whether a table's cell holds nothing: null, an empty or blank string, NaN."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and value != value


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:...`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"

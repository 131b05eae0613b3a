"""Texts listed in a table (``TextFile``), for runs with a Hugging Face text classifier."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from attrib.core.errors import SettingError
from attrib.runs.samples import Sample, SourceKind
from attrib.runs.sources._base import (
    SourceBase,
    UnreadableError,
    file_digest,
    is_missing,
    resolve_labels,
)
from attrib.runs.sources.tables import (
    column_of,
    read_table,
    required_column,
    row_ids,
    table_columns,
)

__all__ = ["TextFile"]


class TextFile(SourceBase):
    """Texts in a CSV, Parquet or JSON Lines file, one row per sample; ``input`` is the ``str``.

    - ``text_column`` (``"text"``): the text.
    - ``label_column``: a class index, or a class name mapped through ``class_names`` when
      given, else through the sorted distinct names; by default the column ``"label"`` where
      the file has one. Empty: no label.
    - ``id_column``: the sample's id (unique); by default the column ``"id"`` where the file
      has one, else ``"row i"`` (the row's position, from 0).

    Parquet and JSON Lines are read with pyarrow (``pip install 'attrib[runs]'``). A row
    without a text is a sample with its ``error``.
    """

    kind: SourceKind = "text"

    def __init__(
        self,
        path: str | os.PathLike,
        text_column: str = "text",
        label_column: str | None = None,
        *,
        id_column: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        names = table_columns(path)
        text = required_column(names, text_column, "text_column", path)
        self.columns = {
            "text": text,
            "label": column_of(names, label_column, "label", "label_column", path),
            "id": column_of(names, id_column, "id", "id_column", path),
        }
        table = read_table(path, [c for c in self.columns.values() if c is not None])
        self._texts = table[text]
        if not self._texts:
            raise SettingError("path", "a file with at least one row", str(path), "")
        fallback = [f"row {i}" for i in range(len(self._texts))]
        self._ids = row_ids(table, self.columns["id"], fallback, "id_column")
        label = self.columns["label"]
        if label is None:
            self._labels: list[int | None] = [None] * len(self._texts)
            self.class_names = list(class_names) if class_names is not None else None
        else:
            self._labels, self.class_names = resolve_labels(table[label], class_names, label)

    def __len__(self) -> int:
        return len(self._texts)

    def _id(self, i: int) -> str:
        return self._ids[i]

    def _label(self, i: int) -> int | None:
        return self._labels[i]

    def _where(self, i: int) -> str:
        return f"{self.path}[{i}]"

    def _read(self, i: int) -> Sample:
        text = self._texts[i]
        if is_missing(text) or not isinstance(text, str):
            raise UnreadableError(f"no text in column {self.columns['text']!r}")
        return Sample(
            index=i, id=self._ids[i], source=self._where(i), input=text, label=self._labels[i]
        )

    def describe(self) -> dict[str, Any]:
        """Kind, file, count, columns, classes, and a fingerprint: the SHA-256 of the file."""
        return self.description(self.path, None, self.columns, file_digest(self.path))

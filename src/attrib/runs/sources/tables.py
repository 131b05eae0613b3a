"""Tables of samples: CSV (the standard library), Parquet and JSON Lines (pyarrow).

A table is read whole into plain lists (``{column: [values]}``), once, when a source is
made: the source then holds no open file and pickles to worker processes as it is. CSV
values are strings (an empty cell is ``""``); Parquet and JSON Lines keep their types.
"""

from __future__ import annotations

import csv
import importlib
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from attrib.core.errors import SettingError, did_you_mean
from attrib.runs.sources._base import is_missing

__all__ = [
    "TABLE_SUFFIXES",
    "column_of",
    "read_table",
    "required_column",
    "row_ids",
    "table_columns",
    "table_suffix",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl")
_INSTALL = "Install the dataset-run extra: pip install 'attrib[runs]'."


def table_suffix(path: str | os.PathLike) -> str | None:
    """The table format of a file name (``".csv"``, ``".parquet"``, ``".jsonl"``), or ``None``."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in TABLE_SUFFIXES else None


def table_columns(path: str | os.PathLike) -> list[str]:
    """The column names of a table file (a CSV file's header; a JSON Lines file is read)."""
    file = _checked(path)
    suffix = table_suffix(file)
    if suffix == ".csv":
        with open(file, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        return [name.strip() for name in header]
    if suffix == ".parquet":
        return list(_pyarrow("parquet").read_schema(file).names)
    return list(read_table(file))


def read_table(
    path: str | os.PathLike, columns: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """The columns of a table file (all of them, or those named: they must exist), as lists
    of values."""
    file = _checked(path)
    suffix = table_suffix(file)
    try:
        if suffix == ".csv":
            table = _read_csv(file)
        elif suffix == ".parquet":
            table = _pyarrow("parquet").read_table(file, columns=columns).to_pydict()
        else:
            table = _pyarrow("json").read_json(file).to_pydict()
    except SettingError:
        raise
    except Exception as error:  # csv.Error, pyarrow.ArrowInvalid, UnicodeDecodeError...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise SettingError(
            "path", f"a {suffix} file that can be read", f"{file} ({reason})", ""
        ) from None
    return table if columns is None else {name: table[name] for name in columns}


def _read_csv(file: Path) -> dict[str, list[Any]]:
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        table: dict[str, list[Any]] = {name: [] for name in header}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines (a trailing newline, a spreadsheet's empty rows)
            for k, name in enumerate(header):
                table[name].append(row[k] if k < len(row) else "")
    return table


def _checked(path: str | os.PathLike) -> Path:
    file = Path(path)
    if table_suffix(file) is None:
        raise SettingError("path", f"a table file ({', '.join(TABLE_SUFFIXES)})", str(path), "")
    if not file.is_file():
        raise SettingError("path", "a table file", str(path), "No such file.")
    return file


def _pyarrow(module: str) -> Any:
    """``pyarrow.parquet`` or ``pyarrow.json``, or an error that says what to install."""
    try:
        return importlib.import_module(f"pyarrow.{module}")
    except ImportError:
        raise SettingError(
            "pyarrow",
            "pyarrow installed, to read Parquet and JSON Lines files",
            "not installed",
            _INSTALL,
        ) from None


def column_of(
    names: Collection[str], given: str | None, default: str, argument: str, file: Any
) -> str | None:
    """The column a setting names (it must be among ``names``), or, when not given, the
    column called ``default`` where there is one."""
    if given is None:
        return default if default in names else None
    return required_column(names, given, argument, file)


def required_column(names: Collection[str], name: str, argument: str, file: Any) -> str:
    """``name``, a column that must be among ``names``."""
    if name not in names:
        raise SettingError(
            argument,
            f"a column of {file}",
            name,
            did_you_mean(name, names) or f"Its columns: {', '.join(names) or 'none'}.",
        )
    return name


def row_ids(
    table: dict[str, list[Any]], column: str | None, fallback: list[str], argument: str
) -> list[str]:
    """Ids of the rows: the ``column``'s values (else ``fallback``), unique and present."""
    ids = fallback if column is None else ["" if is_missing(v) else str(v) for v in table[column]]
    if column is not None and "" in ids:
        raise SettingError(
            argument, f"an id in every row of column {column!r}", f"none at row {ids.index('')}", ""
        )
    seen: set[str] = set()
    for name in ids:
        if name in seen:
            raise SettingError(
                argument,
                "a different id for every row (runs store samples by id)",
                f"{name!r} twice",
                "Give an id column (id_column=...) or remove the repeated row.",
            )
        seen.add(name)
    return ids

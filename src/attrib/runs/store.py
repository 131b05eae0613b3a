"""The run directory: a manifest, and shards that appear whole or not at all.

Layout::

    RUN/manifest.json                   what the run is (attrib.runs.manifest)
    RUN/shards/000012/samples.parquet   the shard's rows of the samples table
    RUN/shards/000012/scores.parquet    its (sample, method, metric) scores
    RUN/shards/000012/maps/NAME.zarr.zip one file of maps per method (attrib.runs.maps)
    RUN/sanity.parquet                  the model-randomization check (end of the run)
    RUN/summary.md, summary.json        the verdict (attrib.runs.summary)

A shard is written into ``RUN/.incoming/`` under a name of its own, flushed to disk, then moved
to ``RUN/shards/NNNNNN`` by one ``os.rename`` of its folder: a crash at any moment leaves
either the whole shard or none of it, and whatever is left in ``.incoming`` is thrown away
when the run is opened again. A shard is done exactly when its folder is in ``shards/``;
two workers that finish the same shard (a retried task) commit it once, the second copy is
dropped. Any Parquet reader can read the tables: ``RUN/shards/*/samples.parquet``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attrib.core.errors import SettingError
from attrib.runs import maps as map_files
from attrib.runs.manifest import Manifest, RunMismatchError
from attrib.runs.schema import samples_schema, sanity_schema, scores_schema, tokens_schema

__all__ = ["RunStore", "ShardResult", "safe_name"]

_SHARD = re.compile(r"^\d{6}$")


@dataclass
class ShardResult:
    """What one shard of samples became: its table rows and each method's maps."""

    shard: int
    samples: list[dict[str, Any]]
    scores: list[dict[str, Any]] = field(default_factory=list)
    maps: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    full: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    tokens: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # samples that failed before compute


def safe_name(name: str) -> str:
    """A file name for a method's name (``SmoothGrad(Saliency)`` -> ``SmoothGrad_Saliency_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class RunStore:
    """A run directory (see the module)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.shards_dir = self.root / "shards"
        self.incoming = self.root / ".incoming"

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls, root: str | os.PathLike[str], manifest: Manifest, *, force_new: bool = False
    ) -> RunStore:
        """The run at ``root`` for ``manifest``: created, or resumed when it holds the same
        run, refused (``RunMismatchError``, naming what differs) when it holds another one,
        unless ``force_new`` (which starts it over)."""
        store = cls(root)
        path = store.root / "manifest.json"
        if path.exists() and not force_new:
            stored = store.manifest()
            differences = stored.differences(manifest)
            if differences:
                shown = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
                raise RunMismatchError(
                    "out",
                    "the run this folder holds, or a new folder",
                    str(store.root),
                    f"It holds another run ({shown}). Resume it with the same settings, "
                    "choose another folder, or start over with --force-new (force_new=True).",
                )
        elif path.exists():
            store.clear()
        store.root.mkdir(parents=True, exist_ok=True)
        if store.root.is_file():
            raise SettingError("out", "a folder", str(store.root))
        store.shards_dir.mkdir(exist_ok=True)
        if not path.exists():
            _write_atomic(path, manifest.to_json().encode())
        store.discard_incoming()
        return store

    def clear(self) -> None:
        """Remove the run's files (``force_new``); other files in the folder stay."""
        for name in ("shards", ".incoming"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for name in (
            "manifest.json",
            "sanity.parquet",
            "notes.json",
            "summary.md",
            "summary.json",
        ):
            (self.root / name).unlink(missing_ok=True)

    def discard_incoming(self) -> None:
        """Throw away shards a crash left half-written."""
        shutil.rmtree(self.incoming, ignore_errors=True)

    def manifest(self) -> Manifest:
        try:
            return Manifest.from_json((self.root / "manifest.json").read_text())
        except (OSError, ValueError, TypeError) as error:
            raise SettingError(
                "run", "a run directory (with its manifest.json)", str(self.root), str(error)
            ) from None

    # -- shards ------------------------------------------------------------------------

    def done_shards(self) -> set[int]:
        if not self.shards_dir.is_dir():
            return set()
        return {int(p.name) for p in self.shards_dir.iterdir() if _SHARD.match(p.name)}

    def shard_dir(self, shard: int) -> Path:
        return self.shards_dir / f"{shard:06d}"

    def commit(self, result: ShardResult, map_format: str | None = None) -> bool:
        """Write a shard whole (see the module); ``False`` when it was already there."""
        final = self.shard_dir(result.shard)
        if final.exists():
            return False
        self.incoming.mkdir(parents=True, exist_ok=True)
        work = self.incoming / f"{result.shard:06d}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        work.mkdir()
        try:
            _write_table(work / "samples.parquet", result.samples, samples_schema())
            _write_table(work / "scores.parquet", result.scores, scores_schema())
            for folder, found in (("maps", result.maps), ("full", result.full)):
                if found:
                    (work / folder).mkdir()
                fmt = map_files.check_format(map_format)
                for method, (ids, array) in found.items():
                    name = safe_name(method) + map_files.SUFFIXES[fmt]
                    map_files.write_maps(work / folder / name, ids, array, fmt=fmt)
            if result.tokens:
                (work / "tokens").mkdir()
            for method, rows in result.tokens.items():
                _write_table(
                    work / "tokens" / f"{safe_name(method)}.parquet", rows, tokens_schema()
                )
            if result.notes:
                (work / "notes.json").write_text(json.dumps(result.notes))
            _sync_tree(work)
            try:
                os.rename(work, final)
            except OSError:
                if final.exists():  # another worker committed the same shard first
                    return False
                raise
            _sync_dir(self.shards_dir)
            return True
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- reading -----------------------------------------------------------------------

    def samples(self) -> Any:
        return self._table("samples.parquet", samples_schema(), "index")

    def scores(self) -> Any:
        return self._table("scores.parquet", scores_schema(), None)

    def sanity(self) -> Any:
        import pyarrow.parquet as pq

        path = self.root / "sanity.parquet"
        return pq.read_table(path) if path.exists() else sanity_schema().empty_table()

    def write_sanity(self, rows: Iterable[dict[str, Any]]) -> None:
        _write_table(self.root / "sanity.parquet", list(rows), sanity_schema(), atomic=True)

    def write_notes(self, notes: Iterable[str]) -> None:
        """Notes of the whole run (a sanity check that could not run)."""
        _write_atomic(self.root / "notes.json", json.dumps(list(notes)).encode())

    def notes(self) -> list[str]:
        """What the run noted (a metric that could not be computed), each note once."""
        seen: dict[str, None] = {}
        run_notes = self.root / "notes.json"
        if run_notes.exists():
            seen.update(dict.fromkeys(json.loads(run_notes.read_text())))
        for shard in sorted(self.done_shards()):
            path = self.shard_dir(shard) / "notes.json"
            if path.exists():
                seen.update(dict.fromkeys(json.loads(path.read_text())))
        return list(seen)

    def tokens(self, method: str) -> Any:
        """The token scores of a text run's ``method``: a table (id, tokens, scores)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = f"{safe_name(method)}.parquet"
        tables = [
            pq.read_table(self.shard_dir(k) / "tokens" / name, schema=tokens_schema())
            for k in sorted(self.done_shards())
            if (self.shard_dir(k) / "tokens" / name).exists()
        ]
        return pa.concat_tables(tables) if tables else tokens_schema().empty_table()

    def methods_with_maps(self) -> list[str]:
        found: set[str] = set()
        for shard in self.done_shards():
            folder = self.shard_dir(shard) / "maps"
            if folder.is_dir():
                for path in folder.iterdir():
                    for suffix in map_files.SUFFIXES.values():
                        if path.name.endswith(suffix):
                            found.add(path.name[: -len(suffix)])
        return sorted(found)

    def map_files(
        self, method: str, full: bool = False, shards: Iterable[int] | None = None
    ) -> list[Path]:
        """The files of ``method``'s maps, one per done shard (of ``shards``, default all),
        in shard order."""
        folder = "full" if full else "maps"
        name = safe_name(method)
        out = []
        done = self.done_shards()
        for shard in sorted(done if shards is None else done.intersection(shards)):
            directory = self.shard_dir(shard) / folder
            if directory.is_dir():
                names = {name + suffix for suffix in map_files.SUFFIXES.values()}
                out.extend(sorted(p for p in directory.iterdir() if p.name in names))
        return out

    def _table(self, name: str, schema: Any, sort: str | None) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [
            pq.read_table(self.shard_dir(k) / name, schema=schema)
            for k in sorted(self.done_shards())
        ]
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        return table.sort_by(sort) if sort is not None and table.num_rows else table


def _write_table(path: Path, rows: list[dict[str, Any]], schema: Any, atomic: bool = False) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    target = path.with_name(path.name + ".tmp") if atomic else path
    pq.write_table(table, target)
    if atomic:
        _fsync(target)
        os.replace(target, path)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk (a rename only orders metadata)."""
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync(Path(directory) / name)
        _sync_dir(Path(directory))

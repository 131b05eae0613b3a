"""Image files: a folder of images (``ImageFolder``) and a table that lists them (``Manifest``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrib.core.errors import SettingError, did_you_mean
from attrib.runs.images import Preset
from attrib.runs.samples import Sample, SourceKind
from attrib.runs.sources._base import (
    SourceBase,
    UnreadableError,
    as_preset,
    file_digest,
    is_missing,
    resolve_labels,
)
from attrib.runs.sources.pictures import fit_mask, read_mask, read_picture
from attrib.runs.sources.tables import (
    column_of,
    read_table,
    required_column,
    row_ids,
    table_columns,
)

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "Manifest"]

IMAGE_EXTENSIONS = (
    ".bmp",
    ".gif",
    ".jpeg",
    ".jpg",
    ".pgm",
    ".png",
    ".ppm",
    ".tif",
    ".tiff",
    ".webp",
)


class ImageFolder(SourceBase):
    """Every image file under ``root``, at any depth, as torchvision's ``ImageFolder`` labels
    them: the class is the first-level sub-folder (``root/cat/x.jpg`` is a ``cat``).

    - Order: sorted by path (folder by folder), whatever order the file system lists them
      in, so every run of the same folder has the same shards.
    - ``id``: the path relative to ``root`` with ``/`` separators (``"cat/x.jpg"``).
    - Classes: the names of the first-level sub-folders, sorted, indexed by position (as
      torchvision); ``class_names=`` gives the model's order instead (every sub-folder that
      holds images must be among them). Images directly in ``root`` have no label; a folder
      without sub-folders has no classes.
    - Images: files with one of ``extensions`` (any case), read with Pillow (grayscale,
      palette and RGBA images become RGB) and made into model inputs by ``preset``. Names
      starting with ``.`` (hidden files and folders) are skipped; links are followed once.

    A file that cannot be read (missing, corrupt, truncated) is a sample with its ``error``.
    """

    kind: SourceKind = "images"

    def __init__(
        self,
        root: str | os.PathLike,
        preset: str | Preset = "imagenet",
        *,
        class_names: Sequence[str] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            raise SettingError("root", "a folder of images", str(root), "No such folder.")
        self.preset = as_preset(preset)
        self.extensions = tuple(e.lower() for e in extensions)
        self._ids = _image_paths(self.root, self.extensions)
        if not self._ids:
            raise SettingError(
                "root",
                f"a folder with image files ({', '.join(self.extensions)})",
                str(root),
                "It holds none.",
            )
        with os.scandir(self.root) as entries:
            folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        self.class_names = list(class_names) if class_names is not None else folders or None
        self._labels = self._labels_of(self._ids)

    def _labels_of(self, ids: list[str]) -> list[int | None]:
        position = {name: k for k, name in enumerate(self.class_names or ())}
        labels: list[int | None] = []
        for name in ids:
            folder = name.split("/")[0] if "/" in name else None
            if folder is not None and folder not in position:
                raise SettingError(
                    "class_names",
                    "a class name for every sub-folder that holds images",
                    self.class_names,
                    f"The folder {folder!r} is not one. {did_you_mean(folder, position)}".strip(),
                )
            labels.append(None if folder is None else position[folder])
        return labels

    def __len__(self) -> int:
        return len(self._ids)

    def _id(self, i: int) -> str:
        return self._ids[i]

    def _label(self, i: int) -> int | None:
        return self._labels[i]

    def _where(self, i: int) -> str:
        return os.path.join(self.root, *self._ids[i].split("/"))

    def _read(self, i: int) -> Sample:
        path = self._where(i)
        tensor, pixels, _ = read_picture(path, self.preset, self.keep_pixels)
        return Sample(
            index=i,
            id=self._ids[i],
            source=path,
            input=tensor,
            label=self._labels[i],
            pixels=pixels,
        )

    def describe(self) -> dict[str, Any]:
        """Kind, folder, count, preset, classes, and a fingerprint of the files: a SHA-256
        over every id with its file's size and modification time."""
        digest = hashlib.sha256()
        for i, name in enumerate(self._ids):
            try:
                stat = os.stat(self._where(i))
                state = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                state = "missing"
            digest.update(f"{name}\0{state}\n".encode())
        return self.description(self.root, self.preset, None, f"sha256:{digest.hexdigest()}")


def _image_paths(root: str, extensions: tuple[str, ...]) -> list[str]:
    """Relative posix paths of the image files under ``root``, sorted by their parts."""
    found: list[tuple[str, ...]] = []
    visited: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link back up the tree, or a second link to one folder
            subfolders[:] = []
            continue
        visited.add(real)
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = os.path.relpath(folder, root)
        parts = () if relative == os.curdir else Path(relative).parts
        found.extend(
            (*parts, name)
            for name in files
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions
        )
    return ["/".join(parts) for parts in sorted(found)]


class Manifest(SourceBase):
    """Images listed in a table: a CSV, Parquet or JSON Lines file, one row per sample.

    Columns (a column named by a setting must exist; one left as ``None`` is used where the
    table has a column of its default name):

    - ``path_column`` (``"path"``): the image file; a relative path is relative to the
      manifest's folder.
    - ``label_column`` (``"label"``): a class index, or a class name, mapped through
      ``class_names`` when given, else through the sorted distinct names. Empty: no label.
    - ``mask_column`` (``"mask"``): an image file of the object (nonzero pixels), for the
      localization metrics. It has its image's size (or its proportions): the preset's
      resize and crop are applied to it too, by nearest neighbour. Empty: no mask.
    - ``id_column`` (``"id"``): the sample's id (unique); without one, the path as written.

    Parquet and JSON Lines are read with pyarrow (``pip install 'attrib[runs]'``). A row
    whose image or mask cannot be read, or whose mask does not fit, is a sample with its
    ``error``.
    """

    kind: SourceKind = "images"

    def __init__(
        self,
        path: str | os.PathLike,
        preset: str | Preset = "imagenet",
        *,
        path_column: str = "path",
        label_column: str | None = None,
        mask_column: str | None = None,
        id_column: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self.preset = as_preset(preset)
        names = table_columns(path)
        column = required_column(names, path_column, "path_column", path)
        self.columns = {
            "path": column,
            "label": column_of(names, label_column, "label", "label_column", path),
            "mask": column_of(names, mask_column, "mask", "mask_column", path),
            "id": column_of(names, id_column, "id", "id_column", path),
        }
        table = read_table(path, [c for c in self.columns.values() if c is not None])
        self._paths = ["" if is_missing(v) else str(v) for v in table[column]]
        if not self._paths:
            raise SettingError("path", "a manifest with at least one row", str(path), "")
        fallback = [p or f"row {i}" for i, p in enumerate(self._paths)]
        self._ids = row_ids(table, self.columns["id"], fallback, "id_column")
        label = self.columns["label"]
        if label is None:
            self._labels: list[int | None] = [None] * len(self._paths)
            self.class_names = list(class_names) if class_names is not None else None
        else:
            self._labels, self.class_names = resolve_labels(table[label], class_names, label)
        mask = self.columns["mask"]
        self._masks = (
            None if mask is None else [None if is_missing(v) else str(v) for v in table[mask]]
        )

    def _file(self, written: str) -> str:
        return os.path.join(os.path.dirname(self.path), written)

    def __len__(self) -> int:
        return len(self._paths)

    def _id(self, i: int) -> str:
        return self._ids[i]

    def _label(self, i: int) -> int | None:
        return self._labels[i]

    def _where(self, i: int) -> str:
        return self._file(self._paths[i]) if self._paths[i] else f"{self.path}[{i}]"

    def _read(self, i: int) -> Sample:
        if not self._paths[i]:
            raise UnreadableError(f"no path in column {self.columns['path']!r}")
        source = self._where(i)
        tensor, pixels, size = read_picture(source, self.preset, self.keep_pixels)
        written = None if self._masks is None else self._masks[i]
        mask = None
        if written is not None:
            drawn = read_mask(self._file(written))
            mask = fit_mask(drawn, size, self.preset, tuple(tensor.shape))
        return Sample(
            index=i,
            id=self._ids[i],
            source=source,
            input=tensor,
            label=self._labels[i],
            mask=mask,
            pixels=pixels,
        )

    def describe(self) -> dict[str, Any]:
        """Kind, manifest file, count, preset, columns, classes, and a fingerprint: the
        SHA-256 of the manifest's bytes."""
        return self.description(self.path, self.preset, self.columns, file_digest(self.path))

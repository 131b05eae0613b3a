"""Sources of dataset runs: what ``attrib run DATA`` reads, one ``Sample`` at a time.

    from attrib.runs.sources import open_source
    source = open_source("photos/", preset="imagenet")    # an ImageFolder
    len(source), source.class_names
    sample = source[0]              # Sample(index, id, source, input, label, mask, pixels, error)

- ``ImageFolder(root)``: every image under a folder, the class from the first-level folder;
- ``Manifest(path)``: a CSV, Parquet or JSON Lines table of image paths, with optional
  labels, masks and ids;
- ``TextFile(path)``: a table of texts, for text classifiers;
- ``TorchDataset(dataset)``: a map-style ``torch.utils.data.Dataset``;
- ``HuggingFace(dataset)``: a Hugging Face ``datasets.Dataset``;
- ``open_source(spec)``: the right one of them for a path or an object.

Every source has a ``kind`` (``"images"`` or ``"text"``), ``class_names``, a length, and
reads sample ``i`` as ``source[i]`` in a fixed order (the order decides a run's shards).
Reading never raises for a bad sample: a missing, corrupt or truncated file, a mask that
does not fit or an item that raises gives a ``Sample`` whose ``error`` says why and whose
``input`` is ``None``. ``describe()`` is what the run's manifest records: kind, location,
count, preset, columns, classes and a fingerprint that changes when the samples change.
Sources hold no open files and pickle, so they go to ``DataLoader`` workers and Ray.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.runs.images import Preset
from attrib.runs.samples import Sample, Source
from attrib.runs.sources.files import IMAGE_EXTENSIONS, ImageFolder, Manifest
from attrib.runs.sources.tables import TABLE_SUFFIXES, table_columns, table_suffix
from attrib.runs.sources.texts import TextFile
from attrib.runs.sources.wrapped import HuggingFace, TorchDataset, hugging_face_dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "HuggingFace",
    "ImageFolder",
    "Manifest",
    "Sample",
    "Source",
    "TextFile",
    "TorchDataset",
    "open_source",
]

ACCEPTED = (
    "a folder of images, a manifest of images or a file of texts (.csv, .parquet, .jsonl), "
    "a torch Dataset, a Hugging Face Dataset, or a Source"
)


def open_source(
    spec: Any,
    *,
    preset: str | Preset = "imagenet",
    text_column: str | None = None,
    path_column: str = "path",
    image_column: str = "image",
    label_column: str | None = None,
    mask_column: str | None = None,
    id_column: str | None = None,
    class_names: Sequence[str] | None = None,
) -> Source:
    """The source that ``spec`` names.

    - a folder: an ``ImageFolder``;
    - a ``.csv``, ``.parquet`` or ``.jsonl`` file: a ``Manifest`` when it has the path
      column (``path_column``), a ``TextFile`` when it has the text column
      (``text_column``, by default ``"text"``; naming it chooses a ``TextFile``);
    - a ``Source`` (returned as it is), a torch ``Dataset`` (a ``TorchDataset`` of
      images) or a Hugging Face ``Dataset`` (a ``HuggingFace`` source, of texts when
      ``text_column`` is given).

    The other settings go to the source that uses them (see each source).
    """
    if isinstance(spec, Source):
        return spec
    is_hugging_face = hugging_face_dataset(spec)
    if is_hugging_face is not None:
        if not is_hugging_face:
            raise SettingError(
                "data",
                "one split of a Hugging Face dataset (a datasets.Dataset)",
                spec,
                "Pick a split, as dataset['test']; a streaming dataset is not read (a run "
                "reads samples by position).",
            )
        return HuggingFace(
            spec,
            image_column,
            label_column or "label",
            preset,
            text_column=text_column,
            mask_column=mask_column,
            id_column=id_column,
            class_names=class_names,
        )
    if isinstance(spec, torch.utils.data.Dataset):
        return TorchDataset(spec, preset, class_names=class_names)
    if not isinstance(spec, (str, os.PathLike)):
        raise SettingError("data", ACCEPTED, spec, "")
    path = Path(spec)
    if path.is_dir():
        return ImageFolder(path, preset, class_names=class_names)
    if not path.exists():
        raise SettingError("data", ACCEPTED, str(spec), "No such file or folder.")
    if table_suffix(path) is None:
        raise SettingError(
            "data",
            ACCEPTED,
            str(spec),
            "To explain one image, use attrib explain."
            if path.suffix.lower() in IMAGE_EXTENSIONS
            else f"{path.suffix or 'A file without a suffix'} is not one of "
            f"{', '.join(TABLE_SUFFIXES)}.",
        )
    columns = table_columns(path)
    text = text_column or "text"
    if text_column is None and path_column in columns:
        return Manifest(
            path,
            preset,
            path_column=path_column,
            label_column=label_column,
            mask_column=mask_column,
            id_column=id_column,
            class_names=class_names,
        )
    if text in columns:
        return TextFile(path, text, label_column, id_column=id_column, class_names=class_names)
    raise SettingError(
        "data",
        f"a manifest with a {path_column!r} column (image files) or a file of texts with a "
        f"{text!r} column",
        f"{spec} (columns: {', '.join(columns) or 'none'})",
        "Name the column that holds them: path_column=... for images, text_column=... for texts.",
    )

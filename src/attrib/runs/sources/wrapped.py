"""Datasets made in Python: a ``torch.utils.data.Dataset`` and a Hugging Face ``Dataset``.

Both read item ``i`` when sample ``i`` is asked for; an item that raises (a broken file
behind it, a bug in a transform) is a sample with its ``error``. The wrapped dataset must
pickle for a run with worker processes or Ray (Hugging Face datasets do).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.runs.images import Preset
from attrib.runs.samples import Sample, SourceKind
from attrib.runs.sources._base import (
    SourceBase,
    UnreadableError,
    as_label,
    as_preset,
    is_missing,
    resolve_labels,
)
from attrib.runs.sources.pictures import fit_mask, mask_value, picture_value
from attrib.runs.sources.tables import required_column, row_ids

__all__ = ["HuggingFace", "TorchDataset", "hugging_face_dataset"]


class TorchDataset(SourceBase):
    """A map-style ``torch.utils.data.Dataset`` (``len(dataset)`` and ``dataset[i]``).

    An item is one of:

    - the input alone;
    - a tuple or list ``(input, label)``, as torchvision's datasets return;
    - a dict with the input under ``input_key`` (``"input"``) and, optionally, the label
      under ``label_key`` (``"label"``), a mask under ``mask_key`` (``"mask"``) and the
      sample's id under ``id_key`` (``"id"``).

    The input of an image dataset (``kind="images"``) is a float tensor ``(C, H, W)``,
    taken as the model input as it is, or a picture made into one by ``preset``: a PIL
    image, a ``uint8`` array ``(H, W[, C])`` or an image file's path. The input of a text
    dataset (``kind="text"``) is a ``str``. A label is an int (or a 0-d tensor; negative:
    none); a mask is an array, tensor or image ``(H, W)``, nonzero on the object, of the
    picture's size (it follows the preset's geometry) or the input's.

    ``id``: ``"dataset[i]"``, or the item's id where it has one (ids must be unique; they
    cannot be checked without reading every item). ``class_names``: given, else the
    dataset's ``classes`` attribute where it has one (torchvision's datasets do).
    """

    def __init__(
        self,
        dataset: Any,
        preset: str | Preset = "imagenet",
        *,
        kind: SourceKind = "images",
        class_names: Sequence[str] | None = None,
        input_key: str = "input",
        label_key: str = "label",
        mask_key: str = "mask",
        id_key: str = "id",
    ) -> None:
        if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__"):
            raise SettingError(
                "dataset",
                "a map-style dataset (with len(dataset) and dataset[i])",
                dataset,
                "A run reads samples by position, so that a resumed run finds its shards.",
            )
        if kind not in ("images", "text"):
            raise SettingError("kind", "'images' or 'text'", kind, "")
        self.dataset = dataset
        self.kind = kind
        self.preset = as_preset(preset)
        self.keys = {"input": input_key, "label": label_key, "mask": mask_key, "id": id_key}
        classes = class_names if class_names is not None else getattr(dataset, "classes", None)
        valid = isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)
        self.class_names = list(classes) if valid and classes is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def _id(self, i: int) -> str:
        return f"dataset[{i}]"

    def _where(self, i: int) -> str:
        return f"dataset[{i}]"

    def _read(self, i: int) -> Sample:
        item = self.dataset[i]
        fields: dict[str, Any] = {"input": item}
        if isinstance(item, Mapping):
            if self.keys["input"] not in item:
                raise UnreadableError(
                    f"the item has no {self.keys['input']!r} key (its keys: "
                    f"{', '.join(map(str, item))}); give input_key="
                )
            fields = {role: item.get(key) for role, key in self.keys.items()}
        elif isinstance(item, (tuple, list)):
            if len(item) not in (1, 2):
                raise UnreadableError(
                    f"a tuple item is (input,) or (input, label), not {len(item)} values: "
                    "return a dict for more"
                )
            fields = {"input": item[0], "label": item[1] if len(item) == 2 else None}
        name = self._id(i) if is_missing(fields.get("id")) else str(fields["id"])
        return _sample(i, name, self._where(i), self.kind, self.preset, fields, self.keep_pixels)

    def describe(self) -> dict[str, Any]:
        """Kind, the dataset's type, count, preset, keys, classes, and a fingerprint of the
        type and length (a dataset cannot be fingerprinted without reading every item)."""
        location = f"{type(self.dataset).__module__}.{type(self.dataset).__qualname__}"
        digest = hashlib.sha256(f"{location}\0{len(self)}".encode()).hexdigest()
        preset = self.preset if self.kind == "images" else None
        return self.description(location, preset, self.keys, f"sha256:{digest}")


class HuggingFace(SourceBase):
    """A Hugging Face ``datasets.Dataset`` (one split: ``load_dataset(...)["test"]``).

    - Images: the ``image_column`` holds PIL images (an ``Image`` feature), image file
      paths or ``uint8`` arrays, made into model inputs by ``preset``. Texts: with
      ``text_column``, the source is a text source and the column holds the ``str`` inputs.
    - Labels: the ``label_column`` (``"label"``; ``None``: no labels; the default is used
      where the dataset has it). A ``ClassLabel`` feature gives ``class_names`` (its names,
      in its order) and -1 means no label; a column of names is mapped through
      ``class_names`` when given, else through the sorted distinct names.
    - ``mask_column``: a mask image (or array) of the object, nonzero on it, of its
      image's size; it follows the preset's geometry.
    - ``id_column``: the samples' ids (unique); else ``"dataset[i]"``.

    A row that cannot be decoded (a broken image) is a sample with its ``error``. For a
    dataset with a transform (``set_transform``) whose rows have other columns, use
    ``TorchDataset`` with ``input_key=``.
    """

    def __init__(
        self,
        dataset: Any,
        image_column: str = "image",
        label_column: str | None = "label",
        preset: str | Preset = "imagenet",
        *,
        text_column: str | None = None,
        mask_column: str | None = None,
        id_column: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if not hugging_face_dataset(dataset):
            raise SettingError(
                "dataset",
                "a Hugging Face datasets.Dataset",
                dataset,
                "Pick a split of a DatasetDict, as dataset['test']; a streaming dataset is "
                "not read (a run reads samples by position).",
            )
        self.dataset = dataset
        self.kind: SourceKind = "text" if text_column is not None else "images"
        self.preset = as_preset(preset)
        columns = list(dataset.column_names)

        def column(name: str | None, argument: str) -> str | None:
            return None if name is None else required_column(columns, name, argument, "dataset")

        if label_column == "label" and label_column not in columns:
            label_column = None  # the default, where the dataset has no labels
        self.columns: dict[str, str | None] = {
            "input": column(text_column, "text_column") or column(image_column, "image_column"),
            "label": column(label_column, "label_column"),
            "mask": column(mask_column, "mask_column"),
            "id": column(id_column, "id_column"),
        }
        self.class_names = list(class_names) if class_names is not None else None
        self._labels: list[int | None] | None = None  # read up front for a column of names
        label = self.columns["label"]
        if label is not None:
            feature = dataset.features[label]
            if class_names is None and hasattr(feature, "names") and hasattr(feature, "str2int"):
                self.class_names = list(feature.names)  # a ClassLabel
            elif getattr(feature, "dtype", None) in ("string", "large_string"):
                self._labels, self.class_names = resolve_labels(
                    list(dataset[label]), class_names, label
                )
        self._ids = (
            None
            if self.columns["id"] is None
            else row_ids({"id": list(dataset[self.columns["id"]])}, "id", [], "id_column")
        )
        self._fingerprint = str(getattr(dataset, "_fingerprint", "") or "")

    def __len__(self) -> int:
        return len(self.dataset)

    def _id(self, i: int) -> str:
        return f"dataset[{i}]" if self._ids is None else self._ids[i]

    def _where(self, i: int) -> str:
        return f"dataset[{i}]"

    def _label(self, i: int) -> int | None:
        return None if self._labels is None else self._labels[i]

    def _read(self, i: int) -> Sample:
        row = self.dataset[i]
        fields = {role: None if key is None else row[key] for role, key in self.columns.items()}
        if self._labels is not None:
            fields["label"] = self._labels[i]
        return _sample(
            i, self._id(i), self._where(i), self.kind, self.preset, fields, self.keep_pixels
        )

    def describe(self) -> dict[str, Any]:
        """Kind, the dataset's name and split, count, preset, columns, classes, and its
        Hugging Face fingerprint (which changes with every operation that made it)."""
        info = self.dataset.info
        name = getattr(info, "dataset_name", None) or getattr(info, "builder_name", None)
        split = self.dataset.split
        location = (name or "datasets.Dataset") + (f"[{split}]" if split else "")
        digest = hashlib.sha256(f"{self._fingerprint}\0{len(self)}".encode()).hexdigest()
        preset = self.preset if self.kind == "images" else None
        return self.description(location, preset, self.columns, f"sha256:{digest}")


def hugging_face_dataset(value: Any) -> bool | None:
    """True for a Hugging Face ``Dataset``, False for its other kinds (a ``DatasetDict``, an
    ``IterableDataset``), None for anything else (``datasets`` is never imported here)."""
    datasets = sys.modules.get("datasets")
    if datasets is None:
        return None
    if isinstance(value, datasets.Dataset):
        return True
    others = tuple(
        getattr(datasets, name)
        for name in ("DatasetDict", "IterableDataset", "IterableDatasetDict")
        if hasattr(datasets, name)
    )
    return False if others and isinstance(value, others) else None


def _sample(
    i: int,
    name: str,
    where: str,
    kind: SourceKind,
    preset: Preset,
    fields: dict[str, Any],
    pixels: bool = True,
) -> Sample:
    """The sample of one item's fields: ``input``, and optionally ``label`` and ``mask``
    (``pixels``: the picture as drawn too, where the preset changes it)."""
    value = fields["input"]
    if kind == "text":
        if not isinstance(value, str):
            raise UnreadableError(f"a text input is a str, not a {type(value).__name__}")
        return Sample(
            index=i, id=name, source=where, input=value, label=as_label(fields.get("label"))
        )
    tensor, drawn, size = picture_value(value, preset, pixels)
    mask = None
    if fields.get("mask") is not None:
        mask = fit_mask(mask_value(fields["mask"]), size, preset, tuple(tensor.shape))
    return Sample(
        index=i,
        id=name,
        source=where,
        input=tensor,
        label=as_label(fields.get("label")),
        mask=mask,
        pixels=drawn,
    )

"""Attributions on disk without pickle: one ``.npz`` file of arrays and a JSON description.

The file is a zip archive (what ``numpy.savez`` writes) with

- one ``.npy`` member per tensor or array (``a0.npy``, ``a1.npy``, ...), written with
  ``allow_pickle=False``;
- ``attrib.json``: the format's name and version, and each field as a small JSON tree whose
  leaves are ``{"kind": "tensor", "array": "a0", "dtype": "torch.float32"}``, a JSON value,
  ``None``, or, for what a file cannot hold (a callable target, a module in the settings),
  ``{"kind": "repr", "type": ..., "repr": ...}``; ``not_saved`` lists where those are.

It is read with ``numpy.load(path, allow_pickle=False)`` only, so loading a file never runs
code from it; anything that is not such a file raises ``FileFormatError``. ``Attribution.save``
and ``Attribution.load`` use it; nothing here knows the fields of ``Attribution``.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.core.errors import FileFormatError

__all__ = ["FORMAT", "METADATA", "VERSION", "SavedRepr", "read_fields", "write_fields"]

FORMAT = "attrib.Attribution"
VERSION = 1
METADATA = "attrib.json"

# torch dtypes numpy has no type for: stored as float32 and cast back on load
_WIDENED = {torch.bfloat16: torch.float32}


@dataclass(frozen=True)
class SavedRepr:
    """A value that a file cannot hold (a callable target, a module given as a setting): its
    type and ``repr``, as saved. ``Attribution.load`` puts this in its place."""

    type: str
    text: str

    def __repr__(self) -> str:
        return f"<not saved: {self.type} {self.text}>"


def write_fields(path: str | os.PathLike[str], fields: Mapping[str, Any]) -> Path:
    """Write ``fields`` (name -> value) to ``path``; returns the path.

    The file is written next to ``path`` under a temporary name and moved into place, so an
    interrupted write never leaves half a file under the name.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    not_saved: list[str] = []
    encoded = {name: _encode(value, arrays, name, not_saved) for name, value in fields.items()}
    metadata = {"format": FORMAT, "version": VERSION, "fields": encoded, "not_saved": not_saved}
    # a name of our own beside the target (not mkstemp, whose files are private to the user)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, array in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
            archive.writestr(METADATA, json.dumps(metadata, indent=1))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_fields(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields written by ``write_fields`` to ``path``, tensors on the CPU.

    Raises ``FileFormatError`` for anything else (another ``.npz``, a damaged file, a file of
    a newer format), ``FileNotFoundError`` when there is no file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _foreign(path, f"a file numpy cannot read without pickle ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _foreign(path, "a single .npy array")
    with archive:
        if METADATA not in archive.files:
            raise _foreign(path, f"an .npz archive without {METADATA} ({_listing(archive.files)})")
        try:
            raw: Any = archive[METADATA]  # a member that is not .npy: numpy gives its bytes
            metadata = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise _foreign(path, f"an {METADATA} that is not JSON ({error})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise _foreign(path, f"an {METADATA} of another format")
        version = metadata.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise FileFormatError(
                "path",
                f"an attrib file of format version <= {VERSION}",
                f"{str(path)!r} of version {version!r}",
                "It was written by a newer attrib; load it with that version.",
            )
        fields = metadata.get("fields")
        if not isinstance(fields, dict):
            raise _damaged(path, "no fields")
        reader = _Reader(path, archive)
        return {name: reader.decode(spec, name) for name, spec in fields.items()}


def _foreign(path: Path, what: str) -> FileFormatError:
    return FileFormatError(
        "path",
        "a file written by Attribution.save (an .npz archive with attrib.json)",
        f"{str(path)!r}, {what}",
        "Save attributions with result.save(path); other .npz files are read with numpy.load.",
    )


def _damaged(path: Path, what: str) -> FileFormatError:
    return FileFormatError(
        "path",
        "a complete file written by Attribution.save",
        f"{str(path)!r}, where {what}",
        "The file is damaged or was changed; save the attribution again.",
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"members: {shown}" if names else "no members"


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str, not_saved: list[str]) -> Any:
    """``value`` as a JSON tree; tensors and arrays go to ``arrays``."""
    if value is None:
        return {"kind": "none"}
    if isinstance(value, (bool, int, float, str)):
        return {"kind": "json", "value": value}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"kind": "json", "value": value.item()}
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        stored = tensor.to(_WIDENED[tensor.dtype]) if tensor.dtype in _WIDENED else tensor
        key = f"a{len(arrays)}"
        arrays[key] = stored.resolve_conj().resolve_neg().numpy()
        return {"kind": "tensor", "array": key, "dtype": str(tensor.dtype)}
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"kind": "ndarray", "array": key}
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        items = {k: _encode(v, arrays, f"{where}[{k!r}]", not_saved) for k, v in value.items()}
        return {"kind": "dict", "items": items}
    if isinstance(value, (list, tuple)):
        listed = [_encode(v, arrays, f"{where}[{i}]", not_saved) for i, v in enumerate(value)]
        return {"kind": "tuple" if isinstance(value, tuple) else "list", "items": listed}
    not_saved.append(where)
    return {"kind": "repr", "type": _type_name(value), "repr": repr(value)}


class _Reader:
    """Decodes the JSON tree of one file, reading its arrays as they are named."""

    def __init__(self, path: Path, archive: Any) -> None:
        self.path = path
        self.archive = archive

    def decode(self, spec: Any, where: str) -> Any:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind == "none":
            return None
        if kind == "json" and "value" in spec:
            return spec["value"]
        if kind == "tensor":
            array = self._array(spec, where)
            dtype = _torch_dtype(spec.get("dtype"))
            if dtype is None:
                raise _damaged(self.path, f"{where} has an unknown dtype {spec.get('dtype')!r}")
            return torch.from_numpy(array).to(dtype)
        if kind == "ndarray":
            return self._array(spec, where)
        if kind == "dict" and isinstance(spec.get("items"), dict):
            return {k: self.decode(v, f"{where}[{k!r}]") for k, v in spec["items"].items()}
        if kind in ("list", "tuple") and isinstance(spec.get("items"), list):
            items = [self.decode(v, f"{where}[{i}]") for i, v in enumerate(spec["items"])]
            return tuple(items) if kind == "tuple" else items
        if kind == "repr" and isinstance(spec.get("repr"), str):
            return SavedRepr(str(spec.get("type", "")), spec["repr"])
        raise _damaged(self.path, f"{where} is {spec!r}, not a value attrib writes")

    def _array(self, spec: dict[str, Any], where: str) -> np.ndarray:
        key = spec.get("array")
        if not isinstance(key, str) or key == METADATA or key not in self.archive.files:
            raise _damaged(self.path, f"the array {key!r} of {where} is missing")
        try:
            array = self.archive[key]
        except ValueError as error:  # an object array, refused without pickle
            raise _damaged(self.path, f"the array of {where} is unreadable ({error})") from None
        if not isinstance(array, np.ndarray):
            raise _damaged(self.path, f"the array of {where} is not an array")
        return array


def _torch_dtype(name: Any) -> torch.dtype | None:
    if not isinstance(name, str) or not name.startswith("torch."):
        return None
    dtype = getattr(torch, name.removeprefix("torch."), None)
    return dtype if isinstance(dtype, torch.dtype) else None

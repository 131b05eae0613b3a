"""Attribution maps on disk: one file per shard and method, float16, in one of three formats.

    write_maps("maps/gradcam/00003.zarr.zip", ids, maps)      # maps: (n, *shape)
    ids, maps = read_maps("maps/gradcam/00003.zarr.zip", ["cat.jpg", "dog.jpg"])

A file holds the maps of one shard (a few hundred samples) for one method, all of one shape
(``(224, 224)``, ``(7, 7)``, ``(3, 224, 224)``, ...), with the sample ids in the order of
the maps. The formats:

- ``"zarr"`` (the default, ``DEFAULT_FORMAT``): a Zarr v3 group in a zip file (one file, like
  the others) with two arrays, ``maps`` ``(n, *shape)`` float16 in chunks of about
  ``GROUP_BYTES``, and ``ids`` (strings); zarr-python, xarray, dask and tensorstore read it.
- ``"parquet"``: an ``id`` string column and a ``map`` column of Arrow's fixed-shape tensor
  extension type (float16), in row groups of about ``GROUP_BYTES`` of maps, so that pyarrow,
  pandas, polars and Ray Data read it as it is (DuckDB 2.0 reads the ids, not the
  byte-stream-split float16 maps; pandas gets each map flattened).
- ``"npz"``: a NumPy ``.npz`` archive with ``ids.npy`` and ``maps.npy`` (the baseline).

Each carries ``{"format": "attrib.maps", "version": 1, "shape": [...]}`` (Zarr: the group's
attributes; Parquet: the schema metadata; npz: an ``attrib.json`` member), which
``map_format`` checks, so a file of anything else is refused with a ``FileFormatError``.
Nothing is pickled: npz arrays are written and read with ``allow_pickle=False`` (the ids are
a unicode array).

Parquet and Zarr files decode only the row groups or chunks that hold the ids asked for.
``compression="tuned"`` (the default) is what the benchmark (``benchmarks/cases/maps.py``)
chose per format: the high bytes of the float16 values (sign, exponent) apart from the
near-random low ones before zstd, which makes smooth maps (CAMs) about 40% smaller than
zstd alone and noisy gradients 5-8% (Zarr: Blosc-zstd level 5 with byte shuffle; Parquet:
zstd level 3 over the byte-stream-split encoding, no dictionary; npz: deflate level 1).
``"library"`` is what the writing library does when asked nothing (Zarr: zstd; Parquet:
snappy with dictionary encoding; npz: stored, as ``numpy.savez``). Readers find the
compression in the file.

A file is written under a temporary name in its folder and moved into place with
``os.replace``: a write that fails leaves no file, neither the temporary one nor a partial
file under the name. (Committing the file to a run, and syncing it, is the store's job.)
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from attrib.core.errors import AttribError, FileFormatError, InputError, SettingError

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_FORMAT",
    "FORMATS",
    "GROUP_BYTES",
    "SUFFIXES",
    "Compression",
    "MapFormat",
    "check_format",
    "map_format",
    "read_maps",
    "write_maps",
]

MapFormat = Literal["parquet", "zarr", "npz"]
Compression = Literal["tuned", "library"]
FORMATS: tuple[MapFormat, ...] = ("zarr", "parquet", "npz")
COMPRESSIONS: tuple[Compression, ...] = ("tuned", "library")
DEFAULT_FORMAT: MapFormat = "zarr"
"""Zarr, tuned. On 224 x 224 and 3 x 224 x 224 maps its files are as small as Parquet's (within
1-6% either way) and written at 0.7-1x its speed, and they read 2.5-3.4x faster whole, 1.3-2.4x
faster for 16 ids and 2x faster for one (``make bench BENCH_ARGS="--only maps"``; the README
gives the figures): a Parquet tensor column stores a repetition and a definition level per
value, which its reader decodes one by one. On 7 x 7 maps a file's fixed costs dominate and
Parquet reads one in 1 ms, Zarr in 2.5."""
SUFFIXES: dict[MapFormat, str] = {"zarr": ".zarr.zip", "parquet": ".parquet", "npz": ".npz"}
"""The usual file name ending of each format (``map_format`` reads the file, not the name)."""
GROUP_BYTES = 1 << 19
"""Maps per Zarr chunk / Parquet row group: as many as make about this many bytes (at least one
map), the unit a selection of ids decodes. Below 512 KiB the files grow (smaller blocks
compress worse: 224 x 224 saliency maps, 0.84 of raw at 256 KiB against 0.80); above, reading
16 ids decodes more (1 MiB: 1.4x the time)."""
BLOSC_LEVEL = 5  # Zarr, tuned: saliency maps 0.81 of raw (level 3: 0.87; blosc's blocks grow)
ZSTD_LEVEL = 3  # Parquet, tuned: zstd's own default level (Arrow's is 1: CAMs 15% larger)

FORMAT = "attrib.maps"
VERSION = 1
METADATA = "attrib.json"  # the npz member, the Parquet metadata key, the Zarr attribute
DTYPE = np.dtype(np.float16)
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_ZARR_JSON = "zarr.json"
_ID, _MAP = "id", "map"  # the Parquet columns
_ZARR_IDS, _ZARR_MAPS = "ids", "maps"  # the Zarr arrays


def check_format(fmt: str | None) -> MapFormat:
    """``fmt`` checked (``None``: ``DEFAULT_FORMAT``, or Parquet where zarr is not installed:
    zarr-python 3 needs Python 3.11)."""
    if fmt is None:
        return DEFAULT_FORMAT if _installed("zarr") else "parquet"
    if fmt not in FORMATS:
        raise SettingError("map_format", f"one of {FORMATS}", fmt, _did_you_mean(fmt, FORMATS))
    return fmt


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def write_maps(
    path: str | os.PathLike[str],
    ids: Sequence[str],
    maps: Any,
    *,
    fmt: MapFormat | None = None,
    compression: Compression = "tuned",
) -> Path:
    """Write ``maps`` (``(n, *shape)``) of the samples ``ids`` to ``path``; returns the path.

    ``maps`` is a numpy array (or a CPU tensor) of float16, or of float32/float64, which is
    rounded to the nearest float16 (a relative error of at most ``2**-11`` for values of
    magnitude ``>= 2**-14``; below, float16 is subnormal and the error is at most ``2**-25``
    absolute). Values beyond float16's range (``|x| > 65504``) are refused, not stored as
    infinities. ``ids`` are distinct strings, one per map; ``n`` may be 0 (the shape is kept).
    ``fmt`` is one of ``FORMATS`` (``None``: ``DEFAULT_FORMAT``).
    """
    fmt = DEFAULT_FORMAT if fmt is None else fmt
    if fmt not in FORMATS:
        raise SettingError("fmt", f"one of {FORMATS}", fmt, _did_you_mean(fmt, FORMATS))
    if compression not in COMPRESSIONS:
        raise SettingError("compression", f"one of {COMPRESSIONS}", compression, "")
    id_list = _check_ids(ids)
    array = _as_float16(maps)
    if array.ndim < 2 or array.shape[0] != len(id_list):
        raise InputError(
            "maps",
            f"an array (n, *shape) with one map of at least one dimension per id ({len(id_list)})",
            f"an array of shape {array.shape}",
            "Stack the maps of the shard along a first dimension, in the order of ids.",
        )
    writer = {"parquet": _write_parquet, "zarr": _write_zarr, "npz": _write_npz}[fmt]
    path = Path(path)
    with _replacing(path) as temporary:
        writer(temporary, id_list, array, compression == "tuned")
    return path


def read_maps(
    path: str | os.PathLike[str], ids: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """The ids and maps (float16, ``(n, *shape)``) in ``path``, whichever format it is.

    ``ids`` selects maps: they come back in the order asked (an id may be asked twice); an id
    that is not in the file raises an ``AttribError``. Parquet and Zarr files decode only the
    row groups / chunks that hold the ids asked.
    """
    if isinstance(ids, str):
        raise AttribError("ids", "a list of ids", ids, f"Pass [{ids!r}] for one map.")
    wanted = None if ids is None else [str(i) for i in ids]
    path = Path(path)
    fmt, metadata = _identify(path)
    reader = {"parquet": _read_parquet, "zarr": _read_zarr, "npz": _read_npz}[fmt]
    return reader(path, metadata, wanted)


def map_format(path: str | os.PathLike[str]) -> MapFormat:
    """The format of the maps file ``path`` (``"parquet"``, ``"zarr"`` or ``"npz"``).

    It reads the file's header and metadata, not its name; a file that ``write_maps`` did not
    write (another Parquet, zip or npz file, anything else) raises ``FileFormatError``,
    a missing one ``FileNotFoundError``.
    """
    return _identify(Path(path))[0]


def _identify(path: Path) -> tuple[MapFormat, dict[str, Any]]:
    """The format of ``path`` and its (checked) metadata."""
    if not path.exists():
        raise FileNotFoundError(f"no file {str(path)!r}")
    if not path.is_file():
        raise _foreign(path, "a directory")
    with path.open("rb") as file:
        magic = file.read(4)
    if magic == _PARQUET_MAGIC:
        return "parquet", _parquet_metadata(path)
    if magic != _ZIP_MAGIC:
        raise _foreign(path, f"a file starting with {magic!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _ZARR_JSON in names:
                return "zarr", _check_metadata(path, _zarr_attributes(path, archive).get(METADATA))
            if METADATA not in names:
                raise _foreign(path, f"a zip archive without {METADATA} ({_listing(names)})")
            metadata = _check_metadata(path, _json(path, archive.read(METADATA)))
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise _foreign(path, f"a damaged zip archive ({error})") from None
    if not {"ids.npy", "maps.npy"} <= names:
        raise _damaged(path, "ids.npy or maps.npy is missing")
    return "npz", metadata


# --- checks and conversions ------------------------------------------------------------------


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise InputError("ids", "a list of str, one per map", ids, "")
    id_list = list(ids)
    if len(set(id_list)) != len(id_list):
        twice = sorted(name for name, count in Counter(id_list).items() if count > 1)
        raise InputError("ids", "distinct ids", f"{twice[:5]} more than once", "")
    return id_list


def _as_float16(maps: Any) -> np.ndarray:
    if hasattr(maps, "detach") and hasattr(maps, "cpu"):  # a torch tensor
        import torch

        tensor = maps.detach().cpu()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: float32 holds it exactly
            tensor = tensor.float()
        maps = tensor.numpy()
    array = np.asarray(maps)
    if array.dtype == DTYPE:
        return np.ascontiguousarray(array)
    if array.dtype.kind != "f":
        raise InputError(
            "maps", "float16 maps (or float32/float64, rounded to float16)", array.dtype, ""
        )
    with np.errstate(over="ignore"):  # overflow is checked below, with a better message
        converted = np.ascontiguousarray(array.astype(DTYPE))
    overflow = np.isinf(converted)
    if overflow.any() and (overflow & np.isfinite(array)).any():
        largest = float(np.abs(array[overflow & np.isfinite(array)]).max())
        raise InputError(
            "maps",
            f"values float16 can hold (|x| <= {FLOAT16_MAX:g}, or infinite already)",
            f"a |value| of {largest:g}",
            "Scale the maps (e.g. divide each by its largest |value|) before storing them.",
        )
    return converted


def _did_you_mean(word: Any, options: Sequence[str]) -> str:
    from attrib.core.errors import did_you_mean

    return did_you_mean(str(word), options)


def _metadata(shape: tuple[int, ...]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "dtype": "float16", "shape": list(shape)}


def _check_metadata(path: Path, metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise _foreign(path, f"no {FORMAT!r} metadata")
    version = metadata.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise FileFormatError(
            "path",
            f"a maps file of format version <= {VERSION}",
            f"{str(path)!r} of version {version!r}",
            "It was written by a newer attrib; read it with that version.",
        )
    shape = metadata.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _damaged(path, f"its metadata gives the shape {shape!r}")
    return metadata


def _json(path: Path, raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise _damaged(path, f"its metadata is not JSON ({error})") from None


def _foreign(path: Path, what: str) -> FileFormatError:
    return FileFormatError(
        "path",
        "a maps file written by attrib.runs.maps.write_maps (Parquet, Zarr zip or npz)",
        f"{str(path)!r}, {what}",
        "Maps files are the ones a run writes under its maps folder.",
    )


def _damaged(path: Path, what: str) -> FileFormatError:
    return FileFormatError(
        "path",
        "a complete maps file",
        f"{str(path)!r}, where {what}",
        "The file is damaged or was changed; explain its shard again.",
    )


def _listing(names: set[str]) -> str:
    shown = sorted(names)
    return "members: " + ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")


def _rows_per_group(shape: tuple[int, ...], n: int) -> int:
    """Maps per row group or chunk: about ``GROUP_BYTES`` of them, at least one."""
    per_map = max(1, math.prod(shape) * DTYPE.itemsize)
    return max(1, min(max(n, 1), GROUP_BYTES // per_map))


def _positions(path: Path, stored: list[str], wanted: list[str]) -> np.ndarray:
    """Where each wanted id is among the stored ones (``AttribError`` for an unknown one)."""
    where = {name: i for i, name in enumerate(stored)}
    missing = [name for name in wanted if name not in where]
    if missing:
        hint = _did_you_mean(missing[0], stored)
        raise AttribError(
            "ids",
            f"ids of samples stored in {path.name} ({len(stored)} maps)",
            f"{len(missing)} unknown id(s): {missing[:5]!r}",
            f"{hint} The samples table says which shard holds each id.".strip(),
        )
    return np.array([where[name] for name in wanted], dtype=np.int64)


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved to ``path`` if the block succeeds, else removed."""
    # a name of our own beside the target (not mkstemp, whose files are private to the user)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SettingError(
            "fmt",
            f"the {module.split('.')[0]!r} package for this maps format",
            "not installed",
            f"pip install 'attrib[runs]', or pass fmt= one of {FORMATS} whose package is.",
        ) from None


# --- Parquet ---------------------------------------------------------------------------------


def _write_parquet(path: Path, ids: list[str], maps: np.ndarray, tuned: bool) -> None:
    pa = _require("pyarrow")
    pq = _require("pyarrow.parquet")
    shape = maps.shape[1:]
    values = pa.array(maps.reshape(-1), type=pa.float16())
    storage = pa.FixedSizeListArray.from_arrays(values, math.prod(shape))
    tensors = pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float16(), shape), storage)
    table = pa.table({_ID: pa.array(ids, type=pa.string()), _MAP: tensors})
    table = table.replace_schema_metadata({METADATA: json.dumps(_metadata(shape))})
    settings: dict[str, Any] = {}
    if tuned:
        # float16 maps hardly repeat a value: a dictionary only costs time. Splitting the
        # values' high bytes (sign, exponent) from their low, near-random mantissa bytes lets
        # zstd code each stream with its own statistics.
        settings = {
            "compression": "zstd",
            "compression_level": ZSTD_LEVEL,
            "use_dictionary": False,
            "use_byte_stream_split": [f"{_MAP}.list.element"],
        }
    pq.write_table(
        table,
        path,
        row_group_size=_rows_per_group(shape, len(ids)),
        # the ids' minimum and maximum per row group let readers skip groups on a filter;
        # the maps' would cost a third of the write and serve no query
        write_statistics=[_ID],
        **settings,
    )


def _parquet_metadata(path: Path) -> dict[str, Any]:
    pq = _require("pyarrow.parquet")
    try:
        schema = pq.read_schema(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a bad footer
        raise _foreign(path, f"a Parquet file pyarrow cannot read ({error})") from None
    raw = (schema.metadata or {}).get(METADATA.encode())
    if raw is None:
        raise _foreign(path, f"a Parquet file without {METADATA} metadata")
    metadata = _check_metadata(path, _json(path, raw))
    if schema.names != [_ID, _MAP]:
        raise _damaged(path, f"its columns are {schema.names}")
    return metadata


def _read_parquet(
    path: Path, metadata: dict[str, Any], wanted: list[str] | None
) -> tuple[list[str], np.ndarray]:
    pq = _require("pyarrow.parquet")
    shape = tuple(metadata["shape"])
    file = pq.ParquetFile(path)
    stored = file.read(columns=[_ID]).column(_ID).to_pylist()
    if wanted is None:
        return stored, _tensor_rows(path, file.read(columns=[_MAP]).column(_MAP), shape)
    positions = _positions(path, stored, wanted)
    # the row groups holding the ids asked; each id's row among the rows of those groups
    sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    group_of = np.searchsorted(starts, positions, side="right") - 1
    groups = np.unique(group_of)
    first_row = np.zeros(len(sizes), dtype=np.int64)  # of each group read, among those rows
    first_row[groups] = np.cumsum([0, *[sizes[g] for g in groups[:-1]]])
    rows = positions - starts[group_of] + first_row[group_of]
    column = file.read_row_groups(groups.tolist(), columns=[_MAP]).column(_MAP)
    return list(wanted), _tensor_rows(path, column, shape)[rows]


def _tensor_rows(path: Path, column: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A chunked fixed-shape tensor column as one writable float16 array ``(n, *shape)``."""
    pa = _require("pyarrow")
    kind = column.type
    if not isinstance(kind, pa.FixedShapeTensorType) or kind.value_type != pa.float16():
        raise _damaged(path, f"the map column is {kind}, not float16 fixed-shape tensors")
    if tuple(kind.shape) != shape:
        raise _damaged(path, f"the maps are {tuple(kind.shape)}, its metadata says {shape}")
    out = np.empty((len(column), *shape), DTYPE)
    done = 0
    for chunk in column.chunks:
        flat = chunk.storage.flatten().to_numpy(zero_copy_only=False)
        out[done : done + len(chunk)] = flat.reshape(len(chunk), *shape)
        done += len(chunk)
    return out


# --- Zarr ------------------------------------------------------------------------------------


def _write_zarr(path: Path, ids: list[str], maps: np.ndarray, tuned: bool) -> None:
    zarr = _require("zarr")
    storage = _require("zarr.storage")
    shape = maps.shape[1:]
    compressors: Any = "auto"  # zarr's own: zstd
    if tuned:
        from zarr.codecs import BloscCodec

        # byte shuffle: a block's high bytes (sign, exponent), then its low bytes; at level 5
        # the blocks are large enough for zstd to code the two halves with their own statistics
        compressors = [BloscCodec(cname="zstd", clevel=BLOSC_LEVEL, shuffle="shuffle", typesize=2)]
    store = storage.ZipStore(path, mode="w")
    try:
        group = zarr.create_group(store, zarr_format=3, attributes={METADATA: _metadata(shape)})
        group.create_array(_ZARR_IDS, shape=(len(ids),), dtype=str, chunks=(max(len(ids), 1),))[
            ...
        ] = np.array(ids, dtype=object)
        array = group.create_array(
            _ZARR_MAPS,
            shape=maps.shape,
            dtype=DTYPE,
            chunks=(_rows_per_group(shape, len(ids)), *shape),
            compressors=compressors,
            fill_value=0.0,
            # a chunk of zeros is written too: -0.0 == 0.0, and the fill value would lose it
            config={"write_empty_chunks": True},
        )
        if len(ids):
            array[...] = maps
    finally:
        store.close()


def _zarr_attributes(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    document = _json(path, archive.read(_ZARR_JSON))
    if not isinstance(document, dict) or document.get("node_type") != "group":
        raise _foreign(path, "a Zarr zip whose root is not a group")
    attributes = document.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _read_zarr(
    path: Path, metadata: dict[str, Any], wanted: list[str] | None
) -> tuple[list[str], np.ndarray]:
    zarr = _require("zarr")
    storage = _require("zarr.storage")
    shape = tuple(metadata["shape"])
    store = storage.ZipStore(path, mode="r")
    try:
        group = zarr.open_group(store, mode="r", zarr_format=3)
        try:
            ids, array = group[_ZARR_IDS], group[_ZARR_MAPS]
        except KeyError as error:
            raise _damaged(path, f"the array {error} is missing") from None
        stored = [str(i) for i in np.asarray(ids[...]).tolist()]
        if tuple(array.shape) != (len(stored), *shape) or array.dtype != DTYPE:
            raise _damaged(path, f"the maps are {array.dtype} {array.shape} for {len(stored)} ids")
        if wanted is None:
            return stored, np.asarray(array[...]) if stored else np.empty((0, *shape), DTYPE)
        positions = _positions(path, stored, wanted)
        if not len(positions):
            return [], np.empty((0, *shape), DTYPE)
        # zarr wants increasing indices: read each map once, then put them in the order asked
        unique, back = np.unique(positions, return_inverse=True)
        rows = np.asarray(array.get_orthogonal_selection((unique,)))
        return list(wanted), rows[back.reshape(-1)]
    finally:
        store.close()


# --- npz -------------------------------------------------------------------------------------


def _write_npz(path: Path, ids: list[str], maps: np.ndarray, tuned: bool) -> None:
    kind = zipfile.ZIP_DEFLATED if tuned else zipfile.ZIP_STORED
    # deflate level 1: higher levels are several times slower for a percent on float16 maps
    with zipfile.ZipFile(path, "w", compression=kind, compresslevel=1 if tuned else None) as zf:
        # the metadata first, so that map_format finds it without reading past the maps
        zf.writestr(METADATA, json.dumps(_metadata(maps.shape[1:])))
        for name, array in (("ids", np.array(ids, dtype=str)), ("maps", maps)):
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _read_npz(
    path: Path, metadata: dict[str, Any], wanted: list[str] | None
) -> tuple[list[str], np.ndarray]:
    shape = tuple(metadata["shape"])
    with zipfile.ZipFile(path) as archive:
        ids = _npy(path, archive, "ids.npy")
        maps = _npy(path, archive, "maps.npy")
    if ids.dtype.kind != "U" or maps.dtype != DTYPE or maps.shape != (len(ids), *shape):
        raise _damaged(path, f"ids are {ids.dtype} {ids.shape}, maps {maps.dtype} {maps.shape}")
    stored = ids.tolist()
    if wanted is None:
        return stored, maps
    return list(wanted), maps[_positions(path, stored, wanted)]


def _npy(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    try:
        with archive.open(name) as member:
            array = np.lib.format.read_array(cast(Any, member), allow_pickle=False)
    except (KeyError, ValueError, OSError, EOFError) as error:
        raise _damaged(path, f"{name} is unreadable ({error})") from None
    return array

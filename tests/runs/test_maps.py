"""attrib.runs.maps: the maps of a shard on disk, in Zarr, Parquet and npz files.

The float16 round trip is checked bit for bit (``view(np.uint16)``: NaN, -0.0, infinities and
subnormals included); float32 and float64 maps are rounded once to the nearest float16, so
each value moves by at most half a float16 spacing: ``2**-11 |x|`` where float16 is normal
(``|x| >= 2**-14``: 11 significant bits, the spacing in ``[2**e, 2**(e+1))`` is ``2**(e-10)``)
and ``2**-25`` below (subnormal spacing ``2**-24``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attrib.core.errors import AttribError, FileFormatError, InputError, SettingError
from attrib.runs import maps as maps_module
from attrib.runs.maps import (
    COMPRESSIONS,
    DEFAULT_FORMAT,
    FORMATS,
    SUFFIXES,
    map_format,
    read_maps,
    write_maps,
)

PACKAGE = {"zarr": "zarr", "parquet": "pyarrow", "npz": None}
SHAPES = [(7, 7), (3, 8, 8), (5,), (2, 3, 4, 5)]


def _needs(fmt: str) -> None:
    if PACKAGE[fmt] is not None:
        pytest.importorskip(PACKAGE[fmt])


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    _needs(request.param)
    return str(request.param)


def _ids(n: int) -> list[str]:
    # paths as a folder source names them, some not ASCII
    return [f"val/{'café' if i % 3 else '日本'}/img_{i:05d}.jpg" for i in range(n)]


def _maps(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Float16 maps over every kind of value: normal ones of all magnitudes and signs,
    subnormals, zeros of both signs, infinities and NaN."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 1 << 16, size=(n, *shape), dtype=np.uint16)
    maps = bits.view(np.float16).copy()
    flat = maps.reshape(-1)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6e-8, -6e-8, 65504], np.float16)
    flat[: min(len(flat), len(specials))] = specials[: len(flat)]
    return maps


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float16 and np.array_equal(a.view(np.uint16), b.view(np.uint16))


def _path(tmp_path: Path, fmt: str, name: str = "shard") -> Path:
    return tmp_path / f"{name}{SUFFIXES[fmt]}"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_float16_round_trip_is_bit_exact(
    tmp_path: Path, fmt: str, compression: str, shape: tuple[int, ...]
) -> None:
    ids, maps = _ids(37), _maps(37, shape)
    path = write_maps(_path(tmp_path, fmt), ids, maps, fmt=fmt, compression=compression)
    assert path == _path(tmp_path, fmt)
    assert map_format(path) == fmt
    got_ids, got = read_maps(path)
    assert got_ids == ids
    assert got.shape == (37, *shape) and _same(got, maps)
    assert got.flags.writeable  # a copy the caller owns, not a view on a library's buffer
    assert _leftovers(tmp_path) == [path.name]


def test_many_row_groups_and_chunks(tmp_path: Path, fmt: str, monkeypatch: Any) -> None:
    # 3 maps per row group / chunk: the reader puts the groups back together in order
    monkeypatch.setattr(maps_module, "GROUP_BYTES", 3 * 16 * 16 * 2)
    ids, maps = _ids(50), _maps(50, (16, 16), seed=1)
    path = write_maps(_path(tmp_path, fmt), ids, maps, fmt=fmt)
    got_ids, got = read_maps(path)
    assert got_ids == ids and _same(got, maps)
    asked = [ids[49], ids[0], ids[4], ids[3], ids[4], ids[25]]
    got_ids, got = read_maps(path, asked)
    assert got_ids == asked and _same(got, maps[[49, 0, 4, 3, 4, 25]])


def test_large_maps(tmp_path: Path, fmt: str) -> None:
    # the default shapes of a run: a few 224 x 224 maps, and full 3 x 224 x 224 attributions
    for shape in ((224, 224), (3, 224, 224)):
        ids, maps = _ids(6), _maps(6, shape, seed=2)
        path = write_maps(_path(tmp_path, fmt), ids, maps, fmt=fmt)
        assert _same(read_maps(path)[1], maps)
        assert _same(read_maps(path, [ids[5], ids[2]])[1], maps[[5, 2]])


def test_all_negative_zero_maps_keep_their_sign(tmp_path: Path, fmt: str) -> None:
    # Zarr skips chunks equal to the fill value unless told not to; -0.0 == 0.0
    maps = np.full((4, 7, 7), -0.0, np.float16)
    path = write_maps(_path(tmp_path, fmt), _ids(4), maps, fmt=fmt)
    assert _same(read_maps(path)[1], maps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wider_floats_are_rounded_to_float16(tmp_path: Path, fmt: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    # magnitudes from 1e-9 (below float16's subnormals) to 6e4 (near its largest), both signs
    magnitude = np.exp(rng.uniform(np.log(1e-9), np.log(6.5e4), size=(20, 9, 9)))
    x = (magnitude * rng.choice([-1.0, 1.0], size=magnitude.shape)).astype(dtype)
    path = write_maps(_path(tmp_path, fmt), _ids(20), x, fmt=fmt)
    got = read_maps(path)[1]
    assert got.dtype == np.float16
    exact = x.astype(np.float64)
    bound = np.maximum(2.0**-11 * np.abs(exact), 2.0**-25)
    assert (np.abs(got.astype(np.float64) - exact) <= bound).all()
    assert _same(got, x.astype(np.float16))  # round to nearest, as numpy does
    assert (got[np.abs(exact) < 2.0**-25] == 0).all()


def test_tensors_are_accepted(tmp_path: Path) -> None:
    fmt = "npz"  # the conversion is shared by every format
    values = torch.randn(3, 5, 5)
    path = write_maps(_path(tmp_path, fmt), _ids(3), values, fmt=fmt)
    assert _same(read_maps(path)[1], values.numpy().astype(np.float16))
    path = write_maps(_path(tmp_path, fmt), _ids(3), values.to(torch.bfloat16), fmt=fmt)
    assert _same(read_maps(path)[1], values.to(torch.bfloat16).float().numpy().astype(np.float16))


def test_infinities_and_nan_of_wider_floats_are_kept(tmp_path: Path) -> None:
    x = np.array([[np.inf, -np.inf, np.nan, 1.0]], np.float32)
    path = write_maps(_path(tmp_path, "npz"), ["a"], x, fmt="npz")
    got = read_maps(path)[1]
    assert np.isposinf(got[0, 0]) and np.isneginf(got[0, 1]) and np.isnan(got[0, 2])


def test_the_default_format(tmp_path: Path) -> None:
    _needs(DEFAULT_FORMAT)
    path = write_maps(tmp_path / "shard", _ids(3), _maps(3, (7, 7)))
    assert map_format(path) == DEFAULT_FORMAT
    path = write_maps(tmp_path / "other", _ids(3), _maps(3, (7, 7)), fmt=None)  # the store's call
    assert map_format(path) == DEFAULT_FORMAT


def test_the_format_is_read_from_the_file_not_its_name(tmp_path: Path, fmt: str) -> None:
    path = write_maps(tmp_path / "maps.bin", _ids(3), _maps(3, (4, 4)), fmt=fmt)
    assert map_format(path) == fmt
    assert read_maps(path)[0] == _ids(3)


def test_a_file_is_replaced_whole(tmp_path: Path, fmt: str) -> None:
    path = _path(tmp_path, fmt)
    write_maps(path, _ids(5), _maps(5, (4, 4)), fmt=fmt)
    write_maps(path, ["x", "y"], _maps(2, (3,), seed=4), fmt=fmt)
    got_ids, got = read_maps(path)
    assert got_ids == ["x", "y"] and _same(got, _maps(2, (3,), seed=4))
    assert _leftovers(tmp_path) == [path.name]


# --- selections ------------------------------------------------------------------------------


def test_selection_in_any_order(tmp_path: Path, fmt: str) -> None:
    ids, maps = _ids(30), _maps(30, (6, 6), seed=5)
    path = write_maps(_path(tmp_path, fmt), ids, maps, fmt=fmt)
    order = [29, 0, 17, 3, 17, 28, 1]  # backwards, forwards, an id twice
    got_ids, got = read_maps(path, [ids[i] for i in order])
    assert got_ids == [ids[i] for i in order]
    assert _same(got, maps[order])
    got_ids, got = read_maps(path, [])
    assert got_ids == [] and got.shape == (0, 6, 6) and got.dtype == np.float16
    got_ids, got = read_maps(path, tuple(ids))  # any sequence of str
    assert got_ids == ids and _same(got, maps)


def test_an_unknown_id_is_a_clear_error(tmp_path: Path, fmt: str) -> None:
    ids = _ids(4)
    path = write_maps(_path(tmp_path, fmt), ids, _maps(4, (3, 3)), fmt=fmt)
    typo = ids[1].replace("img", "imgg")
    with pytest.raises(AttribError, match="unknown id") as error:
        read_maps(path, [ids[0], typo])
    message = str(error.value)
    assert typo in message and path.name in message
    assert f"Did you mean {ids[1]!r}" in message
    with pytest.raises(AttribError, match="a list of ids"):
        read_maps(path, ids[0])  # a str is not a list of ids


def test_an_empty_shard(tmp_path: Path, fmt: str) -> None:
    for shape in ((224, 224), (3, 4, 5)):
        path = write_maps(_path(tmp_path, fmt), [], np.empty((0, *shape), np.float16), fmt=fmt)
        assert map_format(path) == fmt
        got_ids, got = read_maps(path)
        assert got_ids == [] and got.shape == (0, *shape) and got.dtype == np.float16
        assert read_maps(path, [])[1].shape == (0, *shape)
        with pytest.raises(AttribError, match="unknown id"):
            read_maps(path, ["a"])


# --- what other readers see ------------------------------------------------------------------


def test_parquet_is_read_by_pyarrow_alone(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ids, maps = _ids(40), _maps(40, (3, 8, 8), seed=6)
    path = write_maps(tmp_path / "shard.parquet", ids, maps, fmt="parquet")
    table = pq.read_table(path)
    assert table.column_names == ["id", "map"]
    assert table.column("id").to_pylist() == ids
    kind = table.schema.field("map").type
    assert isinstance(kind, pa.FixedShapeTensorType)
    assert kind.value_type == pa.float16() and tuple(kind.shape) == (3, 8, 8)
    tensors = table.column("map").combine_chunks().to_numpy_ndarray()
    assert _same(tensors, maps)
    assert json.loads(table.schema.metadata[b"attrib.json"])["shape"] == [3, 8, 8]


def test_parquet_is_read_by_pandas(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    ids, maps = _ids(12), _maps(12, (7, 7), seed=7)
    path = write_maps(tmp_path / "shard.parquet", ids, maps, fmt="parquet")
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["id", "map"]
    assert frame["id"].tolist() == ids
    # pandas has no tensor type: each cell is the map, flattened
    assert _same(np.stack(frame["map"].tolist()).reshape(maps.shape), maps)


def test_parquet_is_read_by_polars(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    ids, maps = _ids(5), _maps(5, (2, 3), seed=8)
    frame = pl.read_parquet(write_maps(tmp_path / "shard.parquet", ids, maps, fmt="parquet"))
    assert frame["id"].to_list() == ids
    assert _same(np.asarray(frame["map"].to_numpy()).reshape(maps.shape), maps)


def test_zarr_is_read_by_zarr_alone(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    from zarr.storage import ZipStore

    ids, maps = _ids(20), _maps(20, (5, 5), seed=9)
    path = write_maps(tmp_path / "shard.zarr.zip", ids, maps, fmt="zarr")
    store = ZipStore(path, mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        assert [str(i) for i in group["ids"][...]] == ids
        assert _same(np.asarray(group["maps"][...]), maps)
        assert group.attrs["attrib.json"]["shape"] == [5, 5]
    finally:
        store.close()


def test_npz_is_read_by_numpy_without_pickle(tmp_path: Path) -> None:
    ids, maps = _ids(9), _maps(9, (4, 4), seed=10)
    path = write_maps(tmp_path / "shard.npz", ids, maps, fmt="npz")
    with np.load(path, allow_pickle=False) as archive:
        assert archive["ids"].tolist() == ids
        assert _same(archive["maps"], maps)


# --- files that are not maps files -----------------------------------------------------------


def _foreign_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["text"] = tmp_path / "notes.csv"
    files["text"].write_text("id,value\na,1\n")
    files["empty"] = tmp_path / "empty.parquet"
    files["empty"].write_bytes(b"")
    files["plain npz"] = tmp_path / "plain.npz"
    np.savez(files["plain npz"], ids=np.array(["a"]), maps=np.zeros((1, 2, 2), np.float16))
    files["a saved attribution"] = tmp_path / "attribution.npz"
    from attrib.core.result import Attribution

    Attribution(values=torch.zeros(1, 2, 2)).save(files["a saved attribution"])
    files["truncated zip"] = tmp_path / "truncated.npz"
    files["truncated zip"].write_bytes(files["plain npz"].read_bytes()[:40])
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        files["other parquet"] = tmp_path / "samples.parquet"
        pq.write_table(pa.table({"id": ["a"], "value": [1.0]}), files["other parquet"])
        files["truncated parquet"] = tmp_path / "truncated.parquet"
        files["truncated parquet"].write_bytes(b"PAR1" + b"\0" * 20)
    try:
        import zarr
        from zarr.storage import ZipStore
    except ImportError:
        pass
    else:
        files["other zarr"] = tmp_path / "other.zarr.zip"
        store = ZipStore(files["other zarr"], mode="w")
        zarr.create_array(store, shape=(2, 2), dtype="float16")
        store.close()
    return files


def test_another_file_is_a_clear_error(tmp_path: Path) -> None:
    for what, path in _foreign_files(tmp_path).items():
        for call in (map_format, read_maps):
            with pytest.raises(FileFormatError, match="write_maps") as error:
                call(path)
            assert str(path) in str(error.value), what
    with pytest.raises(FileFormatError, match="a directory"):
        read_maps(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_maps(tmp_path / "missing.zarr.zip")


def test_a_file_of_a_newer_version_says_so(tmp_path: Path) -> None:
    path = write_maps(tmp_path / "shard.npz", ["a"], _maps(1, (2,)), fmt="npz")
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(newer, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            if name == "attrib.json":
                data = json.dumps({**json.loads(data), "version": 99}).encode()
            new.writestr(name, data)
    with pytest.raises(FileFormatError, match="newer attrib"):
        read_maps(newer)


# --- writes that fail ------------------------------------------------------------------------


def test_refused_arguments(tmp_path: Path) -> None:
    path = tmp_path / "shard.npz"
    ok = _maps(2, (3, 3))
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (SettingError, "Did you mean 'parquet'", {"fmt": "parqet"}),
        (SettingError, "compression", {"compression": "gzip"}),
        (InputError, "one map", {"ids": ["a"]}),  # 2 maps, 1 id
        (InputError, "distinct ids", {"ids": ["a", "a"]}),
        (InputError, "list of str", {"ids": ["a", 2]}),
        (InputError, "list of str", {"ids": "ab"}),
        (InputError, "float16 maps", {"maps": np.zeros((2, 3), np.int64)}),
        (InputError, "at least one dimension", {"maps": np.zeros(2, np.float16)}),
        (InputError, "float16 can hold", {"maps": np.full((2, 3), 1e5, np.float32)}),
    ]
    for kind, message, changed in cases:
        arguments: dict[str, Any] = {"ids": ["a", "b"], "maps": ok, "fmt": "npz", **changed}
        with pytest.raises(kind, match=message):
            write_maps(
                path,
                arguments.pop("ids"),
                arguments.pop("maps"),
                **arguments,
            )
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_no_file(
    tmp_path: Path, fmt: str, failure: BaseException, monkeypatch: Any
) -> None:
    writer = {"zarr": "_write_zarr", "parquet": "_write_parquet", "npz": "_write_npz"}[fmt]
    real = getattr(maps_module, writer)

    def half_then_fail(path: Path, *args: Any) -> None:
        real(path, *args)  # the whole file under the temporary name, then the failure
        assert path.parent == tmp_path and path.exists()
        raise failure

    monkeypatch.setattr(maps_module, writer, half_then_fail)
    path = _path(tmp_path, fmt)
    with pytest.raises(type(failure)):
        write_maps(path, _ids(3), _maps(3, (4, 4)), fmt=fmt)
    assert _leftovers(tmp_path) == []


def test_a_failed_rewrite_keeps_the_old_file(tmp_path: Path, fmt: str, monkeypatch: Any) -> None:
    path = write_maps(_path(tmp_path, fmt), _ids(3), _maps(3, (4, 4)), fmt=fmt)
    before = path.read_bytes()
    writer = {"zarr": "_write_zarr", "parquet": "_write_parquet", "npz": "_write_npz"}[fmt]

    def partial(temporary: Path, *args: Any) -> None:
        temporary.write_bytes(before[: len(before) // 2])  # a partial file, then the crash
        raise OSError("interrupted")

    monkeypatch.setattr(maps_module, writer, partial)
    with pytest.raises(OSError, match="interrupted"):
        write_maps(path, ["x"], _maps(1, (2, 2)), fmt=fmt)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == [path.name]


def test_a_library_failing_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: Any) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    real = pq.write_table

    def write_then_fail(table: Any, where: Any, **settings: Any) -> None:
        real(table.slice(0, 1), where, **settings)
        raise OSError("no space left on device")

    monkeypatch.setattr(pq, "write_table", write_then_fail)
    with pytest.raises(OSError, match="no space"):
        write_maps(tmp_path / "shard.parquet", _ids(3), _maps(3, (4, 4)), fmt="parquet")
    assert _leftovers(tmp_path) == []

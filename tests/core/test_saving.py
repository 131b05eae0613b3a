"""``Attribution.save`` / ``Attribution.load``: every field comes back, in its dtype; what a
file cannot hold comes back as a ``SavedRepr`` that says so; nothing is unpickled; any other
file is a ``FileFormatError``."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from attrib import Attribution, IntegratedGradients
from attrib.core.errors import AttribError, FileFormatError
from attrib.core.saving import METADATA, SavedRepr
from tests.models import GapCNN, TwoInputNet


def assert_same(got, want):
    """Tensors equal in dtype, shape and every value (a file holds the bits it was given);
    containers alike, item by item."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), type(got)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert torch.equal(got, want.detach().cpu())
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_same(a, b)
    else:
        assert type(got) is type(want) and got == want, (got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_field_of_a_tensor_attribution_round_trips(tmp_path, dtype):
    g = torch.Generator().manual_seed(0)
    result = Attribution(
        values=torch.randn(2, 3, 4, 5, generator=g, dtype=dtype),
        target=torch.tensor([3, 1]),
        method="IntegratedGradients",
        params={
            "steps": 16,
            "rule": "gauss_legendre",
            "sigma": 0.15,
            "abs": False,
            "seed": None,
            "evaluations": torch.tensor([24, 32]),
            "window": (3, 3),
            "layers": ["layer3", "layer4"],
            "nested": {"low": -1.5, "mask": torch.ones(2, 2, dtype=torch.bool)},
        },
        baseline=torch.zeros(1, 3, 4, 5, dtype=dtype),
        delta=torch.randn(2, generator=g, dtype=dtype),
        output=torch.randn(2, 10, generator=g, dtype=dtype),
        channel_dim=1,
    )
    path = result.save(tmp_path / "ig.npz")
    assert path == tmp_path / "ig.npz" and path.is_file()
    loaded = Attribution.load(path)
    for name in ("values", "target", "method", "params", "baseline", "delta", "output"):
        assert_same(getattr(loaded, name), getattr(result, name))
    assert loaded.channel_dim == 1 and loaded.values.dtype == dtype
    assert Attribution.load_inputs(path) is None
    assert [p.name for p in tmp_path.iterdir()] == ["ig.npz"]  # no temporary file left


def test_dict_inputs_dict_outputs_and_maps_without_channels(tmp_path):
    result = Attribution(
        values={"image": torch.randn(2, 6), "extra": torch.randn(2, 3, dtype=torch.float64)},
        target=None,
        method="Saliency",
        baseline={"image": torch.zeros(2, 6), "extra": 0.5},
        output={"logits": torch.randn(2, 4), "features": torch.randn(2, 12)},
        channel_dim=None,
    )
    inputs = {"image": torch.randn(2, 6), "extra": torch.randn(2, 3)}
    loaded = Attribution.load(result.save(tmp_path / "dict.npz", inputs=inputs))
    for name in ("values", "target", "method", "params", "baseline", "delta", "output"):
        assert_same(getattr(loaded, name), getattr(result, name))
    assert loaded.channel_dim is None
    assert_same(Attribution.load_inputs(tmp_path / "dict.npz"), inputs)


def test_a_real_result_round_trips_with_its_inputs(tmp_path):
    model = TwoInputNet().double().eval()
    x = {"image": torch.randn(3, 6, dtype=torch.float64), "extra": torch.randn(3, 3).double()}
    result = IntegratedGradients(model, steps=8)(x, target=[0, 1, 2])
    loaded = Attribution.load(result.save(tmp_path / "ig.npz", inputs=x))
    assert_same(loaded.values, result.values)
    assert_same(loaded.delta, result.delta)
    assert_same(loaded.target, result.target)
    assert_same(loaded.params, result.params)
    assert loaded.method == result.method == "IntegratedGradients"
    assert_same(Attribution.load_inputs(tmp_path / "ig.npz"), x)
    # the loaded attribution works as the original does
    assert torch.equal(loaded.saliency(key="image"), result.saliency(key="image"))


def test_bfloat16_comes_back_as_bfloat16(tmp_path):
    values = torch.randn(2, 3).to(torch.bfloat16)
    loaded = Attribution.load(Attribution(values).save(tmp_path / "half.npz"))
    assert loaded.values.dtype == torch.bfloat16 and torch.equal(loaded.values, values)


def test_what_a_file_cannot_hold_is_kept_as_its_repr_and_said_so(tmp_path):
    def score(output):
        return output[:, 0]

    model = GapCNN().eval()
    result = Attribution(
        torch.zeros(1, 4), target=score, params={"guide": model, "fn": score, "ok": 1}
    )
    path = result.save(tmp_path / "callable.npz")
    loaded = Attribution.load(path)
    assert isinstance(loaded.target, SavedRepr)
    assert loaded.target.text == repr(score) and "function" in loaded.target.type
    assert repr(loaded.target).startswith("<not saved: ")
    guide = loaded.params["guide"]
    assert isinstance(guide, SavedRepr) and guide.type == "tests.models.GapCNN"
    assert guide.text == repr(model) and loaded.params["ok"] == 1
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read(METADATA))
    assert metadata["not_saved"] == [
        "attribution['target']",
        "attribution['params']['guide']",
        "attribution['params']['fn']",
    ]


def test_the_file_is_an_npz_that_numpy_reads_without_pickle(tmp_path):
    values = torch.arange(6.0).view(2, 3)
    path = Attribution(values, target=torch.tensor([0, 1])).save(tmp_path / "plain.npz")
    with np.load(path, allow_pickle=False) as arrays:
        stored = [arrays[k] for k in arrays.files if k != METADATA]
        metadata = json.loads(arrays[METADATA])
    assert any(np.array_equal(a, values.numpy()) for a in stored)
    assert metadata["format"] == "attrib.Attribution" and metadata["version"] == 1


def test_load_reads_with_allow_pickle_false_only(tmp_path, monkeypatch):
    path = Attribution(torch.ones(1, 2)).save(tmp_path / "a.npz")
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    Attribution.load(path)
    assert calls == [False]


# ---- files that are not attributions -----------------------------------------------------


def _rewrite(source, destination, metadata=None, extra=None):
    """A copy of an attrib file with its JSON replaced and members added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(destination, "w") as new:
        for item in old.namelist():
            data = old.read(item)
            if item == METADATA and metadata is not None:
                data = metadata(json.loads(data))
                data = data if isinstance(data, bytes) else json.dumps(data).encode()
            new.writestr(item, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return destination


def _object_array_member() -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([object()], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _files(tmp_path):
    good = Attribution(torch.ones(2, 3), delta=torch.zeros(2)).save(tmp_path / "good.npz")
    np.savez(tmp_path / "other.npz", values=np.ones(3))
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "text.npz").write_text("not an archive at all\n")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)

    def retyped(meta):
        meta["fields"]["attribution"]["items"]["values"] = {"kind": "json", "value": 3}
        return meta

    def missing_array(meta):
        meta["fields"]["attribution"]["items"]["values"]["array"] = "a99"
        return meta

    def object_array(meta):
        meta["fields"]["attribution"]["items"]["values"]["array"] = "obj"
        return meta

    def no_delta_field(meta):
        del meta["fields"]["attribution"]["items"]["delta"]
        return meta

    return {
        "other.npz": tmp_path / "other.npz",
        "single.npy": tmp_path / "single.npy",
        "text.npz": tmp_path / "text.npz",
        "cut.npz": tmp_path / "cut.npz",
        "pickled.npy": tmp_path / "pickled.npy",
        "not json": _rewrite(good, tmp_path / "j.npz", lambda meta: b"{not json"),
        "other format": _rewrite(
            good, tmp_path / "f.npz", lambda meta: {**meta, "format": "something.else"}
        ),
        "newer version": _rewrite(good, tmp_path / "v.npz", lambda meta: {**meta, "version": 99}),
        "values not a tensor": _rewrite(good, tmp_path / "r.npz", retyped),
        "missing array": _rewrite(good, tmp_path / "m.npz", missing_array),
        "object array": _rewrite(
            good, tmp_path / "o.npz", object_array, {"obj.npy": _object_array_member()}
        ),
        "a field missing": _rewrite(good, tmp_path / "d.npz", no_delta_field),
        "unknown kind": _rewrite(
            good,
            tmp_path / "k.npz",
            lambda meta: {**meta, "fields": {**meta["fields"], "inputs": {"kind": "pickle"}}},
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "other.npz",
        "single.npy",
        "text.npz",
        "cut.npz",
        "pickled.npy",
        "not json",
        "other format",
        "newer version",
        "values not a tensor",
        "missing array",
        "object array",
        "a field missing",
        "unknown kind",
    ],
)
def test_a_foreign_or_damaged_file_is_a_file_format_error(tmp_path, case):
    path = _files(tmp_path)[case]
    with pytest.raises(FileFormatError, match="path: expected") as error:
        Attribution.load(path)
    assert isinstance(error.value, AttribError)
    assert str(path) in str(error.value)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.npz"):
        Attribution.load(tmp_path / "nothing.npz")


def test_a_failed_save_leaves_the_previous_file_and_no_partial_file(tmp_path, monkeypatch):
    path = Attribution(torch.ones(1, 2)).save(tmp_path / "a.npz")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dumps", broken)  # fails after the arrays are written
    with pytest.raises(RuntimeError, match="disk full"):
        Attribution(torch.zeros(3, 4)).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]

"""``attrib.runs.run`` on the local engine: every sample once, its maps and scores as the
methods and metrics give them called directly, bad samples as error rows, a changed run
refused, out-of-memory survived, the tables readable by pyarrow alone.

Expected values are computed here by calling the methods and metrics on the same batches the
run explains (one shard), so they are equal up to float rounding; maps are stored in float16,
whose rounding (relative 2^-11) is the tolerance for them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.methods import GradCAM, Saliency, SmoothGrad
from attrib.metrics import deletion
from attrib.runs import RunFailedError, open_run, run
from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.manifest import RunMismatchError
from attrib.runs.sources import open_source
from attrib.runs.work import at_input
from tests.conftest import assert_state_restored, model_state

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FLOAT16 = 2.0**-11  # relative rounding of a float16 map
N = 24


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    return write_ground_truth_folder(tmp_path_factory.mktemp("gt"), n=N, seed=1)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_ground_truth_cnn()


def _quiet(**kwargs):
    return {"progress": False, "workers": 0, "preset": "none", **kwargs}


def test_every_sample_once_with_the_maps_and_scores_of_the_methods_called_directly(
    gt, model, tmp_path
):
    before = model_state(model)
    done = run(
        model,
        gt,
        methods="saliency,gradcam",
        metrics="deletion,pointing_game",
        layer="features.9",
        out=tmp_path / "run",
        shard_size=N,  # one shard: the direct calls below see the same batch
        **_quiet(),
    )
    assert_state_restored(model, before)
    samples = done.samples.to_pylist()
    assert [r["index"] for r in samples] == list(range(N))
    assert len({r["id"] for r in samples}) == N and {r["status"] for r in samples} == {"ok"}

    source = open_source(gt, preset="none")
    x = torch.stack([source[i].input for i in range(N)])
    masks = torch.stack([source[i].mask for i in range(N)])
    logits = model(x).detach()
    predicted = logits.argmax(1)
    assert [r["prediction"] for r in samples] == predicted.tolist()
    probabilities = torch.softmax(logits, 1)
    for row, p in zip(samples, probabilities, strict=True):
        top = p.topk(4)
        assert row["top_classes"] == top.indices.tolist()
        np.testing.assert_allclose(row["top_probabilities"], top.values.numpy(), rtol=1e-6)

    # stored: Saliency at the input's resolution, Grad-CAM at its layer's (8 x 8); scored:
    # both at the input's, Grad-CAM's map as GradCAM upsamples it
    kept = {
        "Saliency": Saliency(model)(x, predicted).saliency("max_abs"),
        "GradCAM": GradCAM(model, layer="features.9", upsample=False)(x, predicted).values,
    }
    expected = {
        "Saliency": kept["Saliency"],
        "GradCAM": GradCAM(model, layer="features.9")(x, predicted).values,
    }
    assert kept["GradCAM"].shape[-2:] == (8, 8) and expected["GradCAM"].shape[-2:] == (32, 32)
    scores = done.scores.to_pylist()
    for name, maps in expected.items():
        ids, stored = done.maps(name)
        assert ids == [r["id"] for r in samples] and stored.dtype == np.float16
        scale = float(maps.abs().max())
        np.testing.assert_allclose(
            stored.astype(np.float32), kept[name].numpy(), atol=scale * FLOAT16
        )
        _, upsampled = done.maps(name, size=(32, 32))
        np.testing.assert_allclose(upsampled, maps.numpy(), atol=scale * FLOAT16)
        curve = deletion(model, x, maps, predicted, steps=20).area()
        got = {
            r["index"]: r["value"]
            for r in scores
            if (r["method"], r["metric"]) == (name, "deletion")
        }
        np.testing.assert_allclose([got[i] for i in range(N)], curve.numpy(), rtol=1e-5, atol=1e-6)
        top = maps.flatten(1).argmax(1)
        hit = masks.flatten(1).gather(1, top[:, None]).squeeze(1).float()
        got = {
            r["index"]: r["value"]
            for r in scores
            if (r["method"], r["metric"]) == (name, "pointing_game")
        }
        assert [got[i] for i in range(N)] == hit.tolist()
    methods = {r["method"] for r in scores}
    assert methods == {"Saliency", "GradCAM", "random map"}
    assert len(scores) == N * 3 * 2

    # the tables and the manifest are plain files: pyarrow reads them without attrib
    direct = pa.concat_tables(
        pq.read_table(p) for p in sorted(done.path.glob("shards/*/samples.parquet"))
    )
    assert direct.column("id").to_pylist() == [r["id"] for r in samples]
    manifest = json.loads((done.path / "manifest.json").read_text())
    assert manifest["torch_version"] == torch.__version__
    assert manifest["methods"]["GradCAM"]["settings"]["layer"] == "features.9"
    assert manifest["methods"]["GradCAM"]["settings"]["upsample"] is False
    assert (done.path / "summary.md").exists() and (done.path / "summary.json").exists()


def test_maps_by_id_and_unknown_methods(gt, model, tmp_path):
    done = run(model, gt, methods="saliency", out=tmp_path / "r", shard_size=5, **_quiet())
    ids, every = done.maps("Saliency")
    chosen = [ids[7], ids[2], ids[19]]
    got_ids, some = done.maps("Saliency", chosen)
    assert got_ids == chosen
    np.testing.assert_array_equal(some, every[[7, 2, 19]])
    with pytest.raises(SettingError, match="Saliency"):
        done.maps("Saliancy")
    with pytest.raises(SettingError, match="ids"):
        done.maps("Saliency", ["not there"])
    again = open_run(done.path)
    assert again.methods == ["Saliency"] and again.samples.num_rows == N


@pytest.mark.parametrize("normalize", [None, "minmax"])
def test_a_cam_kept_at_its_layer_resolution_upsamples_to_the_cam_itself(model, normalize):
    # bilinear upsampling is linear and min-max scaling ignores a positive affine map: the
    # layer's map upsampled (and scaled again) is the CAM's own upsampled map
    torch.manual_seed(3)
    x = torch.rand(6, 3, 32, 32)
    small = GradCAM(model, layer="features.9", normalize=normalize, upsample=False)(x, 1)
    large = GradCAM(model, layer="features.9", normalize=normalize)(x, 1).values
    got = at_input(small.values, (32, 32), normalize)
    torch.testing.assert_close(got, large, rtol=1e-5, atol=1e-6 * float(large.abs().max()))


def test_a_cam_is_stored_at_the_input_resolution_when_the_user_says_so(gt, model, tmp_path):
    done = run(
        model,
        gt,
        methods="gradcam,gradcam++",
        layer="features.9",
        settings={"GradCAM.upsample": True},
        out=tmp_path / "r",
        verdict=False,
        **_quiet(),
    )
    assert done.maps("GradCAM")[1].shape == (N, 32, 32)
    assert done.maps("GradCAMPlusPlus")[1].shape == (N, 8, 8)


def test_random_methods_draw_per_sample_whatever_the_shards(gt, model, tmp_path):
    smooth = SmoothGrad(Saliency(model), samples=4, sigma=0.1)
    small = run(model, gt, methods=[smooth], out=tmp_path / "a", shard_size=3, **_quiet())
    large = run(model, gt, methods=[smooth], out=tmp_path / "b", shard_size=10, **_quiet())
    ids_a, a = small.maps("SmoothGrad(Saliency)")
    ids_b, b = large.maps("SmoothGrad(Saliency)")
    assert ids_a == ids_b
    # the same draws for each sample in any shard: equal up to float rounding
    np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=FLOAT16, atol=1e-6)
    seeds_differ = run(
        model, gt, methods=[smooth], out=tmp_path / "c", shard_size=10, seed=1, **_quiet()
    )
    assert not np.allclose(seeds_differ.maps("SmoothGrad(Saliency)")[1], b)


def test_a_changed_setting_is_refused_and_force_new_starts_over(gt, model, tmp_path):
    out = tmp_path / "run"
    run(model, gt, methods="integrated_gradients", settings={"steps": 4}, out=out, **_quiet())
    with pytest.raises(RunMismatchError, match=r"methods\.IntegratedGradients\.settings\.steps"):
        run(model, gt, methods="integrated_gradients", settings={"steps": 8}, out=out, **_quiet())
    with pytest.raises(RunMismatchError, match="sha256"):
        other = load_ground_truth_cnn()
        with torch.no_grad():
            other.classifier.bias.add_(1.0)
        run(other, gt, methods="integrated_gradients", settings={"steps": 4}, out=out, **_quiet())
    done = run(
        model,
        gt,
        methods="integrated_gradients",
        settings={"steps": 8},
        out=out,
        force_new=True,
        **_quiet(),
    )
    assert done.manifest.methods["IntegratedGradients"]["settings"]["steps"] == 8
    assert done.samples.num_rows == N


def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def test_corrupt_truncated_and_wrong_sized_images_become_error_rows(gt, model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    source = open_source(gt, preset="none")
    for i in range(6):
        picture = (source[i].input.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        _png(folder / f"good{i}.png", picture)
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really" + bytes(range(200)))
    whole = (folder / "good0.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    _png(folder / "wide.png", np.zeros((32, 48, 3), np.uint8))
    done = run(
        model, folder, methods="saliency", metrics="deletion", out=tmp_path / "r", **_quiet()
    )
    rows = {r["id"]: r for r in done.samples.to_pylist()}
    assert len(rows) == 9
    assert all(rows[f"good{i}.png"]["status"] == "ok" for i in range(6))
    for name in ("corrupt.png", "truncated.png", "wide.png"):
        assert rows[name]["status"] == "error" and rows[name]["prediction"] is None
    assert "(3, 32, 48)" in rows["wide.png"]["error"]
    scored = {r["id"] for r in done.scores.to_pylist()}
    assert scored == {f"good{i}.png" for i in range(6)}
    summary = done.summary()
    assert summary.ok == 6 and summary.errors == 3


class _RaisesOnBrightSamples(nn.Module):
    """The shipped CNN, except that it raises when a sample of the batch is all white."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = load_ground_truth_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.flatten(1).amin(1) > 0.99).any()):
            raise ValueError("cannot score a blank picture")
        return self.inner(x)


class _Wrapped(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def test_a_model_that_raises_on_one_sample_fails_that_sample_only(tmp_path):
    model = _RaisesOnBrightSamples().eval()
    from attrib.data.ground_truth import make_ground_truth

    images = make_ground_truth(10, seed=2).images.clone()
    images[4] = 1.0
    done = run(
        model, _Wrapped(images), methods="saliency", out=tmp_path / "r", shard_size=5, **_quiet()
    )
    rows = done.samples.to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 4 + ["error"] + ["ok"] * 5
    assert rows[4]["error"] == "model: ValueError: cannot score a blank picture"


def test_a_run_where_every_sample_fails_stops_with_the_reason(tmp_path):
    model = _RaisesOnBrightSamples().eval()
    with pytest.raises(RunFailedError, match="cannot score a blank picture"):
        run(
            model,
            _Wrapped(torch.ones(6, 3, 32, 32)),
            methods="saliency",
            out=tmp_path / "r",
            shard_size=3,
            **_quiet(),
        )


class _Instrumented(nn.Module):
    """The shipped CNN, counting the rows it scores and the most in one forward; with
    ``limit``, on a device that holds at most that many rows per forward."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.inner = load_ground_truth_cnn()
        self.limit = limit
        self.rows = 0
        self.largest = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.limit is not None and len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.rows += len(x)
        self.largest = max(self.largest, len(x))
        return self.inner(x)


def test_out_of_memory_halves_the_rows_per_forward_and_says_so_once(gt, tmp_path):
    said: list[str] = []
    small = _Instrumented(limit=4).eval()
    done = run(
        small,
        gt,
        methods="saliency,integrated_gradients",
        settings={"steps": 8},
        metrics="deletion",
        out=tmp_path / "small",
        shard_size=12,
        say=said.append,
        **_quiet(),
    )
    # the first forward takes the shard's 12 rows, then 6, then 3, kept for the rest
    assert small.largest == 3
    assert sum("Out of memory" in s for s in said) == 1
    assert {r["status"] for r in done.samples.to_pylist()} == {"ok"}
    reference = run(
        small.inner,
        gt,
        methods="saliency,integrated_gradients",
        settings={"steps": 8},
        metrics="deletion",
        out=tmp_path / "big",
        shard_size=12,
        **_quiet(),
    )
    for name in ("Saliency", "IntegratedGradients"):
        a, b = done.maps(name)[1].astype(np.float32), reference.maps(name)[1].astype(np.float32)
        np.testing.assert_allclose(a, b, rtol=2 * FLOAT16, atol=float(np.abs(b).max()) * FLOAT16)


def test_bad_arguments_say_what_is_accepted(gt, model, tmp_path):
    with pytest.raises(SettingError, match="pointing_game"):
        run(model, gt, methods="saliency", metrics="pointing_gam", out=tmp_path / "a", **_quiet())
    with pytest.raises(SettingError, match="eval"):
        run(model.train(), gt, methods="saliency", out=tmp_path / "b", **_quiet())
    model.eval()
    with pytest.raises(SettingError, match="engine"):
        run(model, gt, methods="saliency", engine="spark", out=tmp_path / "c", **_quiet())
    with pytest.raises(SettingError, match="shard_size"):
        run(model, gt, methods="saliency", shard_size=0, out=tmp_path / "d", **_quiet())
    plain = tmp_path / "plain"
    plain.mkdir()
    from attrib.data.ground_truth import make_ground_truth

    images = make_ground_truth(3, seed=0).images
    with pytest.raises(SettingError, match="masks"):
        run(
            model,
            _Wrapped(images),
            methods="saliency",
            metrics="pointing_game",
            out=tmp_path / "e",
            **_quiet(),
        )


def test_which_methods_draw_at_random(model):
    from attrib.methods import IntegratedGradients, KernelSHAP

    assert not Saliency(model).draws_at_random
    assert not IntegratedGradients(model).draws_at_random  # a fixed baseline: no draws
    assert IntegratedGradients(model, baseline="uniform").draws_at_random
    assert IntegratedGradients(model, baseline=[0.0, "uniform"]).draws_at_random
    assert SmoothGrad(Saliency(model)).draws_at_random
    assert KernelSHAP(model).draws_at_random


class _Scaled(nn.Module):
    """The shipped CNN with its scores multiplied by 10^6: gradients beyond float16."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = load_ground_truth_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 1e6


def test_maps_float16_cannot_hold_are_refused_not_stored_as_infinities(gt, tmp_path):
    with pytest.raises(RunFailedError, match="65504"):
        run(_Scaled().eval(), gt, methods="saliency", out=tmp_path / "r", **_quiet())


def test_a_full_disk_stops_the_run_with_the_done_shards_kept_and_a_resume_finishes(
    gt, model, tmp_path, monkeypatch
):
    import errno

    from attrib.runs import maps as map_files

    real = map_files.write_maps
    calls = []

    def fills_up(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # the third shard's maps find the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(map_files, "write_maps", fills_up)
    out = tmp_path / "r"
    with pytest.raises(RunFailedError, match="No space left on device"):
        run(model, gt, methods="saliency", out=out, shard_size=5, **_quiet())
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["000000", "000001"]
    assert not any((out / ".incoming").glob("*"))  # the failed shard left nothing
    monkeypatch.setattr(map_files, "write_maps", real)
    done = run(model, gt, methods="saliency", out=out, shard_size=5, **_quiet())
    assert [r["index"] for r in done.samples.to_pylist()] == list(range(N))


@pytest.mark.parametrize(("target", "forwards"), [("predicted", 1), ("label", 2)])
def test_the_first_method_forward_gives_the_predictions(gt, tmp_path, target, forwards):
    # Saliency needs one forward per sample; explaining the predicted class, the run takes
    # its predictions from that forward (one row per sample in all). Explaining the label, it
    # needs the prediction first: a forward of its own, then Saliency's.
    counting = _Instrumented().eval()
    done = run(counting, gt, methods="saliency", target=target, out=tmp_path / "r", **_quiet())
    assert counting.rows == forwards * N
    rows = done.samples.to_pylist()
    source = open_source(gt, preset="none")
    x = torch.stack([source[i].input for i in range(N)])
    assert [r["prediction"] for r in rows] == counting.inner(x).argmax(1).tolist()


class _NiceItems(torch.utils.data.Dataset):
    """Images whose ids say the priority of the process that read them."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"input": self.images[i], "id": f"{i}-nice{os.getpriority(os.PRIO_PROCESS, 0)}"}


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no priorities here")
def test_on_cpu_the_decoding_workers_run_below_the_model_and_the_run_leaves_its_own(tmp_path):
    from attrib.data.ground_truth import make_ground_truth
    from attrib.runs.engines.local import BACKGROUND_NICENESS

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    lowered = min(19, mine + BACKGROUND_NICENESS)  # the kernel's ceiling is 19
    images = make_ground_truth(8, seed=3).images
    done = run(
        load_ground_truth_cnn(),
        _NiceItems(images),
        methods="saliency",
        out=tmp_path / "r",
        shard_size=2,
        progress=False,
        workers=2,
        preset="none",
    )
    ids = [r["id"] for r in done.samples.to_pylist()]
    assert ids == [f"{i}-nice{lowered}" for i in range(8)]
    # the caller's process is as it was, every thread of it: the thread pools that Parquet and
    # Zarr start on first use (from the writer thread) keep the priority they start with
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine
    if sys.platform.startswith("linux"):
        threads = os.listdir("/proc/self/task")
        assert [os.getpriority(os.PRIO_PROCESS, int(t)) for t in threads] == [mine] * len(threads)

"""Sources of dataset runs: every kind reads the ids, labels, classes, tensors and masks its
files say (expected values come from the colours and rectangles the tests draw), in an
order the file system does not decide; bad samples come back as errors; sources pickle and
read the same in DataLoader workers; ``describe()`` follows the files."""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attrib.core.errors import AttribError, SettingError
from attrib.runs.images import IMAGENET_MEAN, IMAGENET_STD
from attrib.runs.samples import Sample, Source
from attrib.runs.sources import (
    HuggingFace,
    ImageFolder,
    Manifest,
    TextFile,
    TorchDataset,
    open_source,
)

RED, GREEN, BLUE = (255, 0, 128), (0, 200, 50), (10, 20, 240)


def solid(path: Path, colour, size=(40, 30), mode="RGB") -> Path:
    """A PNG of one colour; ``size`` is (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def noise_png_bytes(seed: int = 0, side: int = 64) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def rectangle_mask(path: Path, size, rows, cols) -> np.ndarray:
    """A mask PNG (255 inside ``rows`` x ``cols``, half-open ranges); returns it as bool."""
    w, h = size
    drawn = np.zeros((h, w), dtype=bool)
    drawn[rows[0] : rows[1], cols[0] : cols[1]] = True
    Image.fromarray(drawn.astype(np.uint8) * 255).save(path)
    return drawn


def colour_of(sample: Sample) -> list[float]:
    """The one colour of a solid [0, 1] input, checking it is solid."""
    flat = sample.input.reshape(3, -1)
    assert torch.allclose(flat, flat[:, :1].expand_as(flat), atol=1e-6)
    return flat[:, 0].tolist()


def same(a: Sample, b: Sample) -> bool:
    for field in ("index", "id", "source", "label", "error"):
        if getattr(a, field) != getattr(b, field):
            return False
    for field in ("input", "mask", "pixels"):
        x, y = getattr(a, field), getattr(b, field)
        if (x is None) != (y is None):
            return False
        if isinstance(x, str) or x is None:
            if x != y:
                return False
        elif not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "photos"
    solid(root / "cat" / "b.png", RED)
    solid(root / "cat" / "a.png", GREEN)
    solid(root / "dog" / "deeper" / "c.png", BLUE)
    solid(root / "top.png", RED)
    (root / "empty").mkdir()  # torchvision counts a folder without images as a class
    solid(root / ".thumbnails" / "x.png", RED)  # hidden: skipped
    (root / "notes.txt").write_text("not an image")
    return root


# ---------------------------------------------------------------- ImageFolder


def test_an_image_folder_has_sorted_ids_classes_from_first_level_folders_and_colours(folder):
    source = ImageFolder(folder, preset="none")
    assert isinstance(source, Source) and source.kind == "images"
    assert source.class_names == ["cat", "dog", "empty"]
    assert [source[i].id for i in range(len(source))] == [
        "cat/a.png",
        "cat/b.png",
        "dog/deeper/c.png",
        "top.png",
    ]
    assert [source[i].label for i in range(len(source))] == [0, 0, 1, None]
    colours = [colour_of(source[i]) for i in range(len(source))]
    expected = [GREEN, RED, BLUE, RED]
    assert np.allclose(colours, np.array(expected) / 255, atol=1e-6)
    first = source[0]
    assert first.source == str(folder / "cat" / "a.png") and first.error is None
    assert first.input.shape == (3, 30, 40) and first.pixels is None  # "none" is not normalised
    assert source[-1].index == 3
    with pytest.raises(IndexError):
        source[4]


def test_the_imagenet_preset_normalises_a_solid_colour_and_keeps_the_picture(tmp_path):
    solid(tmp_path / "pics" / "red.png", RED, size=(300, 200))
    sample = ImageFolder(tmp_path / "pics")[0]  # preset "imagenet": 256 shorter side, crop 224
    assert sample.input.shape == (3, 224, 224)
    expected = (np.array(RED) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(sample.input.reshape(3, -1).numpy().T, expected, atol=1e-5)
    assert sample.pixels.shape == (224, 224, 3)
    assert np.allclose(sample.pixels, np.array(RED) / 255, atol=1e-6)


@pytest.mark.parametrize("size", [(256, 256), (300, 200), (200, 517), (240, 230)])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_the_imagenet_preset_is_pillows_resize_and_crop_then_the_normalisation(
    tmp_path, size, mode
):
    # the reference, step by step with Pillow: RGB, shorter side to 256 (bilinear), centre
    # crop 224, ((x / 255) - mean) / std; the source skips the steps that change nothing
    rng = np.random.default_rng(sum(size))
    picture = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    picture = picture.convert(mode) if mode != "P" else picture.quantize(64)
    (tmp_path / "pics").mkdir()
    picture.save(tmp_path / "pics" / "a.png")
    rgb = picture.convert("RGB")
    w, h = rgb.size
    scale = 256 / min(w, h)
    rgb = rgb.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = rgb.size
    side = min(224, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    cropped = np.asarray(rgb.crop((left, top, left + side, top + side)), dtype=np.float64)
    expected = (cropped / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    source = ImageFolder(tmp_path / "pics")
    sample, lean = source[0], source.without_pixels()[0]
    # float32 arithmetic on values of magnitude < 3: a few units of 2^-23 apart
    assert np.allclose(sample.input.numpy().transpose(1, 2, 0), expected, rtol=0, atol=1e-6)
    assert np.allclose(sample.pixels, cropped / 255, rtol=0, atol=1e-7)
    assert torch.equal(lean.input, sample.input) and lean.pixels is None
    assert source.keep_pixels  # without_pixels is a copy


def test_grayscale_and_rgba_images_become_rgb(tmp_path):
    solid(tmp_path / "pics" / "gray.png", 77, mode="L")
    solid(tmp_path / "pics" / "rgba.png", (10, 20, 30, 0), mode="RGBA")
    gray, rgba = (ImageFolder(tmp_path / "pics", preset="none")[i] for i in range(2))
    assert np.allclose(colour_of(gray), [77 / 255] * 3, atol=1e-6)
    assert np.allclose(colour_of(rgba), np.array([10, 20, 30]) / 255, atol=1e-6)


def test_the_order_does_not_depend_on_the_file_systems_listing(folder, monkeypatch):
    listed = [ImageFolder(folder)[i].id for i in range(4)]
    walk = os.walk

    def reversed_walk(top, **options):
        for place, subfolders, files in walk(top, **options):
            subfolders.reverse()
            files.reverse()
            yield place, subfolders, files

    monkeypatch.setattr(os, "walk", reversed_walk)
    assert [ImageFolder(folder)[i].id for i in range(4)] == listed


def test_given_class_names_index_the_folders_and_must_cover_them(folder):
    source = ImageFolder(folder, preset="none", class_names=["dog", "cat"])
    assert [source[i].label for i in range(4)] == [1, 1, 0, None]
    with pytest.raises(SettingError, match="'dog'"):
        ImageFolder(folder, class_names=["cat"])


def test_a_folder_that_is_missing_or_holds_no_images_is_refused(tmp_path):
    with pytest.raises(SettingError, match="No such folder"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    with pytest.raises(SettingError, match="holds none"):
        ImageFolder(tmp_path / "texts")


def test_corrupt_truncated_and_missing_files_are_error_samples(tmp_path):
    root = tmp_path / "pics"
    solid(root / "a_good.png", GREEN)
    (root / "b_corrupt.png").write_bytes(np.random.default_rng(0).bytes(500))
    whole = noise_png_bytes()
    (root / "c_truncated.png").write_bytes(whole[: len(whole) // 2])
    solid(root / "d_gone.png", RED)
    source = ImageFolder(root, preset="none")
    (root / "d_gone.png").unlink()
    good, corrupt, truncated, gone = (source[i] for i in range(4))
    assert good.error is None and good.input is not None
    for bad in (corrupt, truncated, gone):
        assert bad.input is None and bad.error and "\n" not in bad.error
        assert bad.id == Path(bad.source).name and bad.label is None  # no classes here
    assert "Pillow can read" in corrupt.error and "cannot identify" in corrupt.error
    assert "truncated" in truncated.error
    assert "no such file" in gone.error


# ---------------------------------------------------------------- Manifest


@pytest.fixture
def manifest_rows(tmp_path):
    """Three images in ``data/img`` (red, green, blue), a mask for the first, and the rows of
    a manifest in ``data`` that lists them with relative paths and class names."""
    data = tmp_path / "data"
    solid(data / "img" / "r.png", RED, size=(40, 30))
    solid(data / "img" / "g.png", GREEN, size=(40, 30))
    solid(data / "img" / "b.png", BLUE, size=(40, 30))
    drawn = rectangle_mask(data / "r_mask.png", (40, 30), rows=(5, 12), cols=(20, 33))
    rows = [
        {"path": "img/r.png", "label": "red", "mask": "r_mask.png", "id": "first"},
        {"path": "img/g.png", "label": "green", "mask": "", "id": "second"},
        {"path": str(data / "img" / "b.png"), "label": "blue", "mask": "", "id": "third"},
    ]
    return data, rows, drawn


def write_csv(path: Path, rows) -> Path:
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({k: v or None for k, v in r.items()}) + "\n" for r in rows))
    return path


def write_parquet(path: Path, rows) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    columns = {k: [r[k] or None for r in rows] for k in rows[0]}
    pq.write_table(pa.table(columns), path)
    return path


def test_a_csv_manifest_reads_relative_paths_names_masks_and_ids(manifest_rows, monkeypatch):
    data, rows, drawn = manifest_rows
    path = write_csv(data / "manifest.csv", rows)
    monkeypatch.chdir(data.parent)  # relative paths are the manifest folder's, not ours
    source = Manifest(path, preset="none")
    assert source.class_names == ["blue", "green", "red"]  # sorted distinct names
    samples = [source[i] for i in range(3)]
    assert [s.id for s in samples] == ["first", "second", "third"]
    assert [s.label for s in samples] == [2, 1, 0]
    assert [s.source for s in samples] == [
        str(data / "img" / n) for n in ("r.png", "g.png", "b.png")
    ]
    assert np.allclose([colour_of(s) for s in samples], np.array([RED, GREEN, BLUE]) / 255)
    assert torch.equal(samples[0].mask, torch.from_numpy(drawn))
    assert samples[1].mask is None and all(s.error is None for s in samples)
    named = Manifest(path, preset="none", class_names=["red", "green", "blue"])
    assert [named[i].label for i in range(3)] == [0, 1, 2]


def test_parquet_and_jsonl_manifests_read_as_the_csv_does(manifest_rows):
    data, rows, _ = manifest_rows
    csv_source = Manifest(write_csv(data / "m.csv", rows), preset="none")
    for written in (write_parquet(data / "m.parquet", rows), write_jsonl(data / "m.jsonl", rows)):
        source = Manifest(written, preset="none")
        assert source.class_names == csv_source.class_names
        assert all(same(source[i], csv_source[i]) for i in range(3))


def test_integer_labels_and_the_default_ids(manifest_rows):
    data, rows, _ = manifest_rows
    rows = [{"path": r["path"], "label": k} for k, r in enumerate(rows)]
    source = Manifest(write_csv(data / "m.csv", rows), preset="none")
    assert source.class_names is None
    assert [source[i].label for i in range(3)] == [0, 1, 2]
    assert [source[i].id for i in range(3)] == [r["path"] for r in rows]


def test_a_mask_goes_through_the_presets_resize_and_crop_by_nearest_neighbour(tmp_path):
    solid(tmp_path / "big.png", RED, size=(512, 512))
    # rows [100, 300) and columns [200, 400) at 512: halved to [50, 150) and [100, 200) at
    # 256 (nearest samples pixel centres 2j + 1), then the centre crop 224 removes 16
    drawn = rectangle_mask(tmp_path / "big_mask.png", (512, 512), rows=(100, 300), cols=(200, 400))
    rectangle_mask(tmp_path / "half_mask.png", (256, 256), rows=(50, 150), cols=(100, 200))
    rows = [
        {"path": "big.png", "mask": "big_mask.png", "id": "full-size mask"},
        {"path": "big.png", "mask": "half_mask.png", "id": "half-size mask"},
    ]
    source = Manifest(write_csv(tmp_path / "m.csv", rows), preset="crop224")
    expected = torch.zeros(224, 224, dtype=torch.bool)
    expected[34:134, 84:184] = True
    assert drawn.sum() == 4 * expected.sum()
    for i in range(2):
        assert source[i].error is None
        assert torch.equal(source[i].mask, expected)


def test_a_mask_that_does_not_fit_its_image_is_an_error_sample(tmp_path):
    solid(tmp_path / "a.png", RED, size=(32, 32))
    rectangle_mask(tmp_path / "wide.png", (20, 10), rows=(0, 5), cols=(0, 5))
    rectangle_mask(tmp_path / "small.png", (16, 16), rows=(0, 5), cols=(0, 5))
    rows = [
        {"path": "a.png", "mask": "wide.png", "id": "other proportions"},
        {"path": "a.png", "mask": "small.png", "id": "smaller, no resize in preset none"},
        {"path": "a.png", "mask": "absent.png", "id": "missing mask"},
        {"path": "absent.png", "mask": "", "id": "missing image"},
    ]
    source = Manifest(write_csv(tmp_path / "m.csv", rows), preset="none")
    wide, small, absent_mask, absent_image = (source[i] for i in range(4))
    assert wide.input is None and "the mask is 20x10 pixels, the image 32x32" in wide.error
    assert small.input is None and "16x16" in small.error
    assert absent_mask.input is None and "no such file" in absent_mask.error
    assert absent_image.input is None and "no such file" in absent_image.error
    assert absent_image.id == "missing image"


def test_manifests_with_a_missing_column_repeated_ids_or_unknown_names_are_refused(tmp_path):
    solid(tmp_path / "a.png", RED)
    with pytest.raises(SettingError, match=r"path_column.*Its columns: file"):
        Manifest(write_csv(tmp_path / "m1.csv", [{"file": "a.png"}]))
    with pytest.raises(SettingError, match=r"'a\.png' twice"):
        Manifest(write_csv(tmp_path / "m2.csv", [{"path": "a.png"}, {"path": "a.png"}]))
    with pytest.raises(SettingError, match="Did you mean 'cat'"):
        Manifest(
            write_csv(tmp_path / "m3.csv", [{"path": "a.png", "label": "cta"}]),
            class_names=["cat", "dog"],
        )
    with pytest.raises(SettingError, match="mask_column"):
        Manifest(write_csv(tmp_path / "m4.csv", [{"path": "a.png"}]), mask_column="segment")


def test_without_pyarrow_parquet_is_refused_with_what_to_install(manifest_rows, monkeypatch):
    data, rows, _ = manifest_rows
    path = write_parquet(data / "m.parquet", rows)
    for module in ("pyarrow", "pyarrow.parquet", "pyarrow.json"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(AttribError, match=r"pip install 'attrib\[runs\]'"):
        Manifest(path)
    assert len(Manifest(write_csv(data / "m.csv", rows))) == 3  # CSV needs no pyarrow


# ---------------------------------------------------------------- TextFile


def test_a_text_file_reads_texts_labels_and_ids(tmp_path):
    rows = [
        {"text": "a fine film", "label": "positive"},
        {"text": "", "label": "negative"},
        {"text": "dull", "label": "negative"},
    ]
    for path in (write_csv(tmp_path / "t.csv", rows), write_jsonl(tmp_path / "t.jsonl", rows)):
        source = TextFile(path)
        assert source.kind == "text" and source.class_names == ["negative", "positive"]
        samples = [source[i] for i in range(3)]
        assert [s.input for s in samples] == ["a fine film", None, "dull"]
        assert [s.label for s in samples] == [1, 0, 0]
        assert [s.id for s in samples] == ["row 0", "row 1", "row 2"]
        assert "no text in column 'text'" in samples[1].error
    review = TextFile(write_csv(tmp_path / "r.csv", [{"review": "ok", "n": "x1"}]), "review")
    assert review[0].input == "ok" and review[0].label is None
    assert TextFile(tmp_path / "r.csv", "review", id_column="n")[0].id == "x1"


# ---------------------------------------------------------------- torch datasets


class Items(torch.utils.data.Dataset):
    """Items of every accepted form; item 3 raises, as a broken file behind it would."""

    classes = ("zero", "one", "two")

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int):
        value = torch.full((3, 4, 6), float(i))
        if i == 0:
            return value
        if i == 1:
            return value, torch.tensor(2)
        if i == 2:
            mask = torch.zeros(4, 6)
            mask[1:3, 2:5] = 1
            return {"input": value, "label": 1, "mask": mask, "id": "two"}
        if i == 3:
            raise RuntimeError("the disk\nwent away")
        return Image.new("RGB", (6, 4), GREEN), 0


def test_a_torch_dataset_reads_each_item_form_and_an_item_that_raises_is_an_error():
    source = TorchDataset(Items(), preset="none")
    assert source.class_names == ["zero", "one", "two"]
    samples = [source[i] for i in range(5)]
    assert [s.id for s in samples] == [
        "dataset[0]",
        "dataset[1]",
        "two",
        "dataset[3]",
        "dataset[4]",
    ]
    assert [s.label for s in samples] == [None, 2, 1, None, 0]
    for i in (0, 1, 2):
        assert torch.equal(samples[i].input, torch.full((3, 4, 6), float(i)))
    expected = torch.zeros(4, 6, dtype=torch.bool)
    expected[1:3, 2:5] = True
    assert torch.equal(samples[2].mask, expected)
    assert samples[3].input is None and samples[3].error == "RuntimeError: the disk went away"
    assert np.allclose(colour_of(samples[4]), np.array(GREEN) / 255)  # a PIL image, by preset


def test_pictures_in_a_dataset_are_arrays_paths_or_images_and_other_values_are_errors(tmp_path):
    path = solid(tmp_path / "blue.png", BLUE)
    items = [
        np.full((4, 5), 7, dtype=np.uint8),  # gray
        np.dstack([np.full((4, 5), c, dtype=np.uint8) for c in (*RED, 0)]),  # RGBA
        str(path),
        torch.zeros(3, 4, 5, dtype=torch.uint8),
        (torch.zeros(3, 2, 2), 1, "extra"),
    ]
    samples = [TorchDataset(items, preset="none")[i] for i in range(5)]  # a list will do
    assert np.allclose(colour_of(samples[0]), [7 / 255] * 3)
    assert np.allclose(colour_of(samples[1]), np.array(RED) / 255)
    assert np.allclose(colour_of(samples[2]), np.array(BLUE) / 255)
    assert "torch.uint8 tensor is not a model input" in samples[3].error
    assert "not 3 values" in samples[4].error


def test_an_iterable_dataset_is_refused():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(3)

    with pytest.raises(SettingError, match="map-style"):
        TorchDataset(Stream())


# ---------------------------------------------------------------- Hugging Face


@pytest.fixture
def hf_images():
    pytest.importorskip("datasets")
    return hugging_face_images()


def hugging_face_images():
    """Four rows: blue, gray 77, a broken image, red (no label); ids in ``name``."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["red", "green", "blue"]),
            "name": datasets.Value("string"),
        }
    )
    broken = {"bytes": np.random.default_rng(1).bytes(200), "path": None}
    return datasets.Dataset.from_dict(
        {
            "image": [
                Image.new("RGB", (8, 6), BLUE),
                Image.new("L", (8, 6), 77),
                broken,
                Image.new("RGB", (8, 6), RED),
            ],
            "label": [2, 1, 0, -1],
            "name": ["b", "g", "x", "r"],
        },
        features=features,
    )


def test_a_hugging_face_dataset_reads_class_names_labels_and_images(hf_images):
    source = HuggingFace(hf_images, preset="none", id_column="name")
    assert source.class_names == ["red", "green", "blue"] and source.kind == "images"
    samples = [source[i] for i in range(4)]
    assert [s.id for s in samples] == ["b", "g", "x", "r"]
    assert [s.label for s in samples] == [2, 1, None, None]  # -1: no label
    assert np.allclose(colour_of(samples[0]), np.array(BLUE) / 255)
    assert np.allclose(colour_of(samples[1]), [77 / 255] * 3)
    assert samples[2].input is None and "cannot identify image file" in samples[2].error
    assert samples[3].error is None


def test_hugging_face_texts_and_label_names():
    datasets = pytest.importorskip("datasets")
    texts = datasets.Dataset.from_dict({"sentence": ["good", "bad"], "label": ["pos", "neg"]})
    source = HuggingFace(texts, text_column="sentence")
    assert source.kind == "text" and source.class_names == ["neg", "pos"]
    assert [(source[i].input, source[i].label) for i in range(2)] == [("good", 1), ("bad", 0)]
    with pytest.raises(SettingError, match="text_column"):
        HuggingFace(texts, text_column="txt")


# ---------------------------------------------------------------- open_source


def test_open_source_picks_the_source_for_a_path_or_an_object(folder, manifest_rows, hf_images):
    data, rows, _ = manifest_rows
    assert isinstance(open_source(folder), ImageFolder)
    assert isinstance(open_source(str(write_csv(data / "m.csv", rows))), Manifest)
    texts = write_csv(data / "t.csv", [{"text": "hello", "path": "x"}])
    assert isinstance(open_source(texts), Manifest)  # the path column wins...
    assert isinstance(open_source(texts, text_column="text"), TextFile)  # ...unless told
    assert isinstance(open_source(write_csv(data / "u.csv", [{"text": "hi"}])), TextFile)
    made = ImageFolder(folder)
    assert open_source(made) is made
    assert isinstance(open_source(Items()), TorchDataset)
    assert isinstance(open_source(hf_images), HuggingFace)


def test_open_source_says_what_it_accepts(tmp_path, hf_images):
    import datasets

    with pytest.raises(SettingError, match="No such file or folder") as missing:
        open_source(tmp_path / "nothing.csv")
    assert "a folder of images" in str(missing.value)
    neither = write_csv(tmp_path / "n.csv", [{"file": "a.png", "words": "x"}])
    with pytest.raises(SettingError, match=r"'path' column.*'text' column.*file, words"):
        open_source(neither)
    with pytest.raises(SettingError, match="attrib explain"):
        open_source(solid(tmp_path / "one.png", RED))
    (tmp_path / "a.npz").write_bytes(b"x")
    with pytest.raises(SettingError, match=r"\.npz is not one of"):
        open_source(tmp_path / "a.npz")
    with pytest.raises(SettingError, match="a folder of images"):
        open_source(42)
    with pytest.raises(SettingError, match="Pick a split"):
        open_source(datasets.DatasetDict({"test": hf_images}))


# ---------------------------------------------------------------- every source


@pytest.fixture
def every_source(folder, manifest_rows, tmp_path):
    data, rows, _ = manifest_rows
    (folder / "cat" / "broken.png").write_bytes(b"not a png")
    rows = [*rows, {"path": "img/none.png", "label": "red", "mask": "", "id": "fourth"}]
    sources = {
        "folder": ImageFolder(folder),
        "manifest": Manifest(write_csv(data / "m.csv", rows), preset="none"),
        "texts": TextFile(
            write_csv(tmp_path / "t.csv", [{"text": "a", "n": 1}, {"text": "", "n": 2}])
        ),
        "torch": TorchDataset(Items(), preset="crop224"),
    }
    try:
        sources["hugging face"] = HuggingFace(hugging_face_images(), preset="none")
    except ImportError:
        pass  # the datasets package is optional
    return sources


def test_every_source_pickles_and_reads_the_same(every_source):
    for name, source in every_source.items():
        copy = pickle.loads(pickle.dumps(source))
        assert len(copy) == len(source), name
        assert all(same(copy[i], source[i]) for i in range(len(source))), name
        assert any(source[i].error for i in range(len(source))), name  # errors travel too


def test_dataloader_workers_read_what_the_process_reads(every_source):
    for name, source in every_source.items():
        loader = torch.utils.data.DataLoader(source, num_workers=2, batch_size=None)
        read = list(loader)
        assert len(read) == len(source), name
        assert all(same(read[i], source[i]) for i in range(len(source))), name


def test_describe_is_json_and_its_fingerprint_follows_the_samples(every_source, folder):
    for name, source in every_source.items():
        described = json.loads(json.dumps(every_source[name].describe()))
        assert described["kind"] == source.kind and described["count"] == len(source), name
        assert described["fingerprint"].startswith("sha256:"), name
        assert described["fingerprint"] == source.describe()["fingerprint"], name
    before = ImageFolder(folder).describe()["fingerprint"]
    solid(folder / "dog" / "new.png", GREEN)
    assert ImageFolder(folder).describe()["fingerprint"] != before
    manifest = every_source["manifest"]
    before = manifest.describe()["fingerprint"]
    with open(manifest.path, "a") as handle:
        handle.write("img/g.png,green,,fifth\n")
    assert Manifest(manifest.path).describe()["fingerprint"] != before


def test_an_error_sample_keeps_what_is_known_without_reading_it(folder):
    (folder / "dog" / "broken.png").write_bytes(b"not a png")
    source = ImageFolder(folder)
    broken = next(source[i] for i in range(len(source)) if source[i].error)
    assert (broken.id, broken.label, broken.input) == ("dog/broken.png", 1, None)
    assert broken.source == str(folder / "dog" / "broken.png")

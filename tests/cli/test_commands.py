"""The ``attrib`` command, run as a subprocess: every SPEC form, outputs, one-line errors."""

from __future__ import annotations

import pytest
import torch

from attrib import Attribution, Saliency
from tests.cli.conftest import FACTORY, assert_one_line_error, run, run_all
from tests.cli.toy_models import tiny_cnn

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


def _decodes(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_methods_lists_each_method_with_its_paper():
    done = run("methods")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name, paper in (
        ("Saliency", "Simonyan et al. 2014"),
        ("IntegratedGradients", "Sundararajan et al. 2017"),
        ("GradCAM", "Selvaraju et al. 2017"),
        ("KernelSHAP", "Lundberg and Lee 2017"),
    ):
        assert any(line.split()[:1] == [name] and paper in line for line in lines), name


def test_explain_writes_a_png_and_an_attribution_file_per_image_and_method(files, tmp_path):
    """The demo model (EfficientNet-Lite0) on two files: PNG figures, and each image's
    attribution saved by ``Attribution.save`` with its model input."""
    out = tmp_path / "out"
    done = run(
        "explain",
        str(files["one.png"]),
        str(files["two.jpg"]),
        "--model",
        "demo",
        "--method",
        "saliency,GradCAM",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    for stem in ("one", "two"):
        for method in ("Saliency", "GradCAM"):
            width, height = _decodes(out / f"{stem}_{method}.png")
            assert width > 300 and height > 100
            saved = Attribution.load(out / f"{stem}_{method}.npz")
            assert saved.method == method
            assert saved.output.shape == (1, 1000)
            assert saved.target.tolist() == saved.output.argmax(1).tolist()
            assert Attribution.load_inputs(out / f"{stem}_{method}.npz").shape == (1, 3, 224, 224)
        assert Attribution.load(out / f"{stem}_Saliency.npz").values.shape == (1, 3, 224, 224)
        cam = Attribution.load(out / f"{stem}_GradCAM.npz")
        assert cam.values.shape == (1, 224, 224) and cam.channel_dim is None
        assert cam.params["layer"]  # the demo's CAM layer, recorded
        assert f"{stem}:" in done.stdout


def test_every_model_spec_form(files, tmp_path):
    """TorchScript file, torchvision name + weights, package.module:factory (+ weights)."""
    torchvision = pytest.importorskip("torchvision")
    squeeze = tmp_path / "squeezenet.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), squeeze)
    image = str(files["one.png"])
    common = ["--method", "saliency", "--preprocess", "none"]
    done = run_all(
        [
            [
                "explain",
                image,
                "--model",
                str(files["scripted.pt"]),
                *common,
                "--out",
                str(tmp_path / "ts"),
            ],
            [
                "explain",
                image,
                "--model",
                "squeezenet1_1",
                "--weights",
                str(squeeze),
                "--method",
                "gradcam",
                "--layer",
                "features.12",
                "--out",
                str(tmp_path / "tv"),
            ],
            [
                "explain",
                image,
                "--model",
                FACTORY,
                "--weights",
                str(files["tiny.pt"]),
                *common,
                "--target",
                "2",
                "--out",
                str(tmp_path / "factory"),
            ],
            ["explain", image, "--model", FACTORY, *common, "--out", str(tmp_path / "plain")],
        ]
    )
    for result in done:
        assert result.returncode == 0, (result.args, result.stderr)
        assert "Traceback" not in result.stderr
    assert _decodes(tmp_path / "ts" / "one_Saliency.png")
    assert Attribution.load(tmp_path / "tv" / "one_GradCAM.npz").values.shape == (1, 224, 224)
    factory = Attribution.load(tmp_path / "factory" / "one_Saliency.npz")
    assert factory.target.tolist() == [2] and factory.values.shape == (1, 3, 24, 32)
    # the file holds what the method gives on the saved input: the saliency of class 2
    inputs = Attribution.load_inputs(tmp_path / "factory" / "one_Saliency.npz")
    model = tiny_cnn()
    model.load_state_dict(torch.load(files["tiny.pt"], weights_only=True))
    want = Saliency(model)(inputs, target=2).values
    # float32 gradients of a two-layer CNN, summed in another thread count: 1e-5 of the scale
    torch.testing.assert_close(factory.values, want, rtol=0, atol=1e-5 * float(want.abs().max()))
    # the same weights by factory and by file give the same input
    plain = Attribution.load_inputs(tmp_path / "plain" / "one_Saliency.npz")
    torch.testing.assert_close(inputs, plain, rtol=0, atol=0)


def test_bad_input_is_one_line_and_a_nonzero_exit(files, tmp_path):
    image = str(files["one.png"])
    out = ["--out", str(tmp_path / "bad")]
    tiny = ["--model", FACTORY, "--method", "saliency", "--preprocess", "none", *out]
    notes = tmp_path / "notes.txt"  # neither a folder nor a weights file
    notes.write_text("hello\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("tabby cat\ntiger cat\ntray\nabaya\n")
    cases = [
        (
            ["explain", str(tmp_path / "missing.png"), *tiny],
            ["IMAGE", "missing.png", "No such file"],
        ),
        (["explain", str(files["text.png"]), *tiny], ["IMAGE", "text.png", "Pillow"]),
        (
            ["explain", image, "--model", FACTORY, "--method", "salency", *out],
            ["salency", "Saliency"],
        ),
        (
            ["explain", image, "--model", FACTORY, "--method", "gradcam", "--layer", "features.9"],
            ["features.9", "features.2"],
        ),
        (
            ["explain", image, *tiny, "--weights", str(files["wrong.pt"])],
            ["--weights", "fc.weight (5, 8) vs (4, 8)"],
        ),
        (
            ["explain", image, *tiny, "--weights", str(files["pickled.pt"])],
            ["pickled Python objects", "weights_only"],
        ),
        (
            [
                "explain",
                image,
                "--model",
                "squeezenet1_1",
                "--weights",
                str(files["tiny.pt"]),
                "--method",
                "saliency",
                *out,
            ],
            ["fits squeezenet1_1", "missing"],
        ),
        (["explain", image, "--model", "resnet1", "--method", "saliency", *out], ["resnet18"]),
        (["explain", image, "--model", "resnet18", "--method", "saliency", *out], ["--weights"]),
        (["explain", image, *tiny, "--target", "99"], ["target"]),
        (
            [
                "explain",
                image,
                "--model",
                "tests.cli.toy_models:broken",
                "--method",
                "saliency",
                *out,
            ],
            ["always fails"],
        ),
        # what a new user hit: raw exceptions, torch's internals, silence, no suggestion
        (
            ["explain", image, "--model", str(files["scripted.pt"]), "--method", "gradcam", *out],
            ["--method", "TorchScript", "GradCAM", "--model package.module:factory"],
        ),
        (["explain", image, *tiny[:-2], "--out", str(notes / "x")], ["--out", "is a file"]),
        (["explain", image, *tiny, "--weights", str(notes)], ["not a file torch.save writes"]),
        (
            ["explain", image, *tiny, "--labels", str(labels), "--target", "tabby"],
            ["Did you mean 'tabby cat'?"],
        ),
        (["evaluate", image, *tiny, "--metric", "road"], ["'road_morf', 'road_lerf'"]),
        (["explain", image, "--method", "saliency"], ["--model"]),  # argparse
    ]
    results = run_all([args for args, _ in cases])
    for (_, fragments), done in zip(cases, results, strict=True):
        assert_one_line_error(done, *fragments)
    assert results[-1].returncode == 2  # a command line that does not parse
    assert all(r.returncode == 1 for r in results[:-1])


def test_debug_shows_the_traceback(tmp_path):
    done = run(
        "--debug",
        "explain",
        str(tmp_path / "missing.png"),
        "--model",
        FACTORY,
        "--method",
        "saliency",
    )
    assert done.returncode != 0 and "Traceback" in done.stderr

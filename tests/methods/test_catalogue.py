"""The catalogue: every registered method is constructible, documented, listed by
``attrib methods``, drawable by ``viz`` and has a README row; settings are said once."""

from __future__ import annotations

import inspect
import io
import pickle
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

import attrib
from attrib import viz
from attrib.core.errors import SettingError
from attrib.methods import catalogue
from attrib.methods.recipes import ImageContext, build_for_image
from tests.models import GapCNN

README = Path(__file__).resolve().parents[2] / "README.md"
ENTRIES = catalogue.entries()
IMAGE_ENTRIES = [i for i in ENTRIES if i.inputs in ("tensor", "image")]
TOKEN_ENTRIES = [i for i in ENTRIES if i.inputs == "tokens"]
# settings that keep the sampled methods to a few forwards on a 16 x 16 image
CHEAP = {"samples": 2}
SAMPLED = {"SmoothGrad", "SmoothGradSquared", "VarGrad", "ExpectedGradients"}
SAMPLED |= {"ShapleySampling", "KernelSHAP", "LIME"}


def _ids(infos: list[catalogue.MethodInfo]) -> list[str]:
    return [i.name for i in infos]


def test_the_catalogue_has_every_public_method_once():
    names = [i.name for i in ENTRIES]
    assert len(names) == len(set(names))
    public = {
        n for n in attrib.__all__ if isinstance(getattr(attrib, n), type) and n != "Method"
    } - {"Attribution", "AttribError", "AttribWarning"}
    assert public <= set(names), public - set(names)
    assert {i.family for i in ENTRIES} == set(catalogue.FAMILIES)
    # families in order, and chronological within a family
    order = [(catalogue.FAMILIES.index(i.family), i.year) for i in ENTRIES]
    assert order == sorted(order)


@pytest.mark.parametrize("info", ENTRIES, ids=_ids(ENTRIES))
def test_every_method_is_documented_with_its_paper_and_formula(info):
    assert info.paper and info.short and info.summary and info.formula, info
    doc = inspect.getdoc(info.cls) or ""
    for cited in info.paper.split(";"):
        surname = cited.split()[0]
        year = re.search(r"\d{4}", cited)
        assert surname in doc and year is not None and year.group() in doc, (info.name, cited)
    assert "=" in doc, f"{info.name}: the docstring states no formula"
    for spec in info.settings:
        assert spec.what and spec.describe().startswith(spec.name), spec


def test_every_method_is_listed_by_attrib_methods_with_its_paper():
    from attrib.cli import listing

    with redirect_stdout(io.StringIO()) as out:
        assert listing.run(None) == 0
    lines = out.getvalue().splitlines()
    for info in ENTRIES:
        assert any(line.split()[:1] == [info.name] and info.paper in line for line in lines), (
            info.name
        )


def test_every_method_has_a_readme_row():
    rows = re.findall(r"^\| `(\w+)`", README.read_text(), flags=re.MULTILINE)
    missing = [i.name for i in ENTRIES if i.name not in rows]
    assert not missing, f"no README row for {missing}"


@pytest.mark.parametrize("info", IMAGE_ENTRIES, ids=_ids(IMAGE_ENTRIES))
def test_every_image_method_builds_from_its_recipe_runs_and_draws(info):
    model = GapCNN().eval()
    x = torch.rand(2, 3, 16, 16)
    context = ImageContext(model, (16, 16), layer="features", references=x.flip(0))
    context.settings = dict(CHEAP) if info.name in SAMPLED else {}
    method = build_for_image(info.name, context)
    assert type(method) is info.cls
    result = method(x, target=1)
    assert result.method.split("(")[0] == info.name
    recorded = set(result.params)
    wanted = {spec.name for spec in info.settings if spec.record}
    assert wanted <= recorded, wanted - recorded
    assert (result.delta is not None) == info.completeness or info.wrapper
    maps = viz.saliency_maps(result, size=(16, 16))  # a layer's map is drawn upsampled
    assert maps.shape == (2, 16, 16) and np.isfinite(maps).all()
    picture = viz.overlay(x[0].permute(1, 2, 0).numpy(), maps[0])
    assert picture.shape == (16, 16, 3) and np.isfinite(picture).all()
    # maps of signed methods are drawn signed (for or against the class), others as magnitude
    assert viz.default_reduction(result.method) == ("sum" if info.signed else "max_abs")
    assert viz.drawn_signed(result, "sum") is (True if info.signed else None)


@pytest.mark.parametrize("info", TOKEN_ENTRIES, ids=_ids(TOKEN_ENTRIES))
def test_every_token_method_runs_by_name_on_a_tiny_bert_and_draws(info):
    pytest.importorskip("transformers")
    from attrib.text import explain_tokens
    from tests.text.conftest import tiny_classifier

    settings = {"samples": 8, "seed": 0} if info.takes("samples") else {}
    result = explain_tokens(tiny_classifier(), ["good w1 w2", "bad w3"], info.name, **settings)
    assert result.method == info.name
    scores = result.scores("sum")
    html = viz.token_html(scores)
    assert "good" in html and "w3" in html
    figure = viz.token_figure(scores, index=1)
    assert figure.axes


def test_anchors_run_and_draw_as_highlighted_words():
    info = catalogue.find("AnchorsText")
    assert info.inputs == "text"

    def classifier(texts: list[str]) -> list[int]:
        return [int("good" in t.split()) for t in texts]

    anchor = info.cls(classifier, seed=0, max_samples=2000)("a good film")
    assert anchor.words == ("good",)
    words = anchor.word_scores()
    assert words == [("a", 0.0), ("good", 1.0), ("film", 0.0)]
    figure = viz.token_figure([s for _, s in words], tokens=[w for w, _ in words])
    assert figure.axes


# --- settings said once ---------------------------------------------------------------------


@pytest.mark.parametrize("info", ENTRIES, ids=_ids(ENTRIES))
def test_the_signature_lists_the_declared_settings(info):
    parameters = inspect.signature(info.cls).parameters
    assert next(iter(parameters)) == info.cls.first_argument
    assert set(list(parameters)[1:]) == set(info.setting_names)
    for spec in info.settings:
        default = parameters[spec.name].default
        assert default is inspect.Parameter.empty if spec.required else default == spec.default


def test_an_unknown_setting_lists_the_settings_and_the_closest_name():
    with pytest.raises(SettingError, match=r"stepz.*steps, rule.*Did you mean 'steps'") as err:
        attrib.IntegratedGradients(GapCNN().eval(), stepz=4)
    assert "IntegratedGradients" in str(err.value)
    with pytest.raises(SettingError, match=r"window: expected .* Occlusion needs it"):
        attrib.Occlusion(GapCNN().eval())
    with pytest.raises(SettingError, match="positional"):
        attrib.GradCAM(GapCNN().eval(), "features", "extra")
    with pytest.raises(SettingError, match="twice"):
        attrib.GradCAM(GapCNN().eval(), "features", layer="features")


def test_settings_are_fixed_after_construction_and_replace_makes_a_copy():
    ig = attrib.IntegratedGradients(GapCNN().eval(), steps=8, baseline="black")
    with pytest.raises(SettingError, match=r"replace\(steps=...\)"):
        ig.steps = 16
    other = ig.replace(steps=16)
    assert (ig.steps, other.steps, other.baseline) == (8, 16, "black")
    assert len(other.alphas) == 16 and len(ig.alphas) == 8  # derived state follows
    # a default resolved in configure is resolved again: 8 nodes start adaptive refinement
    assert attrib.IntegratedGradients(GapCNN().eval()).replace(tolerance=1e-3).steps == 8
    wrapped = attrib.SmoothGrad(ig, samples=4).replace(samples=6)
    assert wrapped.method is ig and wrapped.samples == 6


def test_subclasses_change_defaults_and_fix_settings():
    assert attrib.CAM.setting_specs()[1].name == "relu"  # redeclared: own settings first
    assert (
        attrib.CAM(GapCNN().eval()).relu is False and attrib.GradCAM(GapCNN().eval()).relu is True
    )
    # KernelSHAP fixes the sampler, kernel and efficiency of its linear surrogate
    assert not {"sampler", "kernel", "efficiency"} & set(attrib.KernelSHAP.setting_names())
    with pytest.raises(SettingError, match="a setting of KernelSHAP"):
        attrib.KernelSHAP(GapCNN().eval(), efficiency=False)
    lime = attrib.LIME(GapCNN().eval(), kernel_width=0.5)
    assert lime.kernel.width == 0.5  # derived from its setting in configure
    blur = attrib.BlurIG(GapCNN().eval(), max_sigma=10)
    assert blur.path.max_sigma == 10.0 and "baseline" not in blur.settings()


def test_methods_pickle_with_their_settings():
    cam = attrib.GradCAM(GapCNN().eval(), "features", relu=False)
    again = pickle.loads(pickle.dumps(cam))
    assert again.settings() == cam.settings() and again.relu is False


def test_checks_refuse_bad_values_with_what_is_allowed():
    for cls, settings, allowed in [
        (attrib.SmoothGrad, {"samples": 0}, "an int >= 1"),
        (attrib.GradCAMPlusPlus, {"eps": -1.0}, "a finite number >= 0"),
        (attrib.ScoreCAM, {"weighting": "max"}, "one of ('softmax', 'probability')"),
        (attrib.Saliency, {"abs": 1}, "True or False"),
        (attrib.IntegratedGradients, {"value_range": (1, 0)}, "(low, high) with low < high"),
    ]:
        first = attrib.Saliency(GapCNN().eval()) if cls is attrib.SmoothGrad else GapCNN().eval()
        with pytest.raises(SettingError) as err:
            cls(first, **settings)
        assert allowed in str(err.value), (cls, str(err.value))


def test_names_users_type_find_the_method():
    for typed, name in [
        ("integrated_gradients", "IntegratedGradients"),
        ("IG", "IntegratedGradients"),
        ("InputXGradient", "GradientXInput"),  # Captum's names
        ("GradientShap", "ExpectedGradients"),
        ("smoothgrad_sq", "SmoothGradSquared"),
        ("ShapleyValueSampling", "ShapleySampling"),
        ("deconvnet", "Deconvolution"),
        ("Grad-CAM++", "GradCAMPlusPlus"),
        ("kernel-shap", "KernelSHAP"),
    ]:
        assert catalogue.find(typed).name == name, typed
    # among tokens, "kernel_shap" is KernelSHAP over tokens
    assert catalogue.find("kernel_shap", inputs=["tokens"]).name == "TokenKernelSHAP"
    # an alias never shadows another method's own name within one input kind
    for info in ENTRIES:
        for other in ENTRIES:
            if other is not info and other.inputs == info.inputs:
                assert catalogue.key(other.name) not in info.aliases, (info.name, other.name)
    with pytest.raises(SettingError, match=r"Did you mean IntegratedGradients"):
        catalogue.find("integrated_gradient")


def test_attrib_methods_name_prints_the_formula_and_every_setting():
    from argparse import Namespace

    from attrib.cli import listing

    with redirect_stdout(io.StringIO()) as out:
        assert listing.run(Namespace(name="occlusion")) == 0
    text = out.getvalue()
    assert "Occlusion (Zeiler and Fergus 2014)" in text and "formula:" in text
    for spec in attrib.Occlusion.setting_specs():
        assert f"    {spec.name}" in text, spec.name
    assert "    window: " in text  # required: no default shown


def test_settings_given_at_call_time_hold_for_that_call_only():
    model = GapCNN().eval()
    x = torch.rand(2, 3, 16, 16)
    blurred = x * 0.5  # per-batch data: one baseline per image
    ig = attrib.IntegratedGradients(model, steps=8)
    at_call = ig(x, target=1, baseline=blurred)
    built = attrib.IntegratedGradients(model, steps=8, baseline=blurred)(x, target=1)
    torch.testing.assert_close(at_call.values, built.values, rtol=0, atol=0)
    assert at_call.params["baseline"] == "tensor" and ig.baseline == 0.0  # unchanged
    # through a wrapper: its own settings stay with it, the others reach the wrapped method
    smooth = attrib.SmoothGrad(ig, samples=2, seed=0)
    gray = torch.full((3, 16, 16), 0.5)  # one sample's shape: every noisy row's baseline
    wrapped = smooth(x, target=1, baseline=gray, samples=3)
    assert wrapped.params["samples"] == 3 and wrapped.params["inner"]["baseline"] == "tensor"
    expected = attrib.SmoothGrad(ig.replace(baseline=gray), samples=3, seed=0)(x, target=1)
    torch.testing.assert_close(wrapped.values, expected.values, rtol=0, atol=0)
    # a tensor with one row per sample reaches each noisy copy as its own sample's row: with
    # sigma=0 every copy is x itself, so the mean is IG from each image's own baseline
    still = attrib.SmoothGrad(ig, samples=2, sigma=0.0)
    per_image = still(x, target=1, baseline=blurred)
    torch.testing.assert_close(per_image.values, built.values, rtol=1e-5, atol=1e-6)
    assert per_image.params["inner"]["baseline"] == "tensor"
    assert smooth.samples == 2 and smooth.method is ig
    with pytest.raises(SettingError, match=r"stepz: expected a setting of IntegratedGradients"):
        smooth(x, target=1, stepz=4)
    with pytest.raises(SettingError, match=r"baseline: expected a setting of BlurIG"):
        attrib.BlurIG(model)(x, target=1, baseline=0.0)  # fixed: the path is the blur


# --- methods that need a Python module --------------------------------------------------------


def test_the_methods_that_hook_or_replace_backward_rules_say_they_need_a_python_module():
    needs = {i.name for i in ENTRIES if i.python_module}
    hooking = {i.name for i in ENTRIES if i.family in ("cam", "propagation")}
    hooking.add("LayerConductance")  # it hooks its layer to take the tangent there
    assert needs == hooking
    assert all(
        i.python_module in (catalogue.HOOKS_A_LAYER, catalogue.RULES_IN_PYTHON)
        for i in ENTRIES
        if i.python_module
    )


# torch.jit.script is deprecated (warned at scripting and at a first call), and users still load
# TorchScript files
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("info", IMAGE_ENTRIES, ids=_ids(IMAGE_ENTRIES))
def test_a_torchscript_model_is_refused_up_front_or_explained_as_the_python_one(info):
    """CAM methods hooked a ScriptModule and died with a raw RuntimeError; propagation methods
    would see none of a compiled graph's calls. Methods that only call the model give the
    Python model's values."""
    from attrib.core.errors import LayerError

    model = GapCNN().eval()
    scripted = torch.jit.script(model)
    x = torch.rand(2, 3, 16, 16)
    settings = dict(CHEAP) if info.name in SAMPLED else {}
    if info.python_module:
        layer = {"layer": "features.5"} if info.takes("layer") else {}
        with pytest.raises(LayerError, match="TorchScript") as err:
            info.cls(scripted, **layer)(x, target=1)
        assert info.python_module in str(err.value) and "Saliency" in str(err.value)
        return
    context = ImageContext(scripted, (16, 16), references=x.flip(0), settings=settings)
    ours = build_for_image(info.name, context)(x, target=1)
    context.model = model
    python = build_for_image(info.name, context)(x, target=1)
    # the same float32 operations, fused or not by the TorchScript executor: allow rounding
    # that grows with the values' size, relative to float32's epsilon
    scale = float(python.values.abs().max()) or 1.0
    torch.testing.assert_close(ours.values, python.values, rtol=1e-4, atol=1e-5 * scale)

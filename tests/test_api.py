from __future__ import annotations

import pytest
import torch

import attrib
from attrib import AttribError, GradientXInput, IntegratedGradients, Saliency, explain
from tests.models import LinearModel


def test_explain_by_name_and_class():
    model = LinearModel().eval()
    x = torch.randn(3, 6)
    by_name = explain(model, x, "saliency", target=1)
    by_class = explain(model, x, Saliency, target=1)
    torch.testing.assert_close(by_name.values, by_class.values)
    assert explain(model, x, "gradient_x_input", target=1).method == "GradientXInput"
    assert explain(model, x, "Gradient-X-Input", target=1).method == "GradientXInput"


def test_unknown_method_suggests_a_name():
    with pytest.raises(AttribError, match="saliency"):
        explain(LinearModel().eval(), torch.randn(1, 6), "salency")


def test_settings_are_recorded_and_constructor_does_not_touch_the_model():
    class Untouchable(torch.nn.Module):
        def __getattr__(self, name):
            raise AssertionError("constructor touched the model")

    Saliency(Untouchable(), abs=True)
    result = Saliency(LinearModel().eval(), abs=True, batch_size=2)(torch.randn(3, 6), target=0)
    assert result.params["abs"] is True and result.params["batch_size"] == 2
    assert (result.values >= 0).all()
    assert repr(GradientXInput(LinearModel(), batch_size=4)) == "GradientXInput(batch_size=4)"


def test_bad_batch_size_setting():
    with pytest.raises(AttribError, match="batch_size"):
        Saliency(LinearModel(), batch_size=0)


def test_public_names():
    for name in ["Saliency", "GradientXInput", "Attribution", "AttribError", "explain"]:
        assert hasattr(attrib, name)


def test_explain_with_a_wrapper_builds_the_inner_method():
    from attrib import IntegratedGradients, SmoothGrad

    model = LinearModel().double().eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    got = explain(
        model,
        x,
        "smoothgrad",
        target=1,
        inner="integrated_gradients",
        samples=3,
        seed=0,
        inner_settings={"steps": 4},
    )
    want = SmoothGrad(IntegratedGradients(model, steps=4), samples=3, seed=0)(x, target=1)
    assert got.method == "SmoothGrad(IntegratedGradients)"
    torch.testing.assert_close(got.values, want.values)
    with pytest.raises(AttribError, match="inner"):
        explain(model, x, "smoothgrad", inner="vargrad")


def test_a_misspelt_setting_lists_the_settings_and_the_closest_name():
    with pytest.raises(
        AttribError,
        match=r"stepz: expected a setting of IntegratedGradients.*"
        r"Did you mean 'steps'",
    ):
        explain(LinearModel().eval(), torch.randn(1, 6), "integrated_gradients", stepz=4)
    with pytest.raises(AttribError, match=r"Did you mean 'steps'"):
        IntegratedGradients(LinearModel().eval())(torch.randn(1, 6), target=0, stepz=4)

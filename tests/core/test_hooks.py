"""Context managers: every change undone, also when the body raises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError
from attrib.core.hooks import (
    evaluation_mode,
    frozen_parameters,
    hooked,
    params_overridden,
    prepared,
    swapped,
)
from tests.conftest import assert_state_restored, model_state
from tests.models import GapCNN, ResidualNet


class BoomError(Exception):
    pass


def test_hooked_removes_hooks_even_on_error():
    model = GapCNN().eval()
    before = model_state(model)
    seen = []
    with pytest.raises(BoomError):
        with hooked(
            model.fc,
            forward=lambda m, a, o: seen.append("f"),
            forward_pre=lambda m, a: seen.append("p"),
            backward=lambda m, gi, go: seen.append("b"),
        ):
            x = torch.randn(1, 3, 12, 12, requires_grad=True)
            model(x).sum().backward()
            raise BoomError
    assert seen == ["p", "f", "b"]
    x.grad = None
    model.zero_grad(set_to_none=True)
    assert_state_restored(model, before)


def test_forward_hook_can_replace_the_output():
    model = nn.Sequential(nn.Linear(2, 2), nn.Identity()).eval()
    with hooked(model[1], forward=lambda m, a, o: o * 0):
        assert model(torch.ones(1, 2)).abs().sum() == 0
    assert model(torch.ones(1, 2)).abs().sum() > 0


def test_swapped_puts_the_original_back():
    model = ResidualNet().eval()
    original = model.block1.relu
    with pytest.raises(BoomError):
        with swapped(model, "block1.relu", nn.Identity()):
            assert isinstance(model.block1.relu, nn.Identity)
            raise BoomError
    assert model.block1.relu is original
    with pytest.raises(LayerError, match=r"block1\.relu"):
        with swapped(model, "block1.rel", nn.Identity()):
            pass


def test_params_overridden_restores_values_and_identity():
    model = GapCNN().eval()
    before = model_state(model)
    weight = model.fc.weight
    x = torch.randn(2, 3, 12, 12)
    with pytest.raises(BoomError):
        with params_overridden(
            model, {"fc.weight": torch.zeros_like(weight), "fc.bias": torch.ones(5)}
        ):
            assert torch.equal(model(x), torch.ones(2, 5))
            raise BoomError
    assert model.fc.weight is weight
    assert_state_restored(model, before)
    with pytest.raises(SettingError, match="shape"):
        with params_overridden(model, {"fc.weight": torch.zeros(3)}):
            pass
    with pytest.raises(LayerError, match=r"fc\.weight"):
        with params_overridden(model, {"fc.weigth": torch.zeros(5, 16)}):
            pass
    assert_state_restored(model, before)


def test_frozen_parameters_restores_each_flag():
    model = GapCNN().eval()
    model.fc.bias.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with pytest.raises(BoomError):
        with frozen_parameters(model):
            assert not any(p.requires_grad for p in model.parameters())
            raise BoomError
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags


def test_evaluation_mode_restores_mixed_modes():
    model = GapCNN().eval()
    model.features.train()  # only part of the model in training mode
    modes = {n: m.training for n, m in model.named_modules()}
    with pytest.warns(UserWarning):
        with pytest.raises(BoomError):
            with evaluation_mode(model):
                assert not any(m.training for m in model.modules())
                raise BoomError
    assert {n: m.training for n, m in model.named_modules()} == modes


def test_prepared_passes_plain_callables_through():
    def f(x):
        return x

    with prepared(f) as got:
        assert got is f

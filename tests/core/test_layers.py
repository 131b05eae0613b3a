from __future__ import annotations

import pytest
from torch import nn

from attrib.core.errors import LayerError
from attrib.core.layers import last_conv_layer, layer_name, resolve_layer
from tests.models import MLP, GapCNN, ResidualNet, torchvision_model


def test_resolve_by_name_and_by_module():
    model = ResidualNet()
    assert resolve_layer(model, "block2.conv1") is model.block2.conv1
    assert resolve_layer(model, model.block2.conv1) is model.block2.conv1
    assert layer_name(model, model.block2.conv1) == "block2.conv1"


def test_wrong_name_lists_close_names():
    model, _ = torchvision_model("resnet18")
    with pytest.raises(LayerError) as info:
        resolve_layer(model, "layer4.1.conv3")
    assert "layer4.1.conv2" in str(info.value)
    assert "layer4.1.conv1" in str(info.value)
    with pytest.raises(LayerError, match="layer4"):
        resolve_layer(model, "layr4")


def test_foreign_module_and_wrong_type():
    with pytest.raises(LayerError, match="submodule of this model"):
        resolve_layer(GapCNN(), nn.Conv2d(1, 1, 1))
    with pytest.raises(LayerError):
        resolve_layer(GapCNN(), 3)


def test_last_conv_layer():
    assert last_conv_layer(GapCNN()) == "features.5"
    assert last_conv_layer(ResidualNet()) == "block2.conv2"
    assert last_conv_layer(torchvision_model("resnet18")[0]) == "layer4.1.conv2"
    assert last_conv_layer(torchvision_model("vgg11")[0]) == "features.18"
    with pytest.raises(LayerError, match="layer="):
        last_conv_layer(MLP())

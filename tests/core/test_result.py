from __future__ import annotations

import numpy as np
import pytest
import torch

from attrib import Attribution
from attrib.core.errors import SettingError


def test_saliency_reductions_follow_their_formulas():
    # channel values at one pixel: (3, -4, 0) -> max_abs 4, sum -1, abs_sum 7, l2 5
    values = torch.tensor([3.0, -4.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    result = Attribution(values)
    for reduce, want in {"max_abs": 4.0, "sum": -1.0, "abs_sum": 7.0, "l2": 5.0}.items():
        got = result.saliency(reduce)
        assert got.shape == (2, 2, 2)
        assert torch.all(got == want), reduce
    with pytest.raises(SettingError, match="max_abs"):
        result.saliency("mean")


def test_maps_without_channels():
    cam = Attribution(torch.tensor([[[-1.0, 2.0]]]), channel_dim=None)
    assert cam.saliency("sum").tolist() == [[[-1.0, 2.0]]]
    assert cam.saliency().tolist() == [[[1.0, 2.0]]]


def test_numpy_and_dicts():
    result = Attribution({"a": torch.ones(1, 2), "b": torch.zeros(1, 3, 2, 2)})
    arrays = result.numpy()
    assert isinstance(arrays["a"], np.ndarray) and arrays["b"].shape == (1, 3, 2, 2)
    assert result.saliency(key="b").shape == (1, 2, 2)
    with pytest.raises(SettingError, match="key"):
        result.saliency()


def test_attribution_is_frozen():
    result = Attribution(torch.zeros(1))
    with pytest.raises(AttributeError):
        result.values = torch.ones(1)

"""Every target form, on a batch, against the linear model's known gradient W[c]."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from attrib import AttribError, Saliency
from attrib.core.errors import ModelOutputError, TargetError
from attrib.core.target import given_indices, resolve_target, select_output
from tests.models import DictOutputNet, LinearModel


@pytest.fixture
def linear():
    return LinearModel(n_in=6, n_out=3).eval()


def expected_saliency(model: LinearModel, classes: list[int]) -> torch.Tensor:
    # d(x @ W.T + b)[c] / dx = W[c], whatever x is
    return model.linear.weight.detach()[classes]


@pytest.mark.parametrize(
    "target, classes",
    [
        (2, [2, 2, 2, 2]),
        ([0, 1, 2, 1], [0, 1, 2, 1]),
        ((2, 2, 0, 0), [2, 2, 0, 0]),
        (torch.tensor([1, 0, 1, 2]), [1, 0, 1, 2]),
        (torch.tensor(1), [1, 1, 1, 1]),
    ],
)
def test_index_targets(linear, target, classes):
    x = torch.randn(4, 6)
    result = Saliency(linear)(x, target=target)
    torch.testing.assert_close(result.values, expected_saliency(linear, classes))
    assert result.target.tolist() == classes


def test_predicted_target_is_the_argmax_at_the_input(linear):
    x = torch.randn(16, 6)
    predicted = linear(x).argmax(1).tolist()
    result = Saliency(linear)(x, target="predicted")
    assert result.target.tolist() == predicted
    torch.testing.assert_close(result.values, expected_saliency(linear, predicted))


def test_callable_target_gets_the_output_and_any_differentiable_score(linear):
    x = torch.randn(4, 6)
    # score = logit0 - logit2: gradient W[0] - W[2]
    result = Saliency(linear)(x, target=lambda out: out[:, 0] - out[:, 2])
    w = linear.linear.weight.detach()
    torch.testing.assert_close(result.values, (w[0] - w[2]).expand(4, 6))
    assert callable(result.target)


def test_no_target_for_a_single_output_model():
    model = nn.Linear(5, 1).eval()
    x = torch.randn(3, 5)
    result = Saliency(model)(x)
    torch.testing.assert_close(result.values, model.weight.detach().expand(3, 5))
    one_d = nn.Sequential(nn.Linear(5, 1), nn.Flatten(0)).eval()
    torch.testing.assert_close(Saliency(one_d)(x).values, one_d[0].weight.detach().expand(3, 5))


def test_no_target_for_a_multi_class_model_says_what_to_pass(linear):
    with pytest.raises(TargetError, match="predicted"):
        Saliency(linear)(torch.randn(2, 6))


@pytest.mark.parametrize("bad", [3, -1, [0, 5], torch.tensor([0, 3])])
def test_target_outside_the_class_range_names_the_number_of_classes(linear, bad):
    with pytest.raises(AttribError, match=r"3 classes"):
        Saliency(linear)(torch.randn(2, 6), target=bad)


@pytest.mark.parametrize(
    "bad", [[0, 1, 2], torch.tensor([0.0, 1.0]), "best", 1.5, True, torch.tensor([[0, 1]])]
)
def test_malformed_targets(linear, bad):
    with pytest.raises(TargetError):
        Saliency(linear)(torch.randn(2, 6), target=bad)


def test_callable_returning_the_wrong_shape(linear):
    with pytest.raises(TargetError, match="one score per row"):
        Saliency(linear)(torch.randn(3, 6), target=lambda out: out)


def test_dict_output_uses_logits_and_output_selector():
    model = DictOutputNet().eval()
    x = torch.randn(3, 6)
    by_default = Saliency(model)(x, target=1)
    by_key = Saliency(model, output="logits")(x, target=1)
    torch.testing.assert_close(by_default.values, by_key.values)
    by_features = Saliency(model, output="features")(x, target=4)
    # features = relu(body(x)): the gradient of feature 4 is W_body[4] where it is active
    active = (model.body(x)[:, 4] > 0).float().unsqueeze(1)
    torch.testing.assert_close(
        by_features.values, active * model.body[0].weight.detach()[4].expand(3, 6)
    )


class FakeModelOutput(OrderedDict):
    """Stands in for transformers' ModelOutput: a mapping with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def test_output_forms():
    logits = torch.randn(2, 4)
    assert select_output(logits) is logits
    assert select_output(FakeModelOutput(logits=logits, hidden=logits)) is logits
    assert select_output({"scores": logits}) is logits
    assert select_output([logits]) is logits
    assert select_output((logits, logits * 2), 1).equal(logits * 2)
    assert select_output({"a": logits, "b": logits + 1}, "b").equal(logits + 1)
    assert select_output((logits,), lambda out: out[0] * 3).equal(logits * 3)
    with pytest.raises(ModelOutputError, match="output="):
        select_output((logits, logits))
    with pytest.raises(ModelOutputError, match="output="):
        select_output({"a": logits, "b": logits})
    with pytest.raises(ModelOutputError):
        select_output({"a": logits}, "missing")


def test_tuple_output_model_with_selector(linear):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = linear

        def forward(self, x):
            return self.inner(x), x.sum(1)

    x = torch.randn(2, 6)
    with pytest.raises(ModelOutputError):
        Saliency(TwoHeads().eval())(x, target=0)
    result = Saliency(TwoHeads().eval(), output=0)(x, target=0)
    torch.testing.assert_close(result.values, expected_saliency(linear, [0, 0]))


def test_segmentation_output_needs_a_callable():
    logits = torch.randn(2, 3, 4, 4)
    with pytest.raises(TargetError, match="callable"):
        resolve_target(1, logits, 2)
    resolved = resolve_target(lambda out: out[:, 1].sum((1, 2)), logits, 2)
    torch.testing.assert_close(resolved.scores(logits), logits[:, 1].sum((1, 2)))


def test_model_that_drops_the_batch_dimension():
    model = nn.Sequential(nn.Linear(3, 2), nn.Flatten(0)).eval()  # (N, 2) -> (2N,)
    with pytest.raises(ModelOutputError, match="first dimension"):
        Saliency(model)(torch.randn(3, 3), target=0)


def test_given_indices_names_classes_without_a_model_output():
    assert given_indices(3, 2, torch.device("cpu")).tolist() == [3, 3]
    assert given_indices([4, 1], 2, torch.device("cpu")).tolist() == [4, 1]
    assert given_indices(torch.tensor(7), 3, torch.device("cpu")).tolist() == [7, 7, 7]
    for needs_output_or_none in ("predicted", None, lambda out: out[:, 0]):
        assert given_indices(needs_output_or_none, 2, torch.device("cpu")) is None
    with pytest.raises(TargetError, match=r"one class per sample \(2 items\)"):
        given_indices([1, 2, 3], 2, torch.device("cpu"))
    with pytest.raises(TargetError, match="integer tensor"):
        given_indices(torch.tensor([0.5, 1.0]), 2, torch.device("cpu"))

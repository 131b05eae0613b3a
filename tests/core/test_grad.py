"""The gradient primitives: right gradients, nothing left behind, clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attrib import AttribError, GradientXInput, Saliency
from attrib.core.errors import AttribWarning, InputError, LayerError, ModelOutputError
from attrib.core.grad import (
    batched_input_gradients,
    decide_target,
    input_gradients,
    layer_gradients,
)
from attrib.core.layers import resolve_layer
from attrib.core.target import resolve_target
from tests.conftest import assert_state_restored, model_state
from tests.models import (
    GapCNN,
    RaisingNet,
    ResidualNet,
    TinyTransformer,
    TwoInputNet,
    absolute_forward,
)


def reference_input_gradient(model, x, target):
    """The textbook way: x.requires_grad_, a full backward, read x.grad."""
    x = x.clone().requires_grad_(True)
    model(x).gather(1, torch.as_tensor(target).view(-1, 1)).sum().backward()
    grad = x.grad
    model.zero_grad(set_to_none=True)
    return grad


def test_input_gradients_match_the_textbook_backward():
    model = GapCNN().eval()
    x = torch.randn(4, 3, 12, 12)
    got = Saliency(model)(x, target=[0, 1, 2, 3])
    torch.testing.assert_close(got.values, reference_input_gradient(model, x, [0, 1, 2, 3]))


def test_per_sample_targets_take_one_forward():
    model = GapCNN().eval()
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    Saliency(model)(torch.randn(6, 3, 12, 12), target=[0, 1, 2, 3, 4, 0])
    assert calls == [6]


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_chunked_batches_equal_one_batch(batch_size):
    model = GapCNN().double().eval()
    x = torch.randn(5, 3, 12, 12, dtype=torch.float64)
    whole = Saliency(model)(x, target="predicted")
    chunked = Saliency(model, batch_size=batch_size)(x, target="predicted")
    torch.testing.assert_close(chunked.values, whole.values, rtol=1e-6, atol=1e-12)
    assert chunked.target.tolist() == whole.target.tolist()


def test_gradient_x_input_is_gradient_times_input():
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    grad = reference_input_gradient(model, x, [1, 1])
    torch.testing.assert_close(GradientXInput(model)(x, target=1).values, grad * x)


def test_dict_inputs_give_dict_attributions():
    model = TwoInputNet().eval()
    x = {"image": torch.randn(3, 6), "extra": torch.randn(3, 3)}
    got = Saliency(model)(x, target=2)
    tracked = {k: v.clone().requires_grad_() for k, v in x.items()}
    model(**tracked)[:, 2].sum().backward()
    for key in x:
        torch.testing.assert_close(got.values[key], tracked[key].grad)


def test_state_is_restored_after_a_normal_call():
    model = ResidualNet().eval()
    model.block1.conv1.weight.requires_grad_(False)  # a mix of frozen and trainable
    before = model_state(model)
    Saliency(model)(torch.randn(2, 3, 8, 8), target=0)
    layer_gradients(
        model, torch.randn(2, 3, 8, 8), model.block1, resolve_target(0, torch.zeros(2, 4), 2)
    )
    assert_state_restored(model, before)


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_state_is_restored_when_the_model_raises(where):
    model = RaisingNet(where).eval()
    before = model_state(model)
    with pytest.raises(RuntimeError, match=f"boom in {where}"):
        Saliency(model)(torch.randn(2, 4), target=0)
    assert_state_restored(model, before)
    with pytest.raises(RuntimeError, match=f"boom in {where}"):
        layer_gradients(model, torch.randn(2, 4), model.fc, 0)
    assert_state_restored(model, before)


def test_training_mode_warns_explains_in_eval_mode_and_restores_it():
    model = GapCNN()
    model.train()
    before = model_state(model)
    x = torch.randn(3, 3, 12, 12)
    with pytest.warns(AttribWarning, match="training mode"):
        got = Saliency(model)(x, target=0)
    assert_state_restored(model, before)  # running statistics untouched, train mode back
    assert model.training
    torch.testing.assert_close(got.values, reference_input_gradient(model.eval(), x, [0, 0, 0]))


def test_no_gradient_is_computed_for_parameters():
    model = GapCNN().eval()
    seen = []
    for p in model.parameters():
        p.register_hook(lambda g: seen.append(g))
    Saliency(model)(torch.randn(2, 3, 12, 12), target=0)
    assert seen == []


def test_works_under_no_grad_and_inference_mode():
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    want = reference_input_gradient(model, x, [3, 3])
    with torch.no_grad():
        torch.testing.assert_close(Saliency(model)(x, target=3).values, want)
    with torch.inference_mode():
        frozen_x = x.clone()
    torch.testing.assert_close(Saliency(model)(frozen_x, target=3).values, want)


def test_user_input_is_not_modified_and_gets_no_grad():
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    copy = x.detach().clone()
    Saliency(model)(x, target=0)
    assert x.grad is None and torch.equal(x.detach(), copy)


def test_integer_inputs_point_to_the_embedding_layer():
    model = TinyTransformer().eval()
    ids = torch.randint(0, 20, (2, 5))
    with pytest.raises(InputError, match="embedding"):
        Saliency(model)(ids, target=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs_are_refused(bad):
    x = torch.randn(2, 6)
    x[1, 3] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        Saliency(nn.Linear(6, 2).eval())(x, target=0)


def test_opposite_infinities_and_overflowing_sums_are_told_apart():
    # +inf and -inf sum to NaN, still refused; finite values whose float32 sum overflows
    # (3e38 * 4) are finite inputs and are explained
    x = torch.zeros(2, 6)
    x[0, 0], x[1, 1] = float("inf"), -float("inf")
    with pytest.raises(InputError, match="2 NaN or Inf"):
        Saliency(nn.Linear(6, 2).eval())(x, target=0)
    big = torch.full((2, 6), 3e38)
    result = Saliency(nn.Linear(6, 2).eval())(big, target=0)
    assert result.values.shape == (2, 6)


@pytest.mark.parametrize(
    "bad",
    [
        torch.tensor(1.0),
        torch.zeros(0, 3),
        [1.0, 2.0],
        {"a": torch.zeros(2, 3), "b": torch.zeros(3, 3)},
    ],
)
def test_malformed_inputs(bad):
    with pytest.raises(InputError):
        Saliency(nn.Linear(3, 2).eval())(bad, target=0)


def test_a_detached_model_output_is_an_error():
    class Detaching(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x).detach()

    with pytest.raises(ModelOutputError, match="no_grad"):
        Saliency(Detaching().eval())(torch.randn(2, 3), target=0)


def test_plain_callables_are_models_too():
    w = torch.randn(4, 3)
    got = Saliency(lambda x: x @ w)(torch.randn(2, 4), target=1)
    torch.testing.assert_close(got.values, w[:, 1].expand(2, 4))


def test_float64_end_to_end():
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    got = Saliency(model)(x, target=0)
    assert got.values.dtype == torch.float64
    torch.testing.assert_close(got.values, reference_input_gradient(model, x, [0, 0]))


# ---- layer gradients -------------------------------------------------------------------


def test_layer_gradients_match_a_split_model():
    """Split GapCNN at features[4]: A = first part(x); f = rest(A); compare dF/dA."""
    model = GapCNN().eval()
    x = torch.randn(3, 3, 12, 12)
    got = layer_gradients(
        model, x, model.features[4], resolve_target([0, 1, 2], torch.zeros(3, 5), 3)
    )
    with torch.no_grad():
        a = model.features[:5](x)
    a.requires_grad_(True)
    score = model.fc(model.pool(model.features[5:](a)).flatten(1)).gather(
        1, torch.tensor([[0], [1], [2]])
    )
    (want,) = torch.autograd.grad(score.sum(), a)
    torch.testing.assert_close(got.activations, a.detach())
    torch.testing.assert_close(got.gradients, want)
    torch.testing.assert_close(got.scores, score.detach().squeeze(1))


def test_layer_followed_by_in_place_operations():
    """block1.bn2's output is changed in place (out += identity, ReLU(inplace=True))."""
    model = ResidualNet().eval()
    x = torch.randn(2, 3, 8, 8)
    got = layer_gradients(model, x, resolve_layer(model, "block1.bn2"), 3)
    b = model.block1
    with torch.no_grad():
        stem = model.stem(x)
        a = b.bn2(b.conv2(b.relu(b.bn1(b.conv1(stem)))))
    a.requires_grad_(True)
    rest = model.fc(model.pool(model.block2(torch.relu(a + stem))).flatten(1))[:, 3]
    (want,) = torch.autograd.grad(rest.sum(), a)
    torch.testing.assert_close(got.activations, a.detach())
    torch.testing.assert_close(got.gradients, want)


def test_layer_used_twice_is_refused():
    model = ResidualNet().eval()
    with pytest.raises(LayerError, match="ran 2 times"):
        layer_gradients(model, torch.randn(1, 3, 8, 8), model.block1.relu, 0)


def test_layer_not_run_and_layer_not_on_the_path():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)
            self.aux = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            h = self.body(x)
            return {"logits": self.head(h), "aux": self.aux(h)}

    model = TwoHeads().eval()
    with pytest.raises(LayerError, match="never called"):
        layer_gradients(model, torch.randn(2, 4), model.unused, 0)
    with pytest.raises(LayerError, match="not depend"):
        layer_gradients(model, torch.randn(2, 4), model.aux, 0)


def test_input_gradients_accept_an_unresolved_target():
    model = GapCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    got = input_gradients(model, x, "predicted")
    assert got.target.indices.tolist() == model(x).argmax(1).tolist()
    chunked = batched_input_gradients(model, x, "predicted", batch_size=1)
    torch.testing.assert_close(chunked.gradients, got.gradients)


def test_errors_are_value_errors_with_helpful_text():
    err = InputError("x", "a float tensor", torch.zeros(2, dtype=torch.long), "Cast it.")
    assert isinstance(err, AttribError) and isinstance(err, ValueError)
    assert "x: expected a float tensor, got a torch.int64 tensor of shape (2,)" in str(err)
    assert str(err).endswith("Cast it.")
    import pickle

    assert str(pickle.loads(pickle.dumps(err))) == str(err)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = GapCNN().eval()
    x = torch.randn(3, 3, 12, 12)
    cpu = Saliency(model)(x, target=[0, 1, 2]).values
    gpu = Saliency(model.cuda())(x.cuda(), target=[0, 1, 2]).values
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_batched_layer_gradients_equal_one_batch(batch_size):
    from attrib.core.grad import batched_layer_gradients

    model = GapCNN().double().eval()
    x = torch.randn(5, 3, 12, 12, dtype=torch.float64)
    whole = layer_gradients(model, x, model.features[4], "predicted")
    chunked = batched_layer_gradients(
        model, x, model.features[4], "predicted", batch_size=batch_size
    )
    torch.testing.assert_close(chunked.gradients, whole.gradients, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(chunked.activations, whole.activations)
    assert chunked.target.indices.tolist() == whole.target.indices.tolist()


# ---- decide_target: "predicted" decided once, in chunks, without gradients -----------------


class _Recorded(nn.Module):
    """Records every forward's rows and whether gradients were on; returns ``wrap(logits)``."""

    def __init__(self, inner: nn.Module, wrap=lambda logits: logits) -> None:
        super().__init__()
        self.inner, self.wrap = inner, wrap
        self.rows: list[int] = []
        self.grad_enabled: list[bool] = []
        self.eval()

    def forward(self, x):
        self.rows.append(x.shape[0])
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.wrap(self.inner(x))


def test_decide_target_gives_the_classes_of_model_argmax():
    model = GapCNN().eval()
    x = torch.randn(5, 3, 12, 12)
    before = model_state(model)
    target, logits = decide_target(model, x, "predicted")
    assert_state_restored(model, before)
    # one forward over the whole batch, as model(x) runs it: the same arithmetic
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(logits, expected)
    assert target.dtype == torch.long and target.tolist() == expected.argmax(-1).tolist()


@pytest.mark.parametrize("batch_size", [None, 1, 2, 3, 7, 100])
def test_decide_target_runs_ceil_n_over_batch_size_forwards_without_gradients(batch_size):
    inner = GapCNN().double().eval()
    model = _Recorded(inner)
    x = torch.randn(7, 3, 12, 12, dtype=torch.float64)
    target, logits = decide_target(model, x, "predicted", batch_size=batch_size)
    assert len(model.rows) == math.ceil(7 / (batch_size or 7))
    assert sum(model.rows) == 7 and max(model.rows) <= (batch_size or 7)
    assert not any(model.grad_enabled) and not logits.requires_grad
    with torch.no_grad():
        whole = inner(x)
    # Chunked forwards may add their terms in another order. Per logit the forward sums
    # 27 + 1, 72 + 1, 108 + 1 (convolutions and biases), 36 + 1 (the 6 x 6 average pool) and
    # 16 + 1 (the head) terms, and the batch norm rounds ~5 times: two forwards differ by at
    # most 269 eps M (M: the absolute forward; see absolute_forward).
    tolerance = 269 * torch.finfo(torch.float64).eps * float(absolute_forward(inner, x).max())
    torch.testing.assert_close(logits, whole, rtol=0, atol=tolerance)
    # every sample's top logit leads the next by more than that: the classes cannot differ
    top2 = whole.topk(2, dim=-1).values
    assert bool((top2[:, 0] - top2[:, 1] > 2 * tolerance).all())
    assert target.tolist() == whole.argmax(-1).tolist()


class DyadicLinear(nn.Module):
    """``q(x) @ W.T``: weights are multiples of 1/4 up to 3, ``q`` rounds inputs to multiples
    of 1/4 up to 3.75, so every product and partial sum is a multiple of 1/16 below 2^6:
    exact in float32, whatever the order of the sums."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.5, 1.0, 2.0, -0.5], [0.25, 0.75, -1.0, 1.0]])
        )
        self.eval()

    def forward(self, x):
        return (torch.round(x * 4).clamp(-15, 15) / 4) @ self.weight.T


@pytest.mark.parametrize(
    ("wrap", "output"),
    [
        (lambda z: {"a": -z, "b": z}, "b"),
        (lambda z: {"a": z, "b": -z}, "a"),
        (lambda z: (-z, z), 1),
        (lambda z: (z, -z), lambda out: out[0]),
    ],
)
def test_decide_target_honours_the_output_selector(wrap, output):
    # the entries of the output give opposite classes: only the selected one's arg-max is right
    inner = DyadicLinear()
    x = torch.randn(5, 4)
    model = _Recorded(inner, wrap)
    target, logits = decide_target(model, x, "predicted", output=output, batch_size=2)
    assert len(model.rows) == 3
    with torch.no_grad():
        selected = inner(x)
    assert target.tolist() == selected.argmax(-1).tolist()
    assert target.tolist() != (-selected).argmax(-1).tolist()
    # exact sums (DyadicLinear): chunked or not, the same numbers
    assert torch.equal(logits, selected)
    with pytest.raises(ModelOutputError, match="output"):
        decide_target(model, x, "predicted")  # two tensors: which one is ambiguous


def test_decide_target_returns_other_targets_as_given():
    model = GapCNN().eval()
    x = torch.randn(3, 3, 12, 12)
    assert decide_target(model, x, 2)[0] == 2
    assert decide_target(model, x, [0, 4, 1])[0] == [0, 4, 1]

    def score(out):
        return out[:, 1] - out[:, 0]

    assert decide_target(model, x, score)[0] is score
    resolved = resolve_target([3, 3, 0], model(x), 3)
    assert decide_target(model, x, resolved)[0].tolist() == [3, 3, 0]
    with pytest.raises(AttribError, match="class indices"):
        decide_target(model, x, 9)  # checked against the model's 5 classes

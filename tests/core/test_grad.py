"""The gradient primitives: right gradients, nothing left behind, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib import AttribError, GradientXInput, Saliency
from attrib.core.errors import AttribWarning, InputError, LayerError, ModelOutputError
from attrib.core.grad import batched_input_gradients, input_gradients, layer_gradients
from attrib.core.layers import resolve_layer
from attrib.core.target import resolve_target
from tests.conftest import assert_state_restored, model_state
from tests.models import GapCNN, RaisingNet, ResidualNet, TinyTransformer, TwoInputNet


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

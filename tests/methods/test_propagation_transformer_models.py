"""LRP (AttnLRP, CP-LRP) and DeepLIFT on transformers as Hugging Face and torchvision build
them: BERT, DistilBERT, RoBERTa, GPT-2, ViT (Hugging Face and torchvision), the shipped MiniLM
sentiment classifier. Small configs with random weights, float64.

What is checked on each: eager and SDPA attention give the same relevance; CP-LRP conserves
``f_c(x)`` exactly once nothing absorbs relevance (biases and constant embeddings zeroed, no
stabiliser); AttnLRP's gap is then exactly what its softmax rule leaves out; DeepLIFT sums to
``f(x) - f(x')``; the LRP-0 forms of both composites are gradient x input of the model with
the detached quantities (derived below); the model is left as found.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from attrib import GradientXInput
from attrib.core.target import select_output
from attrib.methods.propagation import CPLRP, LRP, AttnLRP, DeepLIFT
from attrib.methods.propagation.lrp.transformer import SoftmaxRelevance
from tests.conftest import assert_state_restored, model_state

transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models on two shared cores: one intra-op thread each (see tests/text/conftest)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Logits(nn.Module):
    """A Hugging Face model as ``x -> logits`` (the last position's, for a causal LM)."""

    def __init__(self, model: nn.Module, key: str = "inputs_embeds", last: bool = False) -> None:
        super().__init__()
        self.model, self.key, self.last = model, key, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(**{self.key: x}).logits
        return logits[:, -1] if self.last else logits


TEXT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
INIT = 0.2  # larger than Hugging Face's 0.02, so that logits are not all ~0


def _text_input(n: int) -> torch.Tensor:
    return torch.randn(n, 5, 16, dtype=torch.float64)


def bert(attn: str) -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=30, attn_implementation=attn, initializer_range=INIT, **TEXT
    )
    return Logits(transformers.BertForSequenceClassification(config))


def distilbert(attn: str) -> nn.Module:
    config = transformers.DistilBertConfig(
        vocab_size=30, dim=16, n_layers=2, n_heads=2, hidden_dim=32, attn_implementation=attn,
        initializer_range=INIT,
    )  # fmt: skip
    return Logits(transformers.DistilBertForSequenceClassification(config))


def roberta(attn: str) -> nn.Module:
    config = transformers.RobertaConfig(
        vocab_size=30, attn_implementation=attn, initializer_range=INIT, **TEXT
    )
    return Logits(transformers.RobertaForSequenceClassification(config))


def gpt2(attn: str) -> nn.Module:
    config = transformers.GPT2Config(
        vocab_size=30, n_embd=16, n_layer=2, n_head=2, attn_implementation=attn,
        initializer_range=INIT,
    )  # fmt: skip
    return Logits(transformers.GPT2LMHeadModel(config), last=True)


def hf_vit(attn: str) -> nn.Module:
    config = transformers.ViTConfig(
        image_size=16, patch_size=8, num_labels=3, attn_implementation=attn,
        initializer_range=INIT, **TEXT,
    )  # fmt: skip
    return Logits(transformers.ViTForImageClassification(config), key="pixel_values")


def tv_vit(attn: str) -> nn.Module:
    import torchvision

    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
        num_classes=3,
    )  # fmt: skip
    nn.init.normal_(model.heads.head.weight)  # torchvision starts the head at zero
    return model


ARCHITECTURES: dict[str, tuple[Callable[[str], nn.Module], Callable[[int], torch.Tensor]]] = {
    "bert": (bert, _text_input),
    "distilbert": (distilbert, _text_input),
    "roberta": (roberta, _text_input),
    "gpt2": (gpt2, _text_input),
    "hf_vit": (hf_vit, lambda n: torch.randn(n, 3, 16, 16, dtype=torch.float64)),
    "torchvision_vit": (tv_vit, lambda n: torch.randn(n, 3, 32, 32, dtype=torch.float64)),
}
HF = [name for name in ARCHITECTURES if name != "torchvision_vit"]


def build(name: str, attn: str = "eager", seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    factory, make_input = ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = factory(attn).double().eval()
    return model, make_input(3)


def without_constants(model: nn.Module) -> nn.Module:
    """A copy with every bias, position and token-type embedding and class token at zero:
    nothing left that absorbs relevance."""
    model = copy.deepcopy(model)
    constant = ("bias", "position", "token_type", "wpe", "cls_token", "class_token", "pos_emb")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(word in name for word in constant):
                p.zero_()
    return model


@pytest.mark.parametrize("composite", ["attnlrp", "cp-lrp"])
@pytest.mark.parametrize("name", HF)
def test_eager_and_sdpa_attention_give_the_same_relevance(name, composite):
    eager, x = build(name, "eager")
    sdpa, _ = build(name, "sdpa")
    ours = LRP(eager, composite=composite)(x, target=1).values
    theirs = LRP(sdpa, composite=composite)(x, target=1).values
    # SDPA is re-expressed as the eager math, so float64 rounding apart they are one
    # computation, except where eager attention computes its softmax in float32 (HF ViT):
    # float32 rounding of the weights (2^-24 relative) through two blocks stays below 1e-5
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5 * float(ours.abs().max()))


class _Absorbed:
    """Records what each softmax call leaves out: ``sum(R_out) - sum(R_in)``."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.original = SoftmaxRelevance.backward

    def __call__(self, ctx, relevance):
        grads = self.original(ctx, relevance)
        gap = relevance.to(torch.float64).flatten(1).sum(1) - grads[0].to(torch.float64).flatten(
            1
        ).sum(1)
        self.total = gap if self.total is None else self.total + gap
        return grads


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_conservation(name, monkeypatch):
    # SDPA where there is one: HF ViT's eager attention computes its softmax in float32
    model, x = build(name, "sdpa" if name in HF else "eager")
    bare = without_constants(model)
    with torch.no_grad():
        scale = float(select_output(bare(x))[:, 1].abs().max())
    # CP-LRP: LRP-0 on linear maps, sums and uniform splits only: it conserves f_c(x)
    cp = LRP(bare, composite=CPLRP())(x, target=1)
    assert float(cp.delta.abs().max()) <= 1e-10 * scale
    # AttnLRP, rule by rule: exactly the softmax rule's own gap is missing (Prop. 3.1)
    absorbed = _Absorbed()
    monkeypatch.setattr(SoftmaxRelevance, "backward", staticmethod(absorbed))
    attn = LRP(bare, composite=AttnLRP(gradient_form=False))(x, target=1)
    assert absorbed.total is not None
    # the batch's rows are independent: the per-row gaps of all heads and layers add up
    torch.testing.assert_close(
        attn.delta, -absorbed.total.view(3, -1).sum(1), rtol=0, atol=1e-10 * scale
    )


@pytest.mark.parametrize("composite", [AttnLRP, CPLRP])
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_gradient_form_is_the_rules_applied_one_by_one(name, composite):
    # with no stabiliser the transformer composites run as x * (modified gradient); the
    # rules applied call by call give the same relevance up to float64 rounding
    model, x = build(name, "sdpa" if name in HF else "eager")
    fast = LRP(model, composite=composite())(x, target=0)
    slow = LRP(model, composite=composite(gradient_form=False))(x, target=0)
    assert composite().in_gradient_form and not composite(gradient_form=False).in_gradient_form
    scale = float(slow.values.abs().max())
    torch.testing.assert_close(fast.values, slow.values, rtol=0, atol=1e-9 * scale)
    torch.testing.assert_close(fast.delta, slow.delta, rtol=0, atol=1e-9 * scale)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_deeplift_sums_to_delta(name):
    model, x = build(name, "sdpa" if name != "torchvision_vit" else "eager")
    result = DeepLIFT(model, baseline=[0.0, torch.randn_like(x[0])])(x, target=1)
    scale = float(select_output(result.output)[:, 1].abs().max())
    assert float(result.delta.abs().max()) <= 1e-10 * max(scale, 1.0)


# ---- the LRP-0 forms are gradient x input of a modified model ---------------------------


class _Halved(torch.autograd.Function):
    """Identity forward, gradient halved (LXT's ``divide_gradient``)."""

    @staticmethod
    def forward(ctx, t):
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g / 2


class _Modified(TorchFunctionMode):
    """The model with layer norm's 1/sigma detached and either the softmax detached (CP) or
    the gradient of both factors of ``q k^T`` and ``A v`` halved (AttnLRP)."""

    def __init__(self, detach_softmax: bool) -> None:
        super().__init__()
        self.detach_softmax = detach_softmax

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.layer_norm:
            names = ("input", "normalized_shape", "weight", "bias", "eps")
            found = {
                "weight": None,
                "bias": None,
                "eps": 1e-5,
                **dict(zip(names, args, strict=False)),
            }
            found.update(kwargs)
            x, shape, weight, bias, eps = (found[n] for n in names)
            dims = tuple(range(-len(shape), 0))
            centred = x - x.mean(dims, keepdim=True)
            sigma = torch.sqrt(centred.pow(2).mean(dims, keepdim=True) + eps)
            return centred / sigma.detach() * weight + bias  # BERT's layer norms are affine
        if func in (F.softmax, torch.softmax, torch.Tensor.softmax) and self.detach_softmax:
            return func(*args, **kwargs).detach()
        if func is torch.matmul and all(a.requires_grad for a in args[:2]):
            return func(_Halved.apply(args[0]), _Halved.apply(args[1]))
        return func(*args, **kwargs)


class MeanPooled(nn.Module):
    """A BERT encoder (ReLU MLP, no pooler), mean over tokens, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        config = transformers.BertConfig(
            vocab_size=30, hidden_act="relu", attn_implementation="eager",
            initializer_range=INIT, **TEXT,
        )  # fmt: skip
        self.encoder = transformers.BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(inputs_embeds=x).last_hidden_state.mean(1))


@pytest.mark.parametrize("composite, detach", [(CPLRP, True), (AttnLRP, False)])
def test_lrp0_forms_are_gradient_times_input_of_the_modified_model(composite, detach):
    # With no stabiliser every rule here is "R_in = x * J^T (R / y)" for the Jacobian J of
    # the call with its detached parts held constant: linear layers and biases, sums, means,
    # the layer norm with 1/sigma fixed, A v with A fixed (CP); the uniform products hand
    # each factor x * J_x^T (R / y) / 2; ReLU's identity rule R_in = R is relu(z)/z times
    # its gradient 1[z > 0]. By induction R = y * dscore/dy at every call, so the input
    # relevance is x * dscore/dx of the model with those parts detached and the two
    # products' gradients halved; AttnLRP's softmax rule x (R - s sum R) is x times the
    # softmax's own vector-Jacobian product of R / s, so the softmax keeps its gradient.
    torch.manual_seed(0)
    model = MeanPooled().double().eval()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    ours = LRP(model, composite=composite(gradient_form=False))(x, target=1).values

    def modified(t: torch.Tensor) -> torch.Tensor:
        with _Modified(detach):
            return model(t)

    expected = GradientXInput(modified)(x, target=1).values
    torch.testing.assert_close(ours, expected, rtol=1e-8, atol=1e-12)


# ---- nothing is left on the model --------------------------------------------------------


@pytest.mark.parametrize("name", ["bert", "hf_vit", "torchvision_vit"])
def test_no_state_is_left_on_the_model(name):
    model, x = build(name, "sdpa" if name != "torchvision_vit" else "eager")
    model.train()  # explained in eval mode (with a warning), left in training mode
    before = model_state(model)
    config = getattr(getattr(model, "model", None), "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    with pytest.warns(UserWarning, match="training mode"):
        LRP(model, composite="attnlrp")(x, target=1)
    with pytest.warns(UserWarning, match="training mode"):
        DeepLIFT(model)(x, target=1)
    assert_state_restored(model, before)
    assert getattr(config, "_attn_implementation", None) == implementation


# ---- the shipped MiniLM classifier and attrib.text -----------------------------------------


def test_minilm_conserves_and_explains_tokens(minilm):
    from attrib.text import explain_tokens
    from attrib.text.models import EmbeddingModel

    texts = ["A gripping, beautifully acted drama.", "A dull, lifeless and tedious mess."]
    x = minilm.embed(minilm.encode(texts[:1]).input_ids).double()
    model = EmbeddingModel(without_constants(minilm.model)).double()
    with torch.no_grad():
        scale = float(model(x)[:, 1].abs().max())
    cp = LRP(model, composite=CPLRP(0.0, 0.0))(x, target=1)
    # a float64 copy of the real weights with the biases zeroed: rounding only
    assert float(cp.delta.abs().max()) <= 1e-9 * scale

    result = explain_tokens(minilm, texts, "lrp", composite="attnlrp")
    assert result.values.shape[0] == 2 and result.method == "LRP"
    # LRP's token score is its relevance summed over the embedding dimensions
    assert result.scores().method == "LRP / sum"
    summed = result.values.sum(-1) * result.encoding.mask
    torch.testing.assert_close(result.scores().scores, summed.to(result.scores().scores.dtype))
    deeplift = explain_tokens(minilm, texts, "deeplift")
    assert deeplift.method == "DeepLIFT" and deeplift.scores().method == "DeepLIFT / sum"
    # float32 through six blocks; the softmax's row maximum is its own max pooling (a maximum
    # shared by x and x' made this gap ~1e17 on these texts: 1/sum(e) of an underflowed row)
    logits = float(deeplift.output.abs().max())
    assert float(deeplift.delta.abs().max()) <= 1e-4 * logits

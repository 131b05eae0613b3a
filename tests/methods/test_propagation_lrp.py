"""LRP: every rule against its literal matrix form, the known identities, Zennit, canonizers."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from attrib import GradientXInput, Saliency
from attrib.core.errors import LayerError, SettingError
from attrib.methods.propagation import (
    LRP,
    AlphaBeta,
    Composite,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    MergeBatchNorm,
    Norm,
    Pass,
    WSquare,
    ZBox,
    ZPlus,
)
from tests.conftest import assert_state_restored, model_state
from tests.methods.test_propagation_reference import cnn, cnn_input, lrp, mlp
from tests.models import SMALL_MODELS, GapCNN, RaisingNet, ResidualNet, torchvision_model
from tests.peers import assert_matches_peer

# (our first-layer rule, our other rule, the reference's (name, settings) for both)
RULES = {
    "epsilon": (None, Epsilon(0.1), ("epsilon", {"epsilon": 0.1}), None),
    "zplus": (None, ZPlus(), ("zplus", {}), None),
    "alpha2beta1": (None, AlphaBeta(2, 1), ("alphabeta", {"alpha": 2, "beta": 1}), None),
    "gamma": (None, Gamma(0.25), ("gamma", {"gamma": 0.25}), None),
    "zbox": (ZBox(-3.0, 3.0), Epsilon(0.01), ("epsilon", {"epsilon": 0.01}),
             ("zbox", {"low": -3.0, "high": 3.0})),
    "flat": (Flat(), ZPlus(), ("zplus", {}), ("flat", {})),
    "wsquare": (WSquare(), Gamma(0.5), ("gamma", {"gamma": 0.5}), ("wsquare", {})),
}  # fmt: skip


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("make", [mlp, cnn, lambda: cnn(pool="avg")])
def test_every_rule_matches_its_matrix_form(rule, make):
    first, other, ref_other, ref_first = RULES[rule]
    model = make()
    n_layers = sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model)
    composite = Composite(conv=other, linear=other, first=first, first_kinds=("conv", "linear"))
    x = torch.randn(3, 6, dtype=torch.float64) if isinstance(model[0], nn.Linear) else None
    x = cnn_input(3) if x is None else x
    targets = [0, 2, 1]
    result = LRP(model, composite=composite)(x, target=targets)
    rules = [ref_first or ref_other] + [ref_other] * (n_layers - 1)
    expected = torch.stack([lrp(model, x[i], c, rules) for i, c in enumerate(targets)])
    torch.testing.assert_close(result.values, expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: mlp(bias=False), lambda: cnn(bias=False)])
def test_lrp0_on_a_relu_network_without_biases_is_gradient_times_input(make):
    model = make()
    x = torch.randn(4, 6, dtype=torch.float64) if isinstance(model[0], nn.Linear) else None
    x = cnn_input(4) if x is None else x
    result = LRP(model, rule=Epsilon(0.0))(x, target=1)
    torch.testing.assert_close(result.values, GradientXInput(model)(x, target=1).values)
    # no bias absorbs anything: LRP-0 conserves f(x) exactly
    torch.testing.assert_close(
        result.delta, torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_lrp0_is_gradient_times_input_through_merged_batch_norms_and_residual_sums():
    # ResidualNet: in-place ReLUs, one ReLU module used twice, `out += identity`, batch norms
    # merged into bias-free convolutions. LRP-0 with unstabilised sums and pooling is still
    # gradient x input (Ancona et al. 2018); the merged biases now absorb relevance.
    model = ResidualNet().double().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    composite = Composite(conv=Epsilon(0.0), linear=Epsilon(0.0), sums=Norm(0.0), pooling=Norm(0.0))
    result = LRP(model, composite=composite)(x, target=[0, 1, 2])
    expected = GradientXInput(model)(x, target=[0, 1, 2]).values
    torch.testing.assert_close(result.values, expected)
    assert float(result.delta.abs().max()) > 1e-6


class _Recorded(nn.Module):
    """A bias-free ReLU MLP that records the relevance arriving at each layer's input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList(
            [nn.Linear(6, 9, bias=False), nn.Linear(9, 8, bias=False), nn.Linear(8, 3, bias=False)]
        )
        self.relevance: dict[int, torch.Tensor] = {}
        self.outputs: dict[int, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for k, layer in enumerate(self.layers):
            if h.requires_grad:
                h.register_hook(lambda g, k=k: self.relevance.__setitem__(k, g))
            z = layer(h)
            self.outputs[k] = z.detach()
            h = torch.relu(z) if k < len(self.layers) - 1 else z
        return h


def test_epsilon_rule_conserves_relevance_layer_by_layer_up_to_its_absorption():
    model = _Recorded().double().eval()
    x = torch.randn(2, 6, dtype=torch.float64)
    eps = 0.05
    result = LRP(model, rule=Epsilon(eps))(x, target=2)
    with torch.no_grad():
        top = model(x)[:, 2]
    arriving = {len(model.layers): torch.zeros(2, 3, dtype=torch.float64)}
    arriving[len(model.layers)][:, 2] = top
    for k in range(len(model.layers)):
        arriving[k] = model.relevance[k]
    for k in range(len(model.layers)):
        z = model.outputs[k]
        r_out = arriving[k + 1]  # relevance at layer k's output (ReLUs pass it unchanged)
        r_out = r_out * (z > 0) if k < len(model.layers) - 1 else r_out
        stabilised = z + eps * torch.where(z >= 0, 1.0, -1.0).double()
        # sum_i R_i = sum_j R_j z_j / (z_j + eps sign z_j): only epsilon absorbs
        kept = (r_out * z / stabilised).sum(1)
        torch.testing.assert_close(arriving[k].sum(1), kept)
        absorbed = (r_out.sum(1) - arriving[k].sum(1)).abs()
        bound = (r_out.abs() * eps / stabilised.abs()).sum(1)
        assert bool((absorbed <= bound + 1e-12).all())
    torch.testing.assert_close(result.values, model.relevance[0])


# ---- Zennit --------------------------------------------------------------------------


def _zennit(model, x, targets, composite):
    x = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(x)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(x)), targets] = 1
        (relevance,) = torch.autograd.grad(out, x, seed * out)  # R = f_c(x) at the output
    return relevance


COMPOSITE_PAIRS = ["epsilon_plus", "epsilon_alpha2_beta1", "epsilon_plus_flat", "epsilon_gamma_box"]


def _pair(name: str, canonizer):
    zc = pytest.importorskip("zennit.composites")
    if name == "epsilon_gamma_box":
        return EpsilonGammaBox(-3.0, 3.0), zc.EpsilonGammaBox(-3.0, 3.0, canonizers=[canonizer])
    ours = {
        "epsilon_plus": EpsilonPlus,
        "epsilon_alpha2_beta1": EpsilonAlpha2Beta1,
        "epsilon_plus_flat": EpsilonPlusFlat,
    }[name]()
    theirs = {
        "epsilon_plus": zc.EpsilonPlus,
        "epsilon_alpha2_beta1": zc.EpsilonAlpha2Beta1,
        "epsilon_plus_flat": zc.EpsilonPlusFlat,
    }[name](canonizers=[canonizer])
    return ours, theirs


@pytest.fixture(scope="module")
def vgg():
    model, x = torchvision_model("vgg11")
    return model, x[:1]


@pytest.fixture(scope="module")
def resnet():
    model, x = torchvision_model("resnet18")
    return model, x[:1]


@pytest.mark.parametrize("name", COMPOSITE_PAIRS)
def test_matches_zennit_on_vgg11(vgg, name):
    canonizers = pytest.importorskip("zennit.torchvision")
    model, x = vgg
    ours, theirs = _pair(name, canonizers.VGGCanonizer())
    peer = _zennit(model, x, [7], theirs)
    assert_matches_peer(LRP(model, composite=ours)(x, target=7).values, peer)


@pytest.mark.parametrize("name", COMPOSITE_PAIRS)
def test_matches_zennit_on_resnet18(resnet, name):
    canonizers = pytest.importorskip("zennit.torchvision")
    model, x = resnet
    ours, theirs = _pair(name, canonizers.ResNetCanonizer())
    peer = _zennit(model, x, [7], theirs)
    assert_matches_peer(LRP(model, composite=ours)(x, target=7).values, peer)


def test_zennit_difference_on_resnet18_is_its_batch_norm_eps():
    # Zennit turns a merged batch norm into "identity" by setting its running variance to 1,
    # but keeps eps: each one then scales by 1/sqrt(1 + eps). With eps = 0 the two agree to
    # rounding; with the default 1e-5 they differ by ~1e-5 of the map's scale.
    canonizers = pytest.importorskip("zennit.torchvision")
    model, x = torchvision_model("resnet18")
    model, x = model.double(), x[:1].double()
    ours = LRP(model, composite=EpsilonPlus())(x, target=7).values
    _, theirs = _pair("epsilon_plus", canonizers.ResNetCanonizer())
    gap = (ours - _zennit(model, x, [7], theirs)).abs().max() / ours.abs().max()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.0
    ours = LRP(model, composite=EpsilonPlus())(x, target=7).values
    _, theirs = _pair("epsilon_plus", canonizers.ResNetCanonizer())
    exact = (ours - _zennit(model, x, [7], theirs)).abs().max() / ours.abs().max()
    assert float(exact) < 1e-12 < 1e-7 < float(gap) < 1e-4


# ---- canonizers ------------------------------------------------------------------------


def _folded(model: GapCNN) -> nn.Module:
    """GapCNN with its batch norm folded into the preceding convolution by hand."""
    folded = GapCNN().double().eval()
    folded.load_state_dict(model.state_dict())
    conv, bn = folded.features[2], folded.features[3]
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
    folded.features[3] = nn.Identity()
    return folded


def test_merge_batch_norm_equals_lrp_of_the_folded_model():
    model = GapCNN().double().eval()
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    for composite in (
        EpsilonPlus(),
        EpsilonGammaBox(-3.0, 3.0),
        Composite(conv=Epsilon(0.3), linear=Epsilon(0.1)),
    ):
        merged = LRP(model, composite=composite)(x, target=[0, 1, 4]).values
        folded = LRP(_folded(model).eval(), composite=composite, canonizers=())(x, target=[0, 1, 4])
        torch.testing.assert_close(merged, folded.values)
        unmerged = LRP(model, composite=composite, canonizers=())(x, target=[0, 1, 4]).values
        assert not torch.allclose(merged, unmerged)


class _SharedOutput(nn.Module):
    def __init__(self, reuse_after: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4).eval()
        self.fc = nn.Linear(4, 2)
        self.reuse_after = reuse_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        if self.reuse_after:
            h = torch.relu(self.bn(z)) + torch.relu(z)
        else:
            h = torch.relu(z) + torch.relu(self.bn(z))
        return self.fc(h.mean((2, 3)))


class _BatchNormSpelled(nn.Module):
    """conv -> batch norm (as ``F.batch_norm`` or ``torch.batch_norm``) -> ReLU -> fc."""

    def __init__(self, direct: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.direct = direct
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4).eval()
        self.fc = nn.Linear(4 * 6 * 6, 3)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(self.bn.weight, 0.5, 2.0)

    def forward(self, x):
        z, b = self.conv(x), self.bn
        if self.direct:  # torch.batch_norm takes its arguments in another order
            z = torch.batch_norm(
                z, b.weight, b.bias, b.running_mean, b.running_var, False, 0.1, b.eps, False
            )
        else:
            z = nn.functional.batch_norm(
                z, b.running_mean, b.running_var, b.weight, b.bias, False, 0.1, b.eps
            )
        return self.fc(torch.relu(z).flatten(1))


def test_a_batch_norm_is_merged_whichever_spelling_calls_it():
    # torch.batch_norm's parameters come in another order than F.batch_norm's; reading them
    # by F's positions merged the weight as the running mean (a silently wrong map)
    x = torch.randn(2, 3, 8, 8)
    functional, direct = _BatchNormSpelled(direct=False).eval(), _BatchNormSpelled(direct=True)
    direct.eval()
    torch.testing.assert_close(direct(x), functional(x), rtol=0, atol=0)
    expected = LRP(functional, composite=EpsilonPlus())(x, target=0).values
    got = LRP(direct, composite=EpsilonPlus())(x, target=0).values
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_merge_is_refused_when_the_layer_output_feeds_something_else():
    x = torch.randn(2, 3, 6, 6)
    used_first = _SharedOutput(reuse_after=False).eval()
    kept = LRP(used_first)(x, target=0).values
    torch.testing.assert_close(kept, LRP(used_first, canonizers=())(x, target=0).values)
    with pytest.raises(LayerError, match=r"canonizers=\(\)"):
        LRP(_SharedOutput(reuse_after=True).eval())(x, target=0)


# ---- what is supported and what raises -------------------------------------------------


class _SqueezeExcite(nn.Module):
    """A squeeze-and-excitation block: the signal is scaled by a sigmoid gate of itself."""

    def __init__(self, gate_depends_on_input: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.squeeze = nn.Linear(4, 4, bias=False)
        self.fc = nn.Linear(4, 2, bias=False)
        self.live = gate_depends_on_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        pooled = h.mean((2, 3)) if self.live else h.detach().mean((2, 3))
        gate = torch.sigmoid(self.squeeze(pooled))[:, :, None, None]
        return self.fc((h * gate).mean((2, 3)))


def test_gated_signals_take_all_the_relevance():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    gated = _SqueezeExcite(True).double().eval()
    constant_gate = _SqueezeExcite(False).double().eval()
    composite = Composite(conv=Epsilon(0.0), linear=Epsilon(0.0), mixing=Norm(0.0))
    ours = LRP(gated, composite=composite)(x, target=1)
    torch.testing.assert_close(
        ours.values, LRP(constant_gate, composite=composite)(x, target=1).values
    )
    torch.testing.assert_close(ours.delta, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)


class _Unsupported(nn.Module):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.what = what

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.what == "exp":
            return h.exp()
        if self.what == "product":
            return h * x
        if self.what == "softmax":
            return torch.softmax(h, 1)
        return h / x


@pytest.mark.parametrize(
    "what, name", [("exp", "exp"), ("product", "mul"), ("softmax", "softmax"), ("ratio", "div")]
)
def test_functions_without_a_rule_raise_naming_them(what, name):
    model = _Unsupported(what).eval()
    before = model_state(model)
    with pytest.raises(LayerError, match=rf"{name} called in"):
        LRP(model)(torch.randn(2, 4), target=0)
    assert_state_restored(model, before)


def test_the_transformer_is_refused_by_the_convolutional_composites_naming_the_attention():
    # the attention is re-expressed as its math; its first product of two signals (q k^T)
    # has no rule outside the transformer composites (test_propagation_transformers.py)
    factory, make_input = SMALL_MODELS["tiny_transformer"]
    with pytest.raises(LayerError, match=r"matmul called in 'encoder\.self_attn'.*attnlrp"):
        LRP(factory())(make_input(2), target=0)


def test_settings_are_checked():
    with pytest.raises(SettingError, match="epsilon_gamma_box"):
        LRP(GapCNN(), composite="epsilon_gamma_box")
    with pytest.raises(SettingError):
        LRP(GapCNN(), composite="nonsense")
    with pytest.raises(SettingError):
        LRP(GapCNN(), composite=EpsilonPlus(), rule=Epsilon())
    with pytest.raises(SettingError):
        AlphaBeta(alpha=2, beta=2)
    with pytest.raises(SettingError):
        Composite(conv=ZPlus(), linear=Epsilon(), sums=Pass())
    with pytest.raises(SettingError):
        LRP(GapCNN(), canonizers=["merge"])


def test_rules_and_composites_are_data():
    for thing in (EpsilonGammaBox(-1.0, 1.0), EpsilonPlusFlat(), AlphaBeta(3, 2), Gamma(0.1)):
        assert pickle.loads(pickle.dumps(thing)).__class__ is thing.__class__
    assert pickle.loads(pickle.dumps(Gamma(0.1))) == Gamma(0.1)
    assert repr(AlphaBeta()) == "AlphaBeta(alpha=2.0, beta=1.0, stabilizer=1e-06)"
    named = Composite(conv=ZPlus(), linear=Epsilon(), names={"fc": Epsilon(0.5)})
    model = GapCNN().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    by_name = LRP(model, composite=named)(x, target=1).values
    everywhere = Composite(conv=ZPlus(), linear=Epsilon(0.5))
    torch.testing.assert_close(by_name, LRP(model, composite=everywhere)(x, target=1).values)


def test_delta_chunking_and_results():
    model = GapCNN().eval()
    x = torch.randn(5, 3, 12, 12)
    whole = LRP(model)(x, target="predicted")
    chunked = LRP(model, batch_size=2)(x, target="predicted")
    torch.testing.assert_close(chunked.values, whole.values)
    with torch.no_grad():
        scores = model(x).gather(1, whole.target.view(-1, 1))[:, 0]
    torch.testing.assert_close(
        whole.delta, whole.values.flatten(1).sum(1).double() - scores.double()
    )
    assert whole.method == "LRP" and isinstance(whole.params["composite"], EpsilonPlus)
    assert whole.params["canonizers"] == (MergeBatchNorm(),)


def test_state_is_restored_and_plain_gradients_are_unchanged(resnet):
    model, x = resnet
    before = model_state(model)
    gradient = Saliency(model)(x, target=5).values
    LRP(model, composite=EpsilonGammaBox(-3.0, 3.0))(x, target=5)
    assert_state_restored(model, before)
    torch.testing.assert_close(Saliency(model)(x, target=5).values, gradient, rtol=0, atol=0)


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_state_is_restored_after_an_exception(where):
    model = RaisingNet(where).eval()
    before = model_state(model)
    with pytest.raises((RuntimeError, LayerError)):
        LRP(model)(torch.randn(2, 4), target=1)
    assert_state_restored(model, before)


# ---- the fast paths of the rules (each must give what the matrix form gives) ------------


@pytest.mark.parametrize("rule", ["zplus", "alpha2beta1", "flat", "wsquare", "zbox"])
@pytest.mark.parametrize("make", [lambda: mlp(bias=False), lambda: cnn(bias=False)])
def test_rules_match_their_matrix_form_without_biases_and_with_dead_outputs(rule, make):
    # z+ on a post-ReLU input folds its stabiliser into the bias: here there is none, and one
    # output unit of every layer has only non-positive weights, so its z+ is exactly 0 and its
    # denominator is the stabiliser alone.
    first, other, ref_other, ref_first = RULES[rule]
    model = make()
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight[0] = -m.weight[0].abs()
    n_layers = sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model)
    composite = Composite(conv=other, linear=other, first=first, first_kinds=("conv", "linear"))
    x = torch.randn(3, 6, dtype=torch.float64) if isinstance(model[0], nn.Linear) else None
    x = cnn_input(3) if x is None else x
    result = LRP(model, composite=composite)(x, target=[0, 2, 1])
    rules = [ref_first or ref_other] + [ref_other] * (n_layers - 1)
    expected = torch.stack([lrp(model, x[i], c, rules) for i, c in enumerate([0, 2, 1])])
    torch.testing.assert_close(result.values, expected, rtol=1e-8, atol=1e-12)


def _convolutions(model: nn.Module, x: torch.Tensor, composite: Composite) -> tuple[int, int]:
    """(forward convolution calls, transposed products) of one LRP call."""
    from torch.utils._python_dispatch import TorchDispatchMode

    forwards, transposed = [], []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution_backward.default:
                transposed.append(func)
            elif func is torch.ops.aten.convolution.default:
                forwards.append(func)
            return func(*args, **(kwargs or {}))

    with Count():
        LRP(model, composite=composite)(x, target=1)
    return len(forwards), len(transposed)


def test_terms_of_one_part_share_one_call_each_way():
    # z+ on the mixed-sign input has two terms (W+ x+ and W- x-): their denominator is one
    # convolution of [x+, x-] with [W+, W-], and their transposed products one call with the
    # weights stacked (the first convolution costs about as much for 6 input channels as for
    # 3). Alpha-beta has two parts: two calls each way.
    model = cnn()
    x = cnn_input(2)
    conv = Composite(conv=ZPlus(), linear=Epsilon(0.1))
    # the model's 2 convolutions, then one modified forward and one transposed product each
    assert _convolutions(model, x, conv) == (2 + 2, 2)
    alpha_beta = Composite(conv=AlphaBeta(2, 1), linear=Epsilon(0.1))
    assert _convolutions(model, x, alpha_beta)[1] == 2 * 2
    # z-box's three terms (W x, W+ l, W- h) are one call too, the layer's own forward
    # included: 9 input channels cost about what 3 do
    box = Composite(conv=ZPlus(), linear=Epsilon(0.1), first=ZBox(-3.0, 3.0), first_kinds=("conv",))
    assert _convolutions(model, x, box) == (2 + 2, 2)


def _conv_relu_net(inplace: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(4, 5, 3),
        nn.ReLU(inplace=inplace),
        nn.Flatten(),
        nn.Linear(5 * 4 * 4, 3),
    ).eval()


def test_epsilon_keeps_a_copy_of_an_output_an_inplace_relu_overwrites():
    # The epsilon rule divides by the layer's real output z. An in-place ReLU overwrites z;
    # the layer keeps a copy first instead of recomputing its convolution in the backward.
    x = torch.randn(2, 3, 8, 8)
    epsilon = Composite(conv=Epsilon(0.1), linear=Epsilon(0.1))
    assert _convolutions(_conv_relu_net(inplace=True), x, epsilon) == (2, 2)
    inplace = LRP(_conv_relu_net(inplace=True), composite=epsilon)(x, target=1)
    plain = LRP(_conv_relu_net(inplace=False), composite=epsilon)(x, target=1)
    torch.testing.assert_close(inplace.values, plain.values, rtol=0, atol=0)


def test_a_fully_connected_layer_on_tokens_stacks_terms_along_its_features():
    # F.linear maps the last dimension: a rule with two terms on (batch, tokens, features)
    # inputs stacks them there (this crashed when they were stacked along dimension 1).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(30, 3)).eval()
    x = torch.randn(2, 6, 4)
    eps = 1e-6
    got = LRP(model, composite=Composite(conv=ZPlus(eps), linear=ZPlus(eps)))(x, target=0)
    w1, b1, w2, b2 = (p.detach() for p in model.parameters())
    pos, neg = (lambda t: t.clamp(min=0)), (lambda t: t.clamp(max=0))
    with torch.no_grad():
        h = torch.relu(x @ w1.T + b1).flatten(1)
        out = h @ w2.T + b2
        relevance = torch.zeros_like(out)
        relevance[:, 0] = out[:, 0]
        s2 = relevance / (h @ pos(w2).T + pos(b2) + eps)  # every z+ term is >= 0
        r_h = (h * (s2 @ pos(w2))).view(2, 6, 5)
        s1 = r_h / (pos(x) @ pos(w1).T + pos(b1) + neg(x) @ neg(w1).T + eps)
        expected = pos(x) * (s1 @ pos(w1)) + neg(x) * (s1 @ neg(w1))
    torch.testing.assert_close(got.values, expected, rtol=1e-5, atol=1e-7)


class _Padded(nn.Module):
    """conv -> ReLU -> (pad, in-place shift, or nothing) -> conv -> fc."""

    def __init__(self, between: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.between = between
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6 if between == "pad" else 4 * 4 * 4, 3)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        if self.between == "pad":
            h = nn.functional.pad(h, (1, 1, 1, 1), value=-0.5)
        elif self.between == "shift":
            h.sub_(0.25)
        elif self.between == "view":
            h = h.view(h.shape)
        return self.fc(torch.relu(self.conv2(h)).flatten(1))


@pytest.mark.parametrize("between, known", [("none", True), ("view", True), ("pad", False),
                                            ("shift", False)])  # fmt: skip
def test_inputs_known_nonnegative_only_while_they_are(monkeypatch, between, known):
    # a ReLU's output (or a view of it) is known to be >= 0, so z+ needs no x- term there and
    # no look at the values; padding with a negative constant or an in-place shift undoes it.
    from attrib.methods.propagation.lrp import layers

    flags = []
    original = layers.LayerCall.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        flags.append(self.nonnegative_input)

    monkeypatch.setattr(layers.LayerCall, "__init__", record)
    model = _Padded(between).double().eval()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    result = LRP(model, composite=EpsilonPlus())(x, target=1)
    assert flags == [False, known, True]  # conv1 sees the raw input; fc a ReLU's output
    # the values are those of the rule written out: x- terms where the input has negatives
    monkeypatch.setattr(layers.LayerCall, "__init__", original)
    plain = _lrp_without_tracking(model, x)
    torch.testing.assert_close(result.values, plain)


def _lrp_without_tracking(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """LRP with every input's sign looked up from its values (no tracking)."""
    from attrib.methods.propagation.lrp import propagator

    original = propagator.LRPRules.is_nonnegative
    propagator.LRPRules.is_nonnegative = lambda self, t: False
    try:
        return LRP(model, composite=EpsilonPlus())(x, target=1).values
    finally:
        propagator.LRPRules.is_nonnegative = original


def test_an_inplace_relu_stays_in_place_under_pass():
    # Pass never reads the ReLU's output, so relu_ runs in place: no out-of-place ReLU and no
    # copy back into the input.
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    model = ResidualNet().double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = LRP(model, composite=EpsilonPlus())(x, target=1).values
    with Record():
        got = LRP(model, composite=EpsilonPlus())(x, target=1).values
    torch.testing.assert_close(got, expected)
    assert "relu" not in seen and "clamp_min" not in seen
    assert seen.count("relu_") + seen.count("clamp_min_") >= 2


class _SumThenReLUInPlace(nn.Module):
    """``relu_(a x + b x)`` then a linear head, all bias-free: the ReLU writes into the
    sum's output."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 5, bias=False), nn.Linear(4, 5, bias=False)
        self.head = nn.Linear(5, 2, bias=False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu_(self.a(x) + self.b(x)))


def test_an_unstabilised_sum_splits_by_its_own_output_even_after_an_in_place_relu():
    # Flat on the head hands score / 5 to every entry of the sum, also where the ReLU zeroed
    # it; Norm(0) must split that by the sum's real (negative) value there, not by the 0 that
    # relu_ wrote into the same tensor afterwards (R / 0 -> 0 would lose it). Bias-free
    # LRP-0 layers conserve the rest, so the input relevance sums to the score exactly.
    torch.manual_seed(3)
    model = _SumThenReLUInPlace().double()
    x = torch.randn(6, 4, dtype=torch.float64)
    with torch.no_grad():
        assert bool((model.a(x) + model.b(x) < 0).any())  # the case under test occurs
        score = model(x)[:, 0]
    composite = Composite(
        conv=Epsilon(0.0), linear=Epsilon(0.0), names={"head": Flat(0.0)}, sums=Norm(0.0)
    )
    got = LRP(model, composite=composite)(x, target=0).values
    torch.testing.assert_close(got.sum(1), score)

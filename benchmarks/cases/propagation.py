"""Modified backpropagation (issue 5): guided backprop, deconvolution, DeepLIFT and LRP.

Each method is one forward and one backward to the input per image, so its limit is
``N * min_{r <= N} cost_input(r)``; DeepLIFT also runs the baseline's forward (ours pairs
``[x; x']`` in one forward), so it adds ``N * min cost_forward(r)``. Every case runs on
resnet18, resnet50 and vgg11 at batch 8. One case per peer:

================  =======================================  ======================================
case              ours                                     peer
================  =======================================  ======================================
guided-captum     ``GuidedBackprop(model)``                Captum ``GuidedBackprop``
guided-zennit     same                                     Zennit ``GuidedBackprop`` composite
deconv-captum     ``Deconvolution(model)``                 Captum ``Deconvolution``
deconv-zennit     same                                     Zennit ``DeconvNet`` composite
deeplift-captum   ``DeepLIFT(model)`` (baseline 0)         Captum ``DeepLift`` (baselines 0)
lrp-zennit        ``LRP(model, composite=EpsilonPlus())``  Zennit ``EpsilonPlus`` with its
                  (batch norms merged)                     ``ResNetCanonizer`` / ``VGGCanonizer``
lrp-captum        LRP-epsilon (1e-9) on every layer and    Captum ``LRP`` (its default
                  pooling                                  ``EpsilonRule(1e-9)`` everywhere)
================  =======================================  ======================================

Zennit gets its best use: the attributor's context (hooks and canonizers) is entered once, on
a copy of the model, outside the timings (entering it rewrites the model, which ours and the
limit must not see). Its output relevance is ``f_c(x)`` for LRP (ours' seed) and the one-hot
seed for guided backprop and deconvolution (both are gradients).

Where a peer cannot compute the method on a model, only ours is timed and the peer column says
why: Captum's ``DeepLift`` raises on torchvision ResNets (a ReLU module is used twice per
block); Captum's ``LRP`` does not raise there but computes another map (the reused ReLU and the
residual ``+=``, which has no rule, break its hooks), so it is not timed on a model that calls a
module twice.

Agreement: on ResNets Zennit's batch-norm merge keeps the batch norm's ``eps`` with a unit
variance (each merged layer is scaled by ``1/sqrt(1 + eps)``), and z+'s small denominators
amplify that to ~1e-3 of the map. ``lrp-zennit`` therefore checks agreement on copies of the
model whose batch norms have ``eps = 0``, where both compute the same thing; the timed calls
use the model as it is.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn

from attrib import LRP, Deconvolution, DeepLIFT, GuidedBackprop
from attrib.methods.propagation import Composite, Epsilon, EpsilonPlus, Norm
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import quiet_captum
from benchmarks.limits import Need
from benchmarks.models import Setup

MODELS = ("resnet18", "resnet50", "vgg11")
BATCHES = (8,)
CAPTUM_EPSILON = 1e-9  # Captum's EpsilonRule default


def _reused_module(model: nn.Module, x: torch.Tensor) -> str | None:
    """The name of a leaf module the forward calls more than once (``None``: none is)."""
    calls: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if not list(module.children()):

            def count(_module: nn.Module, _args: object, _out: object, name: str = name) -> None:
                calls[name] = calls.get(name, 0) + 1

            handles.append(module.register_forward_hook(count))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    return next((name for name, n in calls.items() if n > 1), None)


def _zennit(setup: Setup, composite: object, seed_with_output: bool) -> Callable[[], torch.Tensor]:
    """Zennit's ``Gradient`` attributor with ``composite`` entered once on a model copy."""
    from zennit.attribution import Gradient

    model = copy.deepcopy(setup.model)
    attributor = Gradient(model=model, composite=composite)
    attributor.__enter__()  # stays entered: the copy is only ever used by this peer
    onehot = torch.eye(model(setup.x[:1]).shape[1], device=setup.device)[setup.target]

    def seed(output: torch.Tensor) -> torch.Tensor:
        return output * onehot if seed_with_output else onehot

    def run() -> torch.Tensor:
        _, relevance = attributor(setup.x, seed)
        return relevance

    return run


def _canonizer(setup: Setup) -> object:
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    return ResNetCanonizer() if setup.spec.name.startswith("resnet") else VGGCanonizer()


def _modified_relu(method: type, captum_name: str, zennit_name: str | None):
    def build_captum(setup: Setup) -> Contenders:
        import captum.attr

        quiet_captum()
        ours = method(setup.model)
        peer = getattr(captum.attr, captum_name)(setup.model)
        x, target = setup.x, setup.target
        return Contenders(
            lambda: ours(x, target=target).values,
            lambda: peer.attribute(x, target=target),
            "captum",
        )

    def build_zennit(setup: Setup) -> Contenders:
        import zennit.composites

        ours = method(setup.model)
        x, target = setup.x, setup.target
        composite = getattr(zennit.composites, zennit_name)()
        return Contenders(
            lambda: ours(x, target=target).values, _zennit(setup, composite, False), "zennit"
        )

    return build_captum, build_zennit


def build_deeplift(setup: Setup) -> Contenders:
    import captum.attr

    quiet_captum()
    warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks.*")
    ours = DeepLIFT(setup.model, baseline=0.0)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    peer = captum.attr.DeepLift(setup.model)

    def run_peer() -> torch.Tensor:
        return peer.attribute(x, baselines=torch.zeros_like(x), target=target)

    try:
        peer.attribute(x[:1], baselines=torch.zeros_like(x[:1]), target=target[:1])
    except (RuntimeError, AssertionError) as error:
        reused = _reused_module(setup.model, x)
        why = f"{reused!r} used twice" if reused else type(error).__name__
        return Contenders(run_ours, None, f"captum: refuses ({why})")
    return Contenders(run_ours, run_peer, "captum")


def _eps_free(model: nn.Module) -> nn.Module:
    """A copy whose batch norms have ``eps = 0`` (where Zennit's merge is exact)."""
    copied = copy.deepcopy(model)
    for module in copied.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eps = 0.0
    return copied


def build_lrp_zennit(setup: Setup) -> Contenders:
    import zennit.composites

    ours = LRP(setup.model, composite=EpsilonPlus())
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    peer = _zennit(setup, zennit.composites.EpsilonPlus(canonizers=[_canonizer(setup)]), True)
    exact = Setup(setup.spec.__class__(setup.spec.name, _eps_free(setup.model), None), x, target,
                  setup.device)  # fmt: skip
    exact_ours = LRP(exact.model, composite=EpsilonPlus())
    exact_peer = _zennit(exact, zennit.composites.EpsilonPlus(canonizers=[_canonizer(setup)]), True)

    def agree_ours() -> torch.Tensor:
        return exact_ours(x, target=target).values

    return Contenders(run_ours, peer, "zennit", agree=(agree_ours, exact_peer))


def build_lrp_captum(setup: Setup) -> Contenders:
    import captum.attr

    quiet_captum()
    epsilon = Epsilon(CAPTUM_EPSILON)
    composite = Composite(conv=epsilon, linear=epsilon, pooling=Norm(CAPTUM_EPSILON))
    # no batch norm to merge on vgg11; on ResNets Captum is not timed (below)
    ours = LRP(setup.model, composite=composite)
    x, target = setup.x, setup.target

    def run_ours() -> torch.Tensor:
        return ours(x, target=target).values

    reused = _reused_module(setup.model, x)
    if reused is not None:
        return Contenders(run_ours, None, f"captum: wrong here ({reused!r} used twice)")
    peer = captum.attr.LRP(copy.deepcopy(setup.model))  # it sets rules on the modules

    def run_peer() -> torch.Tensor:
        return peer.attribute(x, target=target)

    return Contenders(run_ours, run_peer, "captum")


guided_captum, guided_zennit = _modified_relu(GuidedBackprop, "GuidedBackprop", "GuidedBackprop")
deconv_captum, deconv_zennit = _modified_relu(Deconvolution, "Deconvolution", "DeconvNet")

INPUT = (Need("input", 1),)
for name, build, needs in (
    ("guided-captum", guided_captum, INPUT),
    ("guided-zennit", guided_zennit, INPUT),
    ("deconv-captum", deconv_captum, INPUT),
    ("deconv-zennit", deconv_zennit, INPUT),
    ("deeplift-captum", build_deeplift, (Need("input", 1), Need("forward", 1))),
    ("lrp-zennit", build_lrp_zennit, INPUT),
    ("lrp-captum", build_lrp_captum, INPUT),
):
    register(
        Case(name, family="propagation", needs=needs, build=build, models=MODELS, batches=BATCHES)
    )

"""The CAM family (issue 4): ours against pytorch-grad-cam 1.5.7 on the layer of
``benchmarks.models.LAYERS`` (``layer4`` for resnets).

pytorch-grad-cam always ReLUs each map, min-max normalises it, resizes it to the input with
``cv2.resize`` (bilinear on pixel centres) and min-max normalises again; ours is configured
the same way (``normalize="minmax"``, ``upsample=True``, ``relu=True``), so both return
``(N, H, W)`` maps in [0, 1] at the input's resolution and their difference is rounding
(and the peer's ``1e-7`` / ``1e-8`` added to its normalisers). Where the peer deliberately
differs from the papers, ours takes the peer's choice: Grad-CAM++ with ``eps=1e-6``, Score-CAM
masks upsampled with ``align_corners=True``; Ablation-CAM ablates to 0, which is the peer's
value too on resnets (``layer4`` ends in a ReLU, so the layer's minimum is 0).

The peer registers forward hooks on the layer when it is constructed and keeps them until it
is released; constructed once outside the timings, its hooks would also run (and hoard
activations) in our calls and in the limit's passes. So every timed peer call constructs the
peer inside a ``with`` block (registering two hooks: microseconds), and afterwards drops the
parameter gradients its ``loss.backward()`` left on the model.

- ``grad-cam``, ``grad-cam-pp``, ``xgrad-cam``, ``hires-cam``, ``layer-cam``: one forward and
  one backward from the target score to the layer per image, then a rule on the activations
  and gradients. Limit: ``Need("layer", 1)`` (the bare fwd+bwd to the layer). The peer runs
  ``loss.backward()`` through the whole network, with parameter gradients.
- ``score-cam``: one forward per (image, channel) of a masked input, ``Need("forward", C)``
  with ``C = 512`` channels in resnet18's ``layer4`` (ours also runs one capturing forward
  per image: 1/512 more, which shows in ``ours/limit``). Run on resnet18, batch 2 only:
  resnet50 has 2048 channels, 4x the rows of a 2.5x dearer model, about 3 minutes per call
  for 2 images on 2 cores (and 4 times that for 8). The peer evaluates its masked images
  ``batch_size`` at a time, set to the cheapest rows per forward of the forward curve; it
  builds all ``N x C`` masked images at once (the memory comparison).
- ``ablation-cam``: one score per (image, channel) with that channel of the layer set to 0.
  Ours runs only the network after the layer (a traced cut: average pooling and the linear
  head on resnets), so what it cannot avoid is the forward to the layer for each image:
  ``Need("forward", 1)``; the ablated rows are cheap and show in ``ours/limit``. The peer
  re-runs the network before the layer for every channel (its ablation layer replaces the
  layer's output): resnet18, batch 2 only, peer timed twice, its ``batch_size`` (rows per
  forward) at the cheapest point of the forward curve (its ablation layer also scans the whole
  batch of activations once per row, so larger batches cost it more, not less).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import torch

from attrib.methods.cam import (
    AblationCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from benchmarks.cases import Case, Contenders, register
from benchmarks.cases._shared import best_rows
from benchmarks.limits import Need
from benchmarks.models import Setup

FAMILY = "cam"
# Channels of resnet18's layer4: Score-CAM's masked forwards per image.
RESNET18_CHANNELS = 512
# Our settings that make each method compute the peer's map (see the module docstring).
SAME_MAP = {"upsample": True, "relu": True, "normalize": "minmax"}


def _peer_targets(setup: Setup) -> list[Any]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(int(c)) for c in setup.target.tolist()]


def _peer_call(
    setup: Setup, make: Callable[[list[torch.nn.Module]], Any]
) -> Callable[[], torch.Tensor]:
    """A timed peer call: construct (hooks on), run, release (hooks off), drop ``.grad``."""
    layer = setup.spec.layer
    targets = _peer_targets(setup)
    x = setup.x

    def run() -> torch.Tensor:
        with make([layer]) as cam:
            maps = cam(input_tensor=x, targets=targets)
        setup.model.zero_grad(set_to_none=True)
        return torch.from_numpy(maps)

    return run


def _ours_call(method: Any, setup: Setup) -> Callable[[], torch.Tensor]:
    x, target = setup.x, setup.target

    def run() -> torch.Tensor:
        return method(x, target=target).values

    return run


def _gradient_case(name: str, ours_cls: type, peer_name: str, **ours_kwargs: Any) -> Case:
    def build(setup: Setup) -> Contenders:
        import pytorch_grad_cam

        ours = ours_cls(setup.model, setup.spec.layer_name, **SAME_MAP, **ours_kwargs)
        peer_cls = getattr(pytorch_grad_cam, peer_name)
        peer = _peer_call(setup, lambda layers: peer_cls(model=setup.model, target_layers=layers))
        return Contenders(_ours_call(ours, setup), peer, "pytorch-grad-cam")

    return Case(name=name, family=FAMILY, needs=(Need("layer", 1),), build=build)


for _name, _cls, _peer, _kwargs in (
    ("grad-cam", GradCAM, "GradCAM", {}),
    ("grad-cam-pp", GradCAMPlusPlus, "GradCAMPlusPlus", {"eps": 1e-6}),
    ("xgrad-cam", XGradCAM, "XGradCAM", {}),
    ("hires-cam", HiResCAM, "HiResCAM", {}),
    ("layer-cam", LayerCAM, "LayerCAM", {}),
):
    register(_gradient_case(_name, _cls, _peer, **_kwargs))


def _quiet_tqdm(module: types.ModuleType) -> None:
    """The peer draws a tqdm progress bar per image; keep the harness's stderr readable."""
    import tqdm

    module.tqdm = types.SimpleNamespace(tqdm=functools.partial(tqdm.tqdm, disable=True))  # type: ignore[attr-defined]


def build_score(setup: Setup) -> Contenders:
    import pytorch_grad_cam
    from pytorch_grad_cam import score_cam

    _quiet_tqdm(score_cam)
    channels = _channels(setup)
    ours = ScoreCAM(setup.model, setup.spec.layer_name, align_corners=True, **SAME_MAP)
    rows = best_rows(setup, setup.batch * channels, "forward")

    def make(layers: list[torch.nn.Module]) -> Any:
        cam = pytorch_grad_cam.ScoreCAM(model=setup.model, target_layers=layers)
        cam.batch_size = rows  # read by its get_cam_weights (default 16)
        return cam

    return Contenders(_ours_call(ours, setup), _peer_call(setup, make), "pytorch-grad-cam")


def build_ablation(setup: Setup) -> Contenders:
    import pytorch_grad_cam
    from pytorch_grad_cam import ablation_cam

    _quiet_tqdm(ablation_cam)
    channels = _channels(setup)
    ours = AblationCAM(setup.model, setup.spec.layer_name, **SAME_MAP)
    rows = best_rows(setup, channels, "forward")

    def make(layers: list[torch.nn.Module]) -> Any:
        return pytorch_grad_cam.AblationCAM(
            model=setup.model, target_layers=layers, batch_size=rows
        )

    return Contenders(_ours_call(ours, setup), _peer_call(setup, make), "pytorch-grad-cam")


def _channels(setup: Setup) -> int:
    layer = setup.spec.layer
    with torch.no_grad():
        captured: list[int] = []
        handle = layer.register_forward_hook(lambda m, a, out: captured.append(out.shape[1]))
        try:
            setup.model(setup.x[:1])
        finally:
            handle.remove()
    return captured[0]


register(
    Case(
        name="score-cam",
        family=FAMILY,
        needs=(Need("forward", RESNET18_CHANNELS),),
        build=build_score,
        models=("resnet18",),
        batches=(2,),
        sizes=(224,),
        repeats=5,
        peer_repeats=3,
    )
)
register(
    Case(
        name="ablation-cam",
        family=FAMILY,
        needs=(Need("forward", 1),),
        build=build_ablation,
        models=("resnet18",),
        batches=(2,),
        peer_repeats=2,
    )
)

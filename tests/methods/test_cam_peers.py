"""Agreement with pytorch-grad-cam 1.5.7 on torchvision resnet18, vgg11 and densenet121
(random weights, fixed seed), for every method both libraries have, and for its extras
(several target layers, ``aug_smooth``, ``eigen_smooth``, ``FullGrad``) on resnet18 (and
vgg11 for FullGrad).

pytorch-grad-cam always applies ReLU, min-max normalises each map (adding 1e-7 to the
maximum), resizes with ``cv2.resize`` (bilinear on pixel centres, what our upsampling does),
and normalises again; we compare with ``normalize="minmax"``, to 1e-4 of the map's scale.
Its deliberate differences are set to its values here and listed in ``PEER_SETTINGS``;
the one it does not choose (densenet's ``features.norm5``) has its own test.
"""

from __future__ import annotations

import pytest
import torch

from attrib.methods.cam import (
    AblationCAM,
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
    rules,
    vit_reshape,
)
from attrib.methods.cam.maps import finish
from tests.models import torchvision_model
from tests.peers import assert_matches_peer

pg = pytest.importorskip("pytorch_grad_cam")
model_targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
reshape_transforms = pytest.importorskip("pytorch_grad_cam.utils.reshape_transforms")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread while this module runs: under ``pytest -n 2`` on two cores, two
    threads per worker spin against each other and made these tests ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TARGETS = [7, 412]
# the last block of each network (densenet: the block before norm5, see the norm5 test)
GRADIENT_LAYERS = {
    "resnet18": "layer4",
    "vgg11": "features.20",
    "densenet121": "features.denseblock4",
}
# 64 channels, so that one forward per channel stays cheap; non-negative outputs, where
# pytorch-grad-cam's ablation value is the paper's 0 (see test_ablation_cam)
PERTURBATION_LAYERS = {"resnet18": "layer1", "vgg11": "features.2", "densenet121": "features.pool0"}
# where pytorch-grad-cam deliberately differs from the papers, we set its choice
PEER_SETTINGS = {
    GradCAMPlusPlus: {"eps": 1e-6},  # 1e-6 in the denominator of a^k_ij
    EigenCAM: {"center": True, "relu": True},  # centred activations, ReLU
    ScoreCAM: {"align_corners": True},  # masks upsampled by nn.UpsamplingBilinear2d
}
PEERS = {
    GradCAM: "GradCAM",
    GradCAMPlusPlus: "GradCAMPlusPlus",
    XGradCAM: "XGradCAM",
    HiResCAM: "HiResCAM",
    LayerCAM: "LayerCAM",
    EigenCAM: "EigenCAM",
    ScoreCAM: "ScoreCAM",
    AblationCAM: "AblationCAM",
}


@pytest.fixture(scope="module", params=["resnet18", "vgg11", "densenet121"])
def network(request):
    model, x = torchvision_model(request.param)
    return request.param, model, x


def peer_maps(method, model, layer, x, reshape=None, **options):
    """pytorch-grad-cam's maps; its hooks are released and its parameter gradients cleared."""
    targets = [model_targets.ClassifierOutputTarget(c) for c in TARGETS[: len(x)]]
    peer_class = getattr(pg, PEERS[method])
    # its loss.backward() would compute every weight's gradient (vgg11: 133M); gradients at
    # the layer do not depend on which weights require one, so all but the first are frozen
    weights = [p for p in model.parameters() if p.requires_grad][1:]
    for p in weights:
        p.requires_grad_(False)
    try:
        with peer_class(
            model=model,
            target_layers=[model.get_submodule(layer)],
            reshape_transform=reshape,
            **options,
        ) as cam:
            return torch.from_numpy(cam(input_tensor=x, targets=targets))
    finally:
        for p in weights:
            p.requires_grad_(True)
        model.zero_grad(set_to_none=True)


def ours(method, model, layer, x, **settings):
    settings = {**PEER_SETTINGS.get(method, {}), "normalize": "minmax", **settings}
    return method(model, layer, **settings)(x, target=TARGETS[: len(x)]).values


@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, LayerCAM])
def test_gradient_cams(network, method):
    name, model, x = network
    layer = GRADIENT_LAYERS[name]
    assert_matches_peer(ours(method, model, layer, x), peer_maps(method, model, layer, x))


def test_eigen_cam_up_to_the_sign_of_the_singular_vector(network):
    """numpy's SVD returns ``v_1`` or ``-v_1`` as it pleases; we orient ``v_1`` to a
    non-negative sum. Each sample matches the peer with one of the two signs."""
    name, model, x = network
    layer = GRADIENT_LAYERS[name]
    peer = peer_maps(EigenCAM, model, layer, x)
    projection = EigenCAM(model, layer, center=True, upsample=False)(x).values
    for i in range(len(x)):
        errors = []
        for sign in (1.0, -1.0):
            candidate = finish(
                sign * projection[i : i + 1], relu=True, size=x.shape[-2:], normalize="minmax"
            )
            errors.append(float((candidate[0] - peer[i]).abs().max()))
        assert min(errors) <= 1e-4 * float(peer[i].abs().max()), errors


def small_input(name, x):
    """32 x 32 images, one forward per channel and image each; vgg11 (whose classifier costs
    100M multiply-adds per forward) on one image."""
    return x[: 1 if name == "vgg11" else 2, :, ::2, ::2]


def test_score_cam(network):
    name, model, x = network
    layer, small = PERTURBATION_LAYERS[name], small_input(name, x)
    assert_matches_peer(
        ours(ScoreCAM, model, layer, small), peer_maps(ScoreCAM, model, layer, small)
    )


def test_ablation_cam(network):
    """pytorch-grad-cam ablates to 0 when the layer's minimum is 0 (as here), and to
    ``min - 1e7`` otherwise; the paper, and we, always to 0 (``ablation_value``)."""
    name, model, x = network
    layer, small = PERTURBATION_LAYERS[name], small_input(name, x)
    got = AblationCAM(model, layer, normalize="minmax")(small, target=TARGETS[: len(small)])
    assert got.params["tail"] == "traced"
    assert_matches_peer(got.values, peer_maps(AblationCAM, model, layer, small))


def test_densenet_norm5_where_the_peer_reads_relu_overwritten_activations():
    """DenseNet's forward applies ``F.relu(features, inplace=True)`` to norm5's output.
    pytorch-grad-cam keeps a reference to that output, so it weighs ReLU(A) instead of A (its
    gradients are right); we capture a copy. Its map is ours with ReLU(A) in the rule."""
    model, x = torchvision_model("densenet121")
    layer = "features.norm5"
    peer = peer_maps(GradCAM, model, layer, x)
    from attrib.core.grad import layer_gradients

    got = layer_gradients(model, x, model.features.norm5, TARGETS)
    assert float(got.activations.min()) < 0  # norm5's own output is signed
    overwritten = rules.grad_cam(got.activations.clamp(min=0), got.gradients)
    assert_matches_peer(finish(overwritten, relu=True, size=x.shape[-2:], normalize="minmax"), peer)
    mine = ours(GradCAM, model, layer, x)
    assert float((mine - peer).abs().max()) > 1e-2  # and the two really differ


def test_vit_with_the_class_token_reshape():
    model, x = torchvision_model("vit_b_16")
    layer = "encoder.layers.encoder_layer_11.ln_1"

    def peer_reshape(tokens):
        return reshape_transforms.vit_reshape_transform(tokens, height=2, width=2)

    for method in (GradCAM, LayerCAM):
        assert_matches_peer(
            ours(method, model, layer, x, reshape=vit_reshape()),
            peer_maps(method, model, layer, x, reshape=peer_reshape),
        )


# ---- pytorch-grad-cam's extras: several layers, aug_smooth, eigen_smooth, FullGrad ----------


# classes whose Grad-CAM maps on resnet18 are not ReLU'd to zero at layer2-4 for either
# sample (class 412's are, for the second): a zero map would prove nothing
EXTRA_TARGETS = [7, 1]


def peer_call(peer_name, model, layers, x, **call):
    """pytorch-grad-cam's ``peer_name`` on ``layers`` (names), called with ``call``
    (``aug_smooth=``, ``eigen_smooth=``); every weight frozen (gradients at layers and inputs
    do not depend on which weights require one) and its hooks released."""
    targets = [model_targets.ClassifierOutputTarget(c) for c in EXTRA_TARGETS[: len(x)]]
    weights = [p for p in model.parameters() if p.requires_grad]
    for p in weights:
        p.requires_grad_(False)
    x = x.clone().requires_grad_(True)  # something for its loss.backward() to reach
    try:
        peer_class = getattr(pg, peer_name)
        chosen = [model.get_submodule(layer) for layer in layers]
        with peer_class(model=model, target_layers=chosen) as cam:
            return torch.from_numpy(cam(input_tensor=x, targets=targets, **call))
    finally:
        for p in weights:
            p.requires_grad_(True)
        model.zero_grad(set_to_none=True)


def test_several_layers_fused_as_the_peer_fuses_them():
    """Its ``aggregate_multi_layers``: each layer's map ReLU'd, scaled by ``(m - min) /
    (1e-7 + max - min)`` at the layer's size, resized, averaged, scaled again. The 1e-7 makes
    its layer ``l`` count ``range_l / (range_l + 1e-7)`` of ours: the fused maps differ by at
    most ``max_l 1e-7 / range_l`` before the last scaling, which divides by the fused range.
    layer2, layer3 and layer4 span three resolutions (8, 4, 2 at 64 x 64)."""
    model, x = torchvision_model("resnet18")
    layers = ["layer2", "layer3", "layer4"]
    got = GradCAM(model, layers, normalize="minmax")(x, target=EXTRA_TARGETS).values
    peer = peer_call("GradCAM", model, layers, x)
    raw = [
        GradCAM(model, layer, upsample=False)(x, target=EXTRA_TARGETS).values for layer in layers
    ]
    fused = GradCAM(model, layers)(x, target=EXTRA_TARGETS).values
    for i in range(len(x)):
        ranges = [float(m[i].max() - m[i].min()) for m in raw]
        spread = float(fused[i].max() - fused[i].min())
        assert min(ranges) > 0 and spread > 0  # every layer has a map to fuse
        # a layer whose ReLU'd map is 0 everywhere is 0 in both
        rel = 1e-4 + 2 * max((1e-7 / r for r in ranges if r > 0), default=0.0) / spread
        assert_matches_peer(got[i], peer[i], rel=rel)


@pytest.mark.parametrize("method", [GradCAM, LayerCAM])
def test_aug_smooth_as_the_peer_with_ttach(method):
    """Its mean over ttach's flips x factors of its (scaled) maps, not scaled again: ours with
    ``normalize="minmax"`` is that mean min-max scaled."""
    model, x = torchvision_model("resnet18")
    got = method(model, "layer4", normalize="minmax", aug_smooth=True)(x, target=EXTRA_TARGETS)
    peer = peer_call(PEERS[method], model, ["layer4"], x, aug_smooth=True)
    assert all(float(peer[i].max()) > 0 for i in range(len(x)))
    assert_matches_peer(got.values, finish(peer, relu=False, size=None, normalize="minmax"))
    assert float((peer - got.values).abs().max()) > 1e-2  # its mean is not rescaled


@pytest.mark.parametrize("method", [GradCAM, HiResCAM, LayerCAM, GradCAMPlusPlus])
def test_eigen_smooth_as_the_peer_up_to_the_sign_of_the_component(method):
    """``get_2d_projection`` of the weighted activations; numpy's SVD picks either sign of
    the component, ours points it the way the channel sum does: each sample matches one."""
    model, x = torchvision_model("resnet18")
    settings = PEER_SETTINGS.get(method, {})
    peer = peer_call(PEERS[method], model, ["layer4"], x, eigen_smooth=True)
    projection = method(model, "layer4", upsample=False, relu=False, eigen_smooth=True, **settings)
    projected = projection(x, target=EXTRA_TARGETS).values
    for i in range(len(x)):
        errors = []
        for sign in (1.0, -1.0):
            candidate = finish(
                sign * projected[i : i + 1], relu=True, size=x.shape[-2:], normalize="minmax"
            )
            errors.append(float((candidate[0] - peer[i]).abs().max()))
        assert min(errors) <= 1e-4 * float(peer[i].abs().max()), errors


@pytest.mark.parametrize("name", ["resnet18", "vgg11"])
def test_full_grad_as_the_peer(name):
    """resnet18: batch norms (folded biases), convolutions without bias; vgg11: convolutions
    with biases, linear biases left out. The peer scales each channel by ``(t - min) / (1e-7 +
    max - min)``: a channel of range ``r > 0`` counts ``r / (r + 1e-7)`` of ours, so the sums
    differ by at most ``sum_channels 1e-7 / (r + 1e-7)``, which the last scaling divides by
    the sum's range."""
    from attrib.core.grad import layers_and_input_gradients
    from attrib.methods.cam import FullGrad
    from attrib.methods.cam.fullgrad import bias_layers

    model, x = torchvision_model(name)
    got = FullGrad(model, normalize="minmax")(x, target=EXTRA_TARGETS).values
    with pg.FullGrad(model=model, target_layers=[]) as cam:
        weights = [p for p in model.parameters() if p.requires_grad]
        for p in weights:
            p.requires_grad_(False)
        try:
            targets = [model_targets.ClassifierOutputTarget(c) for c in EXTRA_TARGETS]
            peer = torch.from_numpy(cam(input_tensor=x, targets=targets))
        finally:
            for p in weights:
                p.requires_grad_(True)
            model.zero_grad(set_to_none=True)
    layers = bias_layers(model)
    parts = layers_and_input_gradients(model, x, [m for m, _ in layers], EXTRA_TARGETS)
    biases = {id(m): b for m, b in layers}
    terms = [(parts.input_gradients * x).abs()] + [
        (g * biases[id(m)].view(1, -1, 1, 1)).abs()
        for m, g in zip(parts.modules, parts.gradients, strict=True)
    ]
    total = FullGrad(model)(x, target=EXTRA_TARGETS).values
    for i in range(len(x)):
        slack = 0.0
        for t in terms:
            ranges = t[i].amax((1, 2)) - t[i].amin((1, 2))
            # a constant channel is 0 in both; the others count r / (r + 1e-7) of ours there
            slack += float((1e-7 / (ranges[ranges > 0] + 1e-7)).sum())
        rel = 1e-4 + 2 * slack / float(total[i].max() - total[i].min())
        assert_matches_peer(got[i], peer[i], rel=rel)

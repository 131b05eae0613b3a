"""The CAM family: each method against a slow, literal reimplementation of its paper, the
GAP-network identities, targets, chunking, reshape, errors and state.

The references below share nothing with attrib but torch: activations and gradients come
from a plain forward hook and ``torch.autograd.grad`` one sample at a time, every sum is an
explicit loop, Score-CAM runs one masked image per forward and Ablation-CAM one ablated
full forward per channel.
"""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from attrib.core.errors import AttribError, LayerError, SettingError, TargetError
from attrib.methods.cam import (
    CAM,
    AblationCAM,
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
    vit_reshape,
)
from attrib.methods.cam.maps import min_max, upsample
from attrib.methods.cam.score import masked_rows
from attrib.methods.gradient import Saliency
from tests.conftest import assert_state_restored, model_state
from tests.models import GapCNN, ResidualNet, torchvision_model

GRADIENT_METHODS = [GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, LayerCAM]
ALL_METHODS = [CAM, *GRADIENT_METHODS, ScoreCAM, AblationCAM, EigenCAM]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread while this module runs: under ``pytest -n 2`` on two cores, two
    threads per worker spin against each other and made these tests ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gap_cnn() -> tuple[nn.Module, torch.Tensor]:
    """GapCNN in float64: ``features`` (16 channels, 6 x 6) -> average pool -> fc (5)."""
    return GapCNN().double().eval(), torch.randn(3, 3, 12, 12, dtype=torch.float64)


def residual_net() -> tuple[nn.Module, torch.Tensor]:
    """ResidualNet in float64: in-place ReLUs, ``out += identity``, 8 channels at 8 x 8."""
    return ResidualNet().double().eval(), torch.randn(2, 3, 8, 8, dtype=torch.float64)


class TinyViT(nn.Module):
    """Patch tokens + a class token -> LayerNorm -> attention -> head on the class token."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.norm = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)
        h = self.norm(tokens)
        mixed, _ = self.attn(h, h, h)
        return self.head((h + mixed)[:, 0])


class BranchingNet(nn.Module):
    """Its output depends on the input's sign (not traceable by torch.fx), and ``aux`` is
    computed but never reaches the output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.aux = nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        self.aux(h)
        if float(x.sum()) > 1e9:  # data-dependent control flow
            h = h * 2
        return self.fc(h.mean(dim=(2, 3)))


# ---- slow references ------------------------------------------------------------------


def reference_capture(model, x, layer, classes, reshape=None):
    """(A, G, scores) one sample at a time with a plain hook and torch.autograd.grad."""
    acts, grads, scores = [], [], []
    for i, c in enumerate(classes):
        store = {}

        def hook(module, args, out, store=store):
            store["a"] = out.detach().clone().requires_grad_(True)
            return store["a"].clone()

        handle = layer.register_forward_hook(hook)
        try:
            score = model(x[i : i + 1])[0, c]
        finally:
            handle.remove()
        (g,) = torch.autograd.grad(score, store["a"])
        a = store["a"].detach()
        if reshape is not None:
            a, g = reshape(a), reshape(g)
        acts.append(a[0])
        grads.append(g[0])
        scores.append(float(score.detach()))
    return torch.stack(acts), torch.stack(grads), scores


def ref_grad_cam(a, g):
    k, h, w = a.shape
    out = torch.zeros(h, w, dtype=a.dtype)
    for ch in range(k):
        alpha = sum(float(g[ch, i, j]) for i in range(h) for j in range(w)) / (h * w)
        out += alpha * a[ch]
    return out


def ref_grad_cam_plus_plus(a, g):
    k, h, w = a.shape
    out = torch.zeros(h, w, dtype=a.dtype)
    for ch in range(k):
        total = float(a[ch].sum())
        weight = 0.0
        for i in range(h):
            for j in range(w):
                d = float(g[ch, i, j])
                denominator = 2 * d**2 + total * d**3
                alpha = d**2 / denominator if denominator != 0 else 0.0
                weight += alpha * max(d, 0.0)
        out += weight * a[ch]
    return out


def ref_xgrad_cam(a, g):
    k, h, w = a.shape
    out = torch.zeros(h, w, dtype=a.dtype)
    for ch in range(k):
        total = float(a[ch].sum())
        if total == 0:  # a dead channel: 0/0, and it adds nothing to the map anyway
            continue
        weight = sum(
            float(a[ch, i, j]) / total * float(g[ch, i, j]) for i in range(h) for j in range(w)
        )
        out += weight * a[ch]
    return out


def ref_hires_cam(a, g):
    out = torch.zeros(a.shape[1:], dtype=a.dtype)
    for ch in range(a.shape[0]):
        out += g[ch] * a[ch]
    return out


def ref_layer_cam(a, g):
    out = torch.zeros(a.shape[1:], dtype=a.dtype)
    for ch in range(a.shape[0]):
        out += g[ch].clamp(min=0) * a[ch]
    return out


REFERENCES = {
    GradCAM: ref_grad_cam,
    GradCAMPlusPlus: ref_grad_cam_plus_plus,
    XGradCAM: ref_xgrad_cam,
    HiResCAM: ref_hires_cam,
    LayerCAM: ref_layer_cam,
}


def ref_bilinear(m, size):
    """Seed 003's bilinear formula on half-pixel centres, clamped at the border."""
    h, w = m.shape
    big_h, big_w = size
    out = torch.empty(big_h, big_w, dtype=torch.float64)
    for row in range(big_h):
        y = min(max((row + 0.5) * h / big_h - 0.5, 0.0), h - 1.0)
        y1 = math.floor(y)
        y2 = y1 + 1
        for col in range(big_w):
            x = min(max((col + 0.5) * w / big_w - 0.5, 0.0), w - 1.0)
            x1 = math.floor(x)
            x2 = x1 + 1

            def f(xi, yi):
                return float(m[min(yi, h - 1), min(xi, w - 1)])

            out[row, col] = (
                f(x1, y1) * (x2 - x) * (y2 - y)
                + f(x2, y1) * (x - x1) * (y2 - y)
                + f(x1, y2) * (x2 - x) * (y - y1)
                + f(x2, y2) * (x - x1) * (y - y1)
            ) / ((x2 - x1) * (y2 - y1))
    return out


def ref_min_max(m):
    return (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else torch.zeros_like(m)


def ablated_forward(model, layer, x, value_fn):
    """A full forward with the layer's output replaced by ``value_fn(output)``."""
    handle = layer.register_forward_hook(lambda module, args, out: value_fn(out.clone()))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        handle.remove()


def close(ours, reference, tol=1e-9):
    reference = torch.as_tensor(reference, dtype=torch.float64)
    scale = float(reference.abs().max())
    assert scale > 0, "a zero reference proves nothing"
    torch.testing.assert_close(ours.double(), reference, rtol=0, atol=tol * scale)


# ---- each method against its paper ----------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("layer", ["block1", "block2.bn2"])  # after a ReLU / signed, in place
def test_gradient_cams_follow_their_papers_literally(method, layer):
    model, x = residual_net()
    classes = [1, 3]
    a, g, _ = reference_capture(model, x, model.get_submodule(layer), classes)
    raw = [REFERENCES[method](a[i], g[i]) for i in range(len(x))]
    ours = method(model, layer, relu=False, upsample=False)(x, target=classes)
    close(ours.values, torch.stack(raw))
    assert ours.values.shape == (2, 8, 8) and ours.channel_dim is None
    assert ours.target.tolist() == classes and ours.params["layer"] == layer
    # the ReLU, then the upsampling to the input, then the normalisation
    x_big = torch.nn.functional.interpolate(x, size=(11, 13))
    a, g, _ = reference_capture(model, x_big, model.get_submodule(layer), classes)
    want = [
        ref_min_max(ref_bilinear(REFERENCES[method](a[i], g[i]).clamp(min=0), (11, 13)))
        for i in range(len(x))
    ]
    ours = method(model, layer, normalize="minmax")(x_big, target=classes)
    close(ours.values, torch.stack(want))


def test_upsampling_is_the_seeds_bilinear_formula():
    maps = torch.randn(2, 3, 5, dtype=torch.float64)
    for size in [(7, 11), (12, 20), (3, 5)]:
        want = torch.stack([ref_bilinear(m, size) for m in maps])
        torch.testing.assert_close(upsample(maps, size), want, rtol=0, atol=1e-12)


def test_min_max_maps_each_sample_onto_the_unit_interval():
    maps = torch.stack([torch.randn(4, 4) * 5 + 3, torch.full((4, 4), 2.0)])
    got = min_max(maps)
    torch.testing.assert_close(got[0], (maps[0] - maps[0].min()) / (maps[0].max() - maps[0].min()))
    assert float(got[0].min()) == 0 and float(got[0].max()) == 1
    assert torch.equal(got[1], torch.zeros(4, 4))  # a constant map has no ranking


@pytest.mark.parametrize("weighting", ["softmax", "probability"])
def test_score_cam_matches_one_masked_forward_at_a_time(weighting):
    model, x = gap_cnn()
    with torch.no_grad():  # a dead channel: its map is constant (0), so its mask is zero
        model.features[5].weight[5] = 0.0
        model.features[5].bias[5] = -1.0
    classes = [0, 4, 2]
    a, _, _ = reference_capture(model, x, model.features, classes)
    assert float(a[:, 5].abs().max()) == 0
    want = []
    for i, c in enumerate(classes):
        scores = []
        for k in range(a.shape[1]):
            mask = ref_min_max(ref_bilinear(a[i, k], (12, 12)))
            with torch.no_grad():
                out = model(x[i : i + 1] * mask)[0]
            if weighting == "softmax":
                scores.append(float(out[c]))
            else:  # the authors' code: the class probability, and no weight for a dead map
                constant = bool(a[i, k].max() == a[i, k].min())
                scores.append(0.0 if constant else float(out.softmax(0)[c]))
        scores = torch.tensor(scores, dtype=torch.float64)
        weights = scores.softmax(0) if weighting == "softmax" else scores
        want.append(sum(weights[k] * a[i, k] for k in range(a.shape[1])))
    ours = ScoreCAM(model, "features", weighting=weighting, relu=False, upsample=False)
    close(ours(x, target=classes).values, torch.stack(want))


@pytest.mark.parametrize("weighting", ["softmax", "probability"])
def test_score_cam_runs_the_zero_image_once_per_sample_for_constant_maps(weighting):
    model, x = gap_cnn()
    with torch.no_grad():  # channel 5 dead (0), channel 7 a nonzero constant (relu(2) = 2)
        model.features[5].weight[5] = 0.0
        model.features[5].bias[5] = -1.0
        model.features[5].weight[7] = 0.0
        model.features[5].bias[7] = 2.0
    classes = [0, 4, 2]
    a, _, _ = reference_capture(model, x, model.features, classes)
    flat = a.flatten(2)
    live = flat.amax(2) != flat.amin(2)
    assert not live[:, 5].any() and not live[:, 7].any()
    rows = masked_rows(a, zero_image=weighting == "softmax")
    extra = 3 if weighting == "softmax" else 0  # one zero image per sample, or none
    assert len(rows.sample) == int(live.sum()) + extra
    sizes, handle = count_forwards(model.fc)
    try:
        got = ScoreCAM(model, "features", weighting=weighting, relu=False, upsample=False)(
            x, target=classes
        )
    finally:
        handle.remove()
    assert got.params["masked_forwards"] == int(live.sum()) + extra
    assert sum(sizes[1:]) == int(live.sum()) + extra  # after the capturing forward
    want = []
    for i, c in enumerate(classes):
        with torch.no_grad():
            zero = float(model(torch.zeros_like(x[i : i + 1]))[0, c])
        scores = []
        for k in range(a.shape[1]):
            if not live[i, k]:  # the zero mask, also for the nonzero constant
                scores.append(zero if weighting == "softmax" else 0.0)
                continue
            mask = ref_min_max(ref_bilinear(a[i, k], (12, 12)))
            with torch.no_grad():
                out = model(x[i : i + 1] * mask)[0]
            scores.append(float(out[c]) if weighting == "softmax" else float(out.softmax(0)[c]))
        scores = torch.tensor(scores, dtype=torch.float64)
        weights = scores.softmax(0) if weighting == "softmax" else scores
        want.append(sum(weights[k] * a[i, k] for k in range(a.shape[1])))
    close(got.values, torch.stack(want))


def test_score_cam_with_every_map_constant_and_probability_weighting_runs_no_row():
    model, x = gap_cnn()
    with torch.no_grad():
        model.features[5].weight.zero_()
        model.features[5].bias.fill_(-1.0)
    got = ScoreCAM(model, "features", weighting="probability")(x, target=[0, 1, 2])
    assert got.params["masked_forwards"] == 0
    assert torch.equal(got.values, torch.zeros_like(got.values))


@pytest.mark.parametrize(
    "make, layer, tail",
    [
        (residual_net, "block2", "traced"),  # the rest is pooling + fc
        (residual_net, "block2.bn2", "traced"),  # the rest reads the block's input again
        (
            lambda: (BranchingNet().double().eval(), torch.randn(2, 3, 6, 6).double()),
            "conv",
            "full forward",
        ),
    ],
)
def test_ablation_cam_matches_one_ablated_full_forward_at_a_time(make, layer, tail):
    model, x = make()
    module = model.get_submodule(layer)
    classes = [1, 2]
    a, _, scores = reference_capture(model, x, module, classes)
    want = []
    for i, c in enumerate(classes):
        total = torch.zeros(a.shape[2:], dtype=torch.float64)
        for k in range(a.shape[1]):

            def ablate(out, k=k):
                out[:, k] = 0.0
                return out

            dropped = float(ablated_forward(model, module, x[i : i + 1], ablate)[0, c])
            total += (scores[i] - dropped) / scores[i] * a[i, k]
        want.append(total)
    got = AblationCAM(model, layer, relu=False, upsample=False, batch_size=3)(x, target=classes)
    close(got.values, torch.stack(want))
    assert got.params["tail"] == tail


def test_ablation_value_is_what_the_channel_is_set_to():
    model, x = residual_net()
    module = model.block2
    a, _, scores = reference_capture(model, x[:1], module, [0])
    total = torch.zeros(a.shape[2:], dtype=torch.float64)
    for k in range(a.shape[1]):

        def ablate(out, k=k):
            out[:, k] = -1.5
            return out

        dropped = float(ablated_forward(model, module, x[:1], ablate)[0, 0])
        total += (scores[0] - dropped) / scores[0] * a[0, k]
    got = AblationCAM(model, "block2", ablation_value=-1.5, relu=False, upsample=False)
    close(got(x[:1], target=0).values[0], total)


@pytest.mark.parametrize("center", [False, True])
def test_eigen_cam_is_the_projection_on_the_top_eigenvector(center):
    model, x = gap_cnn()
    a, _, _ = reference_capture(model, x, model.features, [0, 0, 0])
    want = []
    for i in range(len(x)):
        matrix = a[i].reshape(a.shape[1], -1).T  # (locations, channels)
        if center:
            matrix = matrix - matrix.mean(0)
        _, vectors = torch.linalg.eigh(matrix.T @ matrix)
        top = vectors[:, -1]
        top = top if float(top.sum()) >= 0 else -top
        want.append((matrix @ top).reshape(a.shape[2:]))
    got = EigenCAM(model, "features", center=center, upsample=False)(x)
    close(got.values, torch.stack(want))
    assert got.target.tolist() == model(x).argmax(1).tolist()  # recorded, not used
    other = EigenCAM(model, "features", center=center, upsample=False)(x, target=1)
    torch.testing.assert_close(other.values, got.values)


@pytest.mark.parametrize("center", [False, True])
def test_eigen_cam_orients_the_component_the_way_the_channels_point(center):
    """With O the (centred) activation matrix, (O v_1) . (O 1) = lambda_1 sum(v_1): the map
    correlates positively with the channel sum exactly when v_1 sums to >= 0, whatever
    sign the SVD returned (random signed maps give both)."""
    from attrib.methods.cam import rules

    activations = torch.randn(20, 6, 4, 4, dtype=torch.float64)
    maps = rules.eigen_cam(activations, center=center)
    matrix = activations.flatten(2)
    if center:
        matrix = matrix - matrix.mean(dim=2, keepdim=True)
    channel_sum = matrix.sum(dim=1)  # (N, locations)
    assert bool(((maps.flatten(1) * channel_sum).sum(dim=1) >= 0).all())


def test_eigen_cam_of_non_negative_maps_without_centering_is_non_negative():
    model, x = gap_cnn()  # "features" ends in a ReLU
    got = EigenCAM(model, "features", upsample=False)(x)
    assert float(got.values.min()) >= 0 and float(got.values.max()) > 0


def test_cam_is_the_linear_heads_class_weights_on_the_maps():
    model, x = gap_cnn()
    classes = [4, 0, 2]
    a, _, _ = reference_capture(model, x, model.features, classes)
    weight = model.fc.weight.detach()
    want = []
    for i, c in enumerate(classes):
        total = torch.zeros(a.shape[2:], dtype=torch.float64)
        for k in range(a.shape[1]):
            total += float(weight[c, k]) * a[i, k]
        want.append(total)
    for head in [None, "fc", model.fc, weight]:
        got = CAM(model, "features", head=head, upsample=False)(x, target=classes)
        close(got.values, torch.stack(want))
    assert float(got.values.min()) < 0  # the paper's map keeps its sign


def test_grad_cam_is_relu_cam_over_the_area_on_a_gap_network():
    """Grad-CAM's alpha_k is w_ck / (h w) when pooling + linear follow the layer; the
    gradient is then constant over locations, so HiResCAM equals Grad-CAM."""
    model, x = gap_cnn()
    classes = [1, 3, 4]
    cam = CAM(model, "features", upsample=False)(x, target=classes).values
    grad_cam = GradCAM(model, "features", upsample=False)(x, target=classes).values
    close(grad_cam, cam.clamp(min=0) / (6 * 6))
    for upsampled in [False, True]:  # the ReLU comes before the upsampling in both
        cam = CAM(model, "features", relu=True, upsample=upsampled)(x, target=classes).values
        grad_cam = GradCAM(model, "features", upsample=upsampled)(x, target=classes).values
        close(grad_cam, cam / (6 * 6))
        hires = HiResCAM(model, "features", upsample=upsampled)(x, target=classes).values
        close(hires, grad_cam)


# ---- layer, targets, chunking, forwards ---------------------------------------------------


def test_layer_by_name_by_module_and_by_default():
    model, x = gap_cnn()
    by_name = GradCAM(model, "features.5")(x, target=1)
    by_module = GradCAM(model, model.features[5])(x, target=1)
    default = GradCAM(model)(x, target=1)  # the last convolution
    assert by_name.params["layer"] == by_module.params["layer"] == default.params["layer"]
    assert default.params["layer"] == "features.5"
    torch.testing.assert_close(by_module.values, by_name.values)
    torch.testing.assert_close(default.values, by_name.values)
    other = GradCAM(model, "features.2")(x, target=1)
    assert other.params["layer"] == "features.2"
    assert not torch.allclose(other.values, by_name.values)
    with pytest.raises(LayerError, match="module of the model"):
        GradCAM(model, nn.Conv2d(1, 1, 1))(x, target=1)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_per_sample_targets_in_one_call_equal_separate_calls(method):
    model, x = gap_cnn()
    classes = [0, 4, 2]
    explain = method(model, "features", batch_size=7)
    together = explain(x, target=classes)
    apart = torch.cat([explain(x[i : i + 1], target=c).values for i, c in enumerate(classes)])
    torch.testing.assert_close(together.values, apart, rtol=1e-9, atol=1e-12)
    assert together.target.tolist() == classes
    assert together.values.shape == (3, 12, 12)
    assert float(together.values.abs().max()) > 0


def count_forwards(module):
    sizes = []
    handle = module.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    return sizes, handle


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_cams_need_one_forward_which_also_resolves_predicted(method):
    model, x = gap_cnn()
    sizes, handle = count_forwards(model)
    try:
        got = method(model, "features")(x, target="predicted")
    finally:
        handle.remove()
    assert sizes == [3]
    assert got.target.tolist() == model(x).argmax(1).tolist()
    torch.testing.assert_close(got.output, model(x))


@pytest.mark.parametrize("method", [ScoreCAM, AblationCAM])
@pytest.mark.parametrize("batch_size", [1, 5, 48])
def test_masked_and_ablated_rows_run_in_chunks_of_batch_size(method, batch_size):
    model, x = gap_cnn()
    whole = method(model, "features")(x, target=[0, 1, 2]).values
    sizes, handle = count_forwards(model.fc)  # runs in every row's forward, traced or not
    try:
        got = method(model, "features", batch_size=batch_size)(x, target=[0, 1, 2]).values
    finally:
        handle.remove()
    torch.testing.assert_close(got, whole, rtol=1e-9, atol=1e-12)
    rows = 3 * 16  # samples x channels
    if method is ScoreCAM:  # constant maps share one zero image per sample
        rows = method(model, "features")(x, target=[0, 1, 2]).params["masked_forwards"]
        assert rows < 3 * 16
    row_forwards = sizes[-math.ceil(rows / batch_size) :]
    assert max(row_forwards) <= batch_size and sum(row_forwards) == rows


def test_score_cam_runs_the_engine_default_rows_per_forward():
    """Score-CAM's masked images go through the engine's chunks: 8 rows per forward for
    ImageNet-sized inputs on CPU."""
    from attrib.core.batching import default_batch_size

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 20, 7, stride=16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(20, 3),
    ).eval()  # fmt: skip
    x = torch.rand(1, 3, 224, 224)
    sizes, handle = count_forwards(model[4])
    try:
        rows = ScoreCAM(model, "1")(x, target=0).params["masked_forwards"]
    finally:
        handle.remove()
    expected = default_batch_size(x, rows)
    assert expected == 8 and rows > expected
    row_forwards = sizes[-math.ceil(rows / expected) :]
    assert max(row_forwards) <= expected and sum(row_forwards) == rows


def test_ablation_cam_runs_only_the_network_after_the_layer():
    model, x = gap_cnn()
    before, handle = count_forwards(model.features[0])
    try:
        got = AblationCAM(model, "features")(x, target=[0, 1, 2])
    finally:
        handle.remove()
    assert got.params["tail"] == "traced"
    assert sum(before) == 3  # one capture forward: no ablated row went through the convs


# ---- reshape (transformers) -------------------------------------------------------------


def test_token_models_with_a_vit_reshape():
    model = TinyViT().double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    classes = [2, 0]
    reshape = vit_reshape()
    a, g, scores = reference_capture(model, x, model.norm, classes, reshape=reshape)
    assert a.shape == (2, 8, 3, 3)
    got = GradCAM(model, "norm", reshape=reshape, relu=False, upsample=False)(x, target=classes)
    close(got.values, torch.stack([ref_grad_cam(a[i], g[i]) for i in range(2)]))
    # Ablation-CAM sets feature k of every patch token; the class token is not on the grid
    want = []
    for i, c in enumerate(classes):
        total = torch.zeros(3, 3, dtype=torch.float64)
        for k in range(8):

            def ablate(out, k=k):
                out[:, 1:, k] = 0.0
                return out

            dropped = float(ablated_forward(model, model.norm, x[i : i + 1], ablate)[0, c])
            total += (scores[i] - dropped) / scores[i] * a[i, k]
        want.append(total)
    ours = AblationCAM(model, "norm", reshape=reshape, relu=False, upsample=False)
    close(ours(x, target=classes).values, torch.stack(want))
    for method in [ScoreCAM, EigenCAM, LayerCAM]:
        assert method(model, "norm", reshape=reshape)(x, target=classes).values.shape == (2, 12, 12)


def test_vit_reshape_grids():
    tokens = torch.arange(2 * 7 * 3, dtype=torch.float64).view(2, 7, 3)
    grid = vit_reshape(grid=(2, 3))(tokens)
    assert grid.shape == (2, 3, 2, 3)
    assert torch.equal(grid[1, 2, 1, 0], tokens[1, 1 + 3 + 0, 2])  # row 1, column 0
    assert vit_reshape(class_tokens=3)(tokens).shape == (2, 3, 2, 2)
    with pytest.raises(LayerError, match="square"):
        vit_reshape()(tokens[:, :6])
    with pytest.raises(LayerError, match="patch tokens"):
        vit_reshape(grid=(3, 3))(tokens)


@pytest.mark.slow
def test_torchvision_vit_with_reshape():
    model, x = torchvision_model("vit_b_16")  # image size 32: 2 x 2 patches + class token
    layer = "encoder.layers.encoder_layer_11.ln_1"
    a, g, _ = reference_capture(model, x, model.get_submodule(layer), [3, 9], vit_reshape())
    got = GradCAM(model, layer, reshape=vit_reshape(), relu=False, upsample=False)
    maps = got(x, target=[3, 9]).values
    assert maps.shape == (2, 2, 2)
    torch.testing.assert_close(
        maps, torch.stack([ref_grad_cam(a[i], g[i]) for i in range(2)]), rtol=1e-4, atol=1e-6
    )
    full = GradCAM(model, layer, reshape=vit_reshape(grid=(2, 2)))(x, target=[3, 9])
    assert full.values.shape == (2, 32, 32)


# ---- Guided Grad-CAM ------------------------------------------------------------------


def test_guided_grad_cam_is_the_guide_times_the_upsampled_map():
    model, x = gap_cnn()
    classes = [3, 1, 0]
    got = GuidedGradCAM(model, "features", guide=Saliency(model))(x, target=classes)
    fine = Saliency(model)(x, target=classes).values
    cam = GradCAM(model, "features")(x, target=classes).values
    assert got.values.shape == x.shape and got.channel_dim == 1
    close(got.values, fine * cam.unsqueeze(1))
    assert got.target.tolist() == classes


def test_guided_grad_cam_with_guided_backprop():
    try:
        from attrib.methods.propagation import GuidedBackprop
    except ImportError:
        pytest.skip("attrib.methods.propagation.GuidedBackprop is not there yet")
    model, x = gap_cnn()
    got = GuidedGradCAM(model, "features")(x, target="predicted")
    resolved = got.target
    fine = GuidedBackprop(model)(x, target=resolved).values
    cam = GradCAM(model, "features")(x, target=resolved).values
    close(got.values, fine * cam.unsqueeze(1))


# ---- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_layer_name_that_does_not_exist_lists_close_names(method):
    model, x = gap_cnn()
    with pytest.raises(LayerError, match=r"features\.5"):
        method(model, "featurs.5")(x, target=0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_layer_without_spatial_maps_needs_a_reshape(method):
    """On 13 x 13 images TinyViT's 1 + 3 x 3 tokens (patches of 4, the border dropped) fit no
    grid (13 / p) x (13 / p): no layout is found (``attrib.methods.cam.layouts``)."""
    model = TinyViT().eval()
    with pytest.raises(LayerError, match="reshape='vit'"):
        method(model, "norm")(torch.randn(2, 3, 13, 13), target=0)
    # on 12 x 12 images the tokens fit one layout: 1 class token and 3 x 3 patches of 4
    x = torch.randn(2, 3, 12, 12)
    found = GradCAM(model, "norm", upsample=False)(x, target=0).values
    torch.testing.assert_close(
        found, GradCAM(model, "norm", reshape=vit_reshape(), upsample=False)(x, target=0).values
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_layer_not_on_the_path_to_the_target(method):
    model = BranchingNet().eval()
    with pytest.raises(LayerError, match="does not depend"):
        method(model, "aux")(torch.randn(2, 3, 6, 6), target=1)


def test_cam_refuses_models_that_are_not_pooling_plus_linear():
    model, x = gap_cnn()
    with pytest.raises(LayerError, match="global average pooling"):
        CAM(model, "features.5")(x, target=0)  # a ReLU comes between the layer and the pooling
    flat = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 12 * 12, 2))
    with pytest.raises(LayerError, match=r"no nn\.Linear taking 4 features"):
        CAM(flat.double().eval(), "0")(x, target=0)
    with pytest.raises(TargetError, match="class index"):
        CAM(model, "features")(x, target=lambda out: out[:, 0])


def test_bad_settings():
    model, _ = gap_cnn()
    with pytest.raises(SettingError):
        GradCAM(model, normalize="l2")
    with pytest.raises(SettingError):
        GradCAM(model, upsample="yes")
    with pytest.raises(SettingError):
        GradCAM(model, layer=3)
    with pytest.raises(SettingError, match="'swin'"):
        GradCAM(model, reshape="deit")
    with pytest.raises(SettingError):
        GradCAMPlusPlus(model, eps=-1)
    with pytest.raises(SettingError):
        ScoreCAM(model, weighting="mean")
    with pytest.raises(SettingError, match="upsample=False"):
        GradCAM(nn.Sequential(nn.Unflatten(1, (1, 6, 1)), nn.Conv2d(1, 2, 1), nn.Flatten()).eval())(
            torch.randn(2, 6), target=0
        )
    doubled = AblationCAM(TinyViT().eval(), "norm", reshape=lambda t: 2 * vit_reshape()(t))
    with pytest.raises(SettingError, match="only moves values"):
        doubled(torch.randn(1, 3, 12, 12), target=0)
    assert issubclass(LayerError, AttribError) and issubclass(SettingError, AttribError)


# ---- state ------------------------------------------------------------------------------


class FailingLinear(nn.Linear):
    """Raises from its ``fail_from``-th call on (0: the first)."""

    fail_from = 0

    def forward(self, x):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.fail_from:
            raise RuntimeError("boom")
        return super().forward(x)


@pytest.mark.parametrize("method", [*ALL_METHODS, GuidedGradCAM])
def test_no_state_is_left_on_the_model_also_after_an_exception(method):
    model, x = gap_cnn()
    model.train()  # explained in eval mode with a warning, put back afterwards
    before = model_state(model)
    with pytest.warns(Warning, match="training mode"):
        method(
            model, "features", **({"guide": Saliency(model)} if method is GuidedGradCAM else {})
        )(x, target=[0, 1, 2])
    assert_state_restored(model, before)
    failing = FailingLinear(16, 5).double()
    failing.fail_from = 1 if method in (ScoreCAM, AblationCAM) else 0  # fail in the row forwards
    model.fc = failing
    model.eval()
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        extra = {"guide": Saliency(model)} if method is GuidedGradCAM else {}
        method(model, "features", **extra)(x, target=[0, 1, 2])
    assert_state_restored(model, before)


def test_methods_pickle_after_use():
    model, x = gap_cnn()
    explain = AblationCAM(model, "features")
    first = explain(x, target=[0, 1, 2])
    again = pickle.loads(pickle.dumps(explain))
    torch.testing.assert_close(again(x, target=[0, 1, 2]).values, first.values)
    assert pickle.loads(pickle.dumps(GradCAM(model, reshape=vit_reshape()))).reshape.grid is None

"""pytorch-grad-cam's extras, each against a slow, literal reference: several layers fused,
test-time augmentation smoothing, principal-component smoothing, and FullGrad.

The references share nothing with attrib but torch: activations and gradients come from a
plain hook and ``torch.autograd.grad`` one sample and one layer at a time
(``tests.methods.test_cam.reference_capture``), sums, flips, scalings, projections and the
bilinear upsampling are explicit loops, principal directions come from an eigendecomposition
of the covariance (not the SVD the library uses).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError
from attrib.core.grad import (
    batched_layers_and_input_gradients,
    input_gradients,
    layer_gradients,
    layers_and_input_gradients,
)
from attrib.methods.cam import (
    CAM,
    AblationCAM,
    EigenCAM,
    FullGrad,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from attrib.methods.cam.base import AUGMENTATIONS
from attrib.methods.cam.fullgrad import effective_bias
from attrib.methods.cam.maps import finish, min_max
from tests.conftest import assert_state_restored, model_state
from tests.methods.test_cam import (
    REFERENCES,
    close,
    count_forwards,
    gap_cnn,
    ref_bilinear,
    ref_min_max,
    reference_capture,
    residual_net,
)

GRADIENT_METHODS = list(REFERENCES)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def with_batch_norm_statistics(model: nn.Module, seed: int = 5) -> nn.Module:
    """Batch norms with non-trivial statistics and affine parameters (fresh ones add a zero
    bias, which would make every bias part of FullGrad vanish)."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            k = module.num_features
            dtype = module.running_mean.dtype
            module.running_mean.copy_(torch.rand(k, generator=g, dtype=dtype) - 0.5)
            module.running_var.copy_(0.5 + 1.5 * torch.rand(k, generator=g, dtype=dtype))
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(k, generator=g, dtype=dtype))
                module.bias.copy_(torch.rand(k, generator=g, dtype=dtype) - 0.5)
    return model


def ref_layer_map(method, model, x, layer, classes):
    """The method's map before ReLU at ``layer``, one sample at a time, by its reference."""
    a, g, _ = reference_capture(model, x, model.get_submodule(layer), classes)
    return [REFERENCES[method](a[i], g[i]) for i in range(len(x))]


# ---- several layers ----------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("normalize", [None, "minmax"])
def test_several_layers_are_scaled_upsampled_and_averaged(method, normalize):
    """GapCNN's ``features.0`` is 11 x 13 like the input, ``features.5`` 6 x 7: each map is
    ReLU'd, min-max scaled at its own size, upsampled, and the maps averaged."""
    model, _ = gap_cnn()
    x = torch.randn(2, 3, 11, 13, dtype=torch.float64)
    classes = [1, 3]
    layers = ["features.0", "features.5"]
    per_layer = [ref_layer_map(method, model, x, layer, classes) for layer in layers]
    want = []
    for i in range(len(x)):
        scaled = [ref_bilinear(ref_min_max(maps[i].clamp(min=0)), (11, 13)) for maps in per_layer]
        fused = sum(scaled) / len(scaled)
        want.append(ref_min_max(fused) if normalize else fused)
    got = method(model, layers, normalize=normalize)(x, target=classes)
    close(got.values, torch.stack(want))
    assert got.params["layer"] == layers and got.values.shape == (2, 11, 13)


def test_a_list_of_one_layer_is_that_layer():
    model, x = gap_cnn()
    alone = GradCAM(model, "features.5")(x, target=[0, 1, 2])
    listed = GradCAM(model, ["features.5"])(x, target=[0, 1, 2])
    torch.testing.assert_close(listed.values, alone.values, rtol=0, atol=0)
    assert listed.params["layer"] == ["features.5"] and alone.params["layer"] == "features.5"


def test_layers_by_module_and_predicted_decided_by_the_first_layer():
    model, x = gap_cnn()
    by_module = GradCAM(model, [model.features[0], model.features[5]])(x, target="predicted")
    predicted = model(x).argmax(1)
    by_name = GradCAM(model, ["features.0", "features.5"])(x, target=predicted)
    torch.testing.assert_close(by_module.values, by_name.values, rtol=0, atol=0)
    assert by_module.target.tolist() == predicted.tolist()
    assert by_module.params["layer"] == ["features.0", "features.5"]


@pytest.mark.parametrize("method", [ScoreCAM, AblationCAM, EigenCAM])
def test_every_cam_fuses_its_own_maps(method):
    """The fused map is the fusion rule applied to each layer's map as the method makes it
    alone (ReLU where the method applies one); per-layer counts are listed, one per layer."""
    model, x = gap_cnn()
    layers = ["features.2", "features"]
    alone = [
        method(model, layer, upsample=False, relu=False)(x, target=[0, 1, 2]) for layer in layers
    ]
    relu = method.relu.default

    def scaled(m):
        return ref_bilinear(ref_min_max(m.clamp(min=0) if relu else m), (12, 12))

    want = torch.stack([sum(scaled(a.values[i]) for a in alone) / 2 for i in range(len(x))])
    got = method(model, layers)(x, target=[0, 1, 2])
    close(got.values, want)
    for key in ("masked_forwards", "tail"):
        if key in alone[0].params:
            assert got.params[key] == [a.params[key] for a in alone]


def test_layers_of_one_size_fuse_without_upsampling_and_of_two_sizes_need_it():
    model, x = residual_net()
    layers = ["block1", "block2.bn2"]  # both 8 x 8
    per_layer = [ref_layer_map(GradCAM, model, x, layer, [0, 2]) for layer in layers]
    want = [sum(ref_min_max(m[i].clamp(min=0)) for m in per_layer) / 2 for i in range(2)]
    got = GradCAM(model, layers, upsample=False)(x, target=[0, 2])
    close(got.values, torch.stack(want))
    model, x = gap_cnn()  # features.0 is 12 x 12, features.5 is 6 x 6
    with pytest.raises(SettingError, match="upsample=True"):
        GradCAM(model, ["features.0", "features.5"], upsample=False)(x, target=0)


def test_bad_layer_lists():
    model, x = gap_cnn()
    for bad in ([], ["features", 3], [None]):
        with pytest.raises(SettingError, match="a list of them"):
            GradCAM(model, bad)
    with pytest.raises(SettingError, match="different layers"):
        GradCAM(model, ["features", "features"])(x, target=0)
    with pytest.raises(LayerError, match=r"features\.5"):
        GradCAM(model, ["features", "featurs.5"])(x, target=0)


# ---- test-time augmentation --------------------------------------------------------------


def ref_augmented(method, model, x, classes, normalize):
    """The mean over flips and factors of the literal map of the flipped, scaled input,
    each flipped back; with min-max scaling of each map and of the mean."""
    n, _, h, w = x.shape
    maps = []
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            augmented = torch.empty_like(x)
            for j in range(w):
                augmented[..., j] = factor * x[..., w - 1 - j if flip else j]
            raw = ref_layer_map(method, model, augmented, "features.5", classes)
            for i in range(n):
                up = ref_bilinear(raw[i].clamp(min=0), (h, w))
                up = ref_min_max(up) if normalize else up
                back = torch.empty_like(up)
                for j in range(w):
                    back[:, j] = up[:, w - 1 - j if flip else j]
                maps.append((i, back))
    mean = [sum(m for k, m in maps if k == i) / 6 for i in range(n)]
    return torch.stack([ref_min_max(m) if normalize else m for m in mean])


@pytest.mark.parametrize("method", [GradCAM, LayerCAM])
@pytest.mark.parametrize("normalize", [None, "minmax"])
def test_aug_smooth_averages_the_flipped_and_scaled_maps(method, normalize):
    model, _ = gap_cnn()
    x = torch.randn(2, 3, 10, 13, dtype=torch.float64)
    classes = [4, 1]
    got = method(model, "features.5", aug_smooth=True, normalize=normalize)(x, target=classes)
    close(got.values, ref_augmented(method, model, x, classes, normalize))
    assert got.params["augmentations"] == len(AUGMENTATIONS) == 6
    assert got.params["aug_smooth"] is True and got.params["layer"] == "features.5"


def test_aug_smooth_decides_predicted_once_at_the_input_and_runs_one_forward_per_view():
    model, x = gap_cnn()
    predicted = model(x).argmax(1)
    sizes, handle = count_forwards(model)
    try:
        got = GradCAM(model, "features", aug_smooth=True)(x, target="predicted")
    finally:
        handle.remove()
    assert sizes == [3] * 6
    assert got.target.tolist() == predicted.tolist()
    torch.testing.assert_close(got.output, model(x))
    explicit = GradCAM(model, "features", aug_smooth=True)(x, target=predicted)
    torch.testing.assert_close(got.values, explicit.values, rtol=0, atol=0)


def test_aug_smooth_with_guided_grad_cam_and_several_layers():
    """The Grad-CAM mask is smoothed, then multiplied by the guide; layers fuse per view."""
    from attrib.methods.gradient import Saliency

    model, x = gap_cnn()
    guide = Saliency(model)
    mask = GradCAM(model, "features.5", aug_smooth=True)(x, target=[0, 1, 2]).values
    got = GuidedGradCAM(model, "features.5", aug_smooth=True, guide=guide)(x, target=[0, 1, 2])
    close(got.values, guide(x, target=[0, 1, 2]).values * mask.unsqueeze(1))
    layers = ["features.0", "features.5"]
    fused = GradCAM(model, layers, aug_smooth=True)(x, target=[0, 1, 2])
    views = []
    for flip, factor in AUGMENTATIONS:
        view = x * factor
        one = GradCAM(model, layers)(view.flip(-1) if flip else view, target=[0, 1, 2]).values
        views.append(one.flip(-1) if flip else one)
    close(fused.values, torch.stack(views).mean(0))


def test_aug_smooth_needs_image_batches():
    model = nn.Sequential(nn.Unflatten(1, (1, 6, 1)), nn.Conv2d(1, 2, 1), nn.Flatten()).eval()
    with pytest.raises(SettingError, match="aug_smooth"):
        GradCAM(model, "1", aug_smooth=True, upsample=False)(torch.randn(2, 6), target=0)


# ---- principal-component smoothing -------------------------------------------------------


def ref_first_component(terms):
    """``terms`` (K, h, w) as an (h w) x K matrix, centred per channel, projected on the top
    eigenvector of its covariance, oriented to a non-negative entry sum."""
    k, h, w = terms.shape
    matrix = torch.empty(h * w, k, dtype=torch.float64)
    for c in range(k):
        for i in range(h):
            for j in range(w):
                matrix[i * w + j, c] = float(terms[c, i, j])
    matrix -= matrix.mean(dim=0, keepdim=True)
    _, vectors = torch.linalg.eigh(matrix.T @ matrix)
    top = vectors[:, -1]
    top = -top if float(top.sum()) < 0 else top
    return (matrix @ top).view(h, w)


def ref_weight(method, a, g):
    """Channel ``c``'s weight, by the paper's formula, with explicit loops."""
    h, w = a.shape
    cells = [(i, j) for i in range(h) for j in range(w)]
    if method is GradCAM:
        return sum(float(g[i, j]) for i, j in cells) / (h * w)
    if method is XGradCAM:
        total = float(a.sum())
        return sum(float(a[i, j] * g[i, j]) for i, j in cells) / total if total else 0.0
    total, weight = float(a.sum()), 0.0  # Grad-CAM++, eq. 19
    for i, j in cells:
        d = float(g[i, j])
        denominator = 2 * d**2 + total * d**3
        weight += (d**2 / denominator if denominator else 0.0) * max(d, 0.0)
    return weight


def ref_terms(method, a, g):
    """The channel terms whose sum is the method's map: ``w_k A^k``, or element-wise."""
    if method is HiResCAM:
        return torch.stack([g[c] * a[c] for c in range(len(a))])
    if method is LayerCAM:
        return torch.stack([g[c].clamp(min=0) * a[c] for c in range(len(a))])
    return torch.stack([ref_weight(method, a[c], g[c]) * a[c] for c in range(len(a))])


@pytest.mark.parametrize("method", [GradCAM, XGradCAM, HiResCAM, LayerCAM, GradCAMPlusPlus])
def test_eigen_smooth_projects_the_channel_terms_on_their_first_component(method):
    model, x = residual_net()
    classes = [1, 3]
    a, g, _ = reference_capture(model, x, model.get_submodule("block2.bn2"), classes)
    want = torch.stack([ref_first_component(ref_terms(method, a[i], g[i])) for i in range(2)])
    got = method(model, "block2.bn2", eigen_smooth=True, relu=False, upsample=False)
    close(got(x, target=classes).values, want, tol=1e-8)
    # oriented the way the plain map points: positively correlated with the channel sum
    plain = method(model, "block2.bn2", relu=False, upsample=False)(x, target=classes).values
    smooth = got(x, target=classes).values
    for i in range(2):
        centred = (smooth[i] - smooth[i].mean()) * (plain[i] - plain[i].mean())
        assert float(centred.sum()) > 0


def test_eigen_smooth_of_weighted_cams_projects_the_weighted_maps():
    """CAM's terms are ``w_ck A^k`` (the linear head's weights); Score-CAM's ``softmax`` weights
    times ``A^k``: each is the first component of its own weighted maps."""
    model, x = gap_cnn()
    a, _, _ = reference_capture(model, x, model.features, [0, 1, 2])
    weights = model.fc.weight.detach()[[0, 1, 2]]
    want = torch.stack([ref_first_component(weights[i].view(-1, 1, 1) * a[i]) for i in range(3)])
    got = CAM(model, "features", eigen_smooth=True, upsample=False)(x, target=[0, 1, 2]).values
    close(got, want, tol=1e-8)
    with pytest.raises(SettingError, match="eigen_smooth"):
        EigenCAM(model, "features", eigen_smooth=True)  # its map already is the component


def test_eigen_smooth_is_recorded_and_relu_follows_it():
    model, x = gap_cnn()
    raw = GradCAM(model, "features", eigen_smooth=True, relu=False, upsample=False)(x, target=0)
    done = GradCAM(model, "features", eigen_smooth=True)(x, target=0)
    close(done.values, finish(raw.values, relu=True, size=(12, 12), normalize=None))
    assert done.params["eigen_smooth"] is True


# ---- the core capture FullGrad uses ------------------------------------------------------


class TwiceNet(nn.Module):
    """One convolution called twice, an in-place ReLU after a batch norm."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(6)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        h = self.relu(self.bn(self.conv(x)))
        h = self.relu(self.conv(h))
        return self.fc(h.mean(dim=(2, 3)))


def test_layers_and_input_gradients_equal_one_capture_per_layer():
    model = with_batch_norm_statistics(TwiceNet().double().eval())
    x = torch.randn(3, 3, 5, 5, dtype=torch.float64)
    before = model_state(model)
    got = layers_and_input_gradients(model, x, [model.bn, model.conv, model.fc], [0, 2, 3])
    assert_state_restored(model, before)
    assert got.modules == (model.conv, model.bn, model.conv, model.fc)  # forward order
    alone = input_gradients(model, x, [0, 2, 3])
    close(got.input_gradients, alone.gradients, tol=1e-12)
    for module, position in ((model.bn, 1), (model.fc, 3)):
        single = layer_gradients(model, x, module, [0, 2, 3])
        close(got.activations[position], single.activations, tol=1e-12)
        # the batch norm's gradient is at its own output, before the in-place ReLU
        close(got.gradients[position], single.gradients, tol=1e-12)
    negative = got.activations[1] < 0  # kept: the in-place ReLU changed a copy
    assert negative.any() and (got.gradients[1][negative] == 0).all()
    chunked = batched_layers_and_input_gradients(
        model, x, [model.bn, model.conv, model.fc], [0, 2, 3], batch_size=2
    )
    for mine, whole in zip(chunked.gradients, got.gradients, strict=True):
        close(mine, whole, tol=1e-12)


def test_the_full_gradient_decomposition_adds_up_to_the_score():
    """Srinivas and Fleuret's eq. 2 on a piecewise-linear network (convolutions with and
    without biases, batch norms, in-place ReLUs, residual adds, pooling, a linear head):
    ``S_c = sum(x dS/dx) + sum over bias layers of sum(b G)``, exactly up to rounding. It
    checks the bias of every layer (batch norms folded) and the gradient at its output."""
    model = with_batch_norm_statistics(residual_net()[0])
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    layers = [m for m in model.modules() if effective_bias(m) is not None] + [model.fc]
    got = layers_and_input_gradients(model, x, layers, [1, 3])
    parts = (got.input_gradients * x).sum(dim=(1, 2, 3))
    for module, gradient in zip(got.modules, got.gradients, strict=True):
        bias = model.fc.bias.detach() if module is model.fc else effective_bias(module)
        shape = (1, -1) + (1,) * (gradient.dim() - 2)
        parts = parts + (gradient * bias.view(shape)).flatten(1).sum(1)
    close(parts, got.scores, tol=1e-12)
    assert {type(m) for m in got.modules} == {nn.Conv2d, nn.BatchNorm2d, nn.Linear}


# ---- FullGrad ---------------------------------------------------------------------------


@torch.no_grad()
def ref_bias(module):
    if isinstance(module, nn.BatchNorm2d):
        return module.bias - module.weight * module.running_mean / torch.sqrt(
            module.running_var + module.eps
        )
    return module.bias if isinstance(module, nn.Conv2d) else None


def ref_full_grad(model, x, classes, scale):
    """Eq. 4, one sample and one layer at a time: psi = |.|, min-max, bilinear upsampling."""
    h, w = x.shape[-2:]

    def psi_sum(terms):  # (K, h', w') -> sum over channels of the upsampled scaled maps
        magnitude = terms.abs()
        if scale == "layer":
            magnitude = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
            return sum(ref_bilinear(magnitude[k], (h, w)) for k in range(len(terms)))
        return sum(ref_bilinear(ref_min_max(magnitude[k]), (h, w)) for k in range(len(terms)))

    maps = []
    for i, c in enumerate(classes):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xi)[0, c], xi)
        total = psi_sum((xi * g)[0].detach())
        for _, module in model.named_modules():
            bias = ref_bias(module)
            if bias is None:
                continue
            _, gradient, _ = reference_capture(model, x[i : i + 1], module, [c])
            terms = torch.stack([gradient[0, k] * bias[k].item() for k in range(len(bias))])
            total = total + psi_sum(terms)
        maps.append(total)
    return torch.stack(maps)


@pytest.mark.parametrize("scale", ["channel", "layer"])
@pytest.mark.parametrize("make", [residual_net, gap_cnn])
def test_full_grad_follows_the_paper_literally(make, scale):
    model, x = make()
    model = with_batch_norm_statistics(model)
    classes = [2, 0] if len(x) == 2 else [2, 0, 4]
    got = FullGrad(model, scale=scale)(x, target=classes)
    close(got.values, ref_full_grad(model, x, classes, scale))
    assert got.values.shape == (len(x), *x.shape[-2:]) and got.channel_dim is None
    named = [n for n, m in model.named_modules() if ref_bias(m) is not None]
    assert got.params["layer"] == named and got.params["scale"] == scale
    normalized = FullGrad(model, scale=scale, normalize="minmax")(x, target=classes)
    close(normalized.values, min_max(got.values))


def test_full_grad_in_chunks_with_predicted_and_no_state_left():
    model, x = gap_cnn()
    model = with_batch_norm_statistics(model)
    before = model_state(model)
    sizes, handle = count_forwards(model)
    try:
        got = FullGrad(model, batch_size=2)(x, target="predicted")
    finally:
        handle.remove()
    assert_state_restored(model, before)
    assert sizes == [2, 1]  # one forward per chunk, which also decides "predicted"
    assert got.target.tolist() == model(x).argmax(1).tolist()
    whole = FullGrad(model)(x, target=got.target)
    close(got.values, whole.values, tol=1e-12)
    smooth = FullGrad(model, aug_smooth=True)(x, target=got.target)
    views = []
    for flip, factor in AUGMENTATIONS:
        view = x * factor
        one = FullGrad(model)(view.flip(-1) if flip else view, target=got.target).values
        views.append(one.flip(-1) if flip else one)
    close(smooth.values, torch.stack(views).mean(0))


def test_full_grad_refuses_what_it_cannot_use():
    model, x = gap_cnn()
    for setting in ("layer", "eigen_smooth", "relu", "reshape", "upsample"):
        with pytest.raises(SettingError, match="a setting of FullGrad"):
            FullGrad(model, **{setting: None})
    with pytest.raises(SettingError, match="scale"):
        FullGrad(model, scale="pixel")
    with pytest.raises(SettingError, match="images"):
        FullGrad(nn.Sequential(nn.Linear(4, 2)).eval())(torch.randn(2, 4), target=0)
    batch_stats = nn.Sequential(
        nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.Flatten()
    ).eval()
    with pytest.raises(LayerError, match="running statistics"):
        FullGrad(batch_stats)(x.float(), target=0)
    assert math.isfinite(float(FullGrad(model)(x, target=0).values.sum()))

"""CAM methods on vision transformers: the layout found by ``reshape="auto"`` against
hand-written ``reshape_transform``s (pytorch-grad-cam style), the default layers, the error
when no layout fits, and pytorch-grad-cam's own maps on a tiny torchvision ViT.

Each hand-written reshape is the literal index arithmetic of its model (drop the prefix
tokens, lay the rest row by row; or move channels first). A CAM computed through the found
layout runs the very same operations as through the hand-written one, so the two agree to
float32 rounding of the map: ``TOLERANCE`` ulps of its largest value.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrib.core.errors import AttribError, LayerError
from attrib.methods.cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, vit_reshape
from attrib.methods.cam.layouts import ChannelsLast, default_transformer_layer, family_of
from tests import vision_transformers as vt
from tests.conftest import assert_state_restored, model_state

pytest.importorskip("torchvision")

METHODS = [GradCAM, GradCAMPlusPlus, ScoreCAM, EigenCAM]
TARGETS = [1, 2]
TOLERANCE = 16 * torch.finfo(torch.float32).eps


def drop_then_grid(prefix: int, side: int):
    """pytorch-grad-cam's ``vit_reshape_transform``: drop ``prefix`` tokens, lay the rest
    on a ``side x side`` grid row by row, channels first."""

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        n, _, c = tokens.shape
        return tokens[:, prefix:, :].reshape(n, side, side, c).permute(0, 3, 1, 2)

    return reshape


def channels_first(maps: torch.Tensor) -> torch.Tensor:
    return maps.permute(0, 3, 1, 2)


# (model factory, layer, the hand-written reshape of that layer's output)
CASES = {
    "torchvision-vit-ln1": (vt.torchvision_vit, "encoder.layers.encoder_layer_1.ln_1", 1, 4),
    "torchvision-vit-block": (vt.torchvision_vit, "encoder.layers.encoder_layer_0", 1, 4),
    "hf-vit-ln-before": (vt.hf_vit, "vit.layers.1.layernorm_before", 1, 4),
    "hf-vit-layer": (vt.hf_vit, "vit.layers.0", 1, 4),
    "hf-deit": (vt.hf_deit, "deit.layers.1.layernorm_before", 2, 4),
    "torchvision-swin-norm2": (vt.torchvision_swin, "features.3.1.norm2", None, 4),
    "torchvision-swin-stage1": (vt.torchvision_swin, "features.1", None, 8),
    "hf-swin-norm": (vt.hf_swin, "swin.encoder.layers.1.blocks.1.layernorm_after", 0, 4),
    "hf-swin-block": (vt.hf_swin, "swin.encoder.layers.0.blocks.0", 0, 8),
    "hf-swin-stage": (vt.hf_swin, "swin.encoder.layers.0", 0, 4),  # after patch merging
}


def hand_reshape(prefix: int | None, side: int):
    return channels_first if prefix is None else drop_then_grid(prefix, side)


@pytest.fixture(scope="module")
def built():
    pytest.importorskip("transformers")
    cache: dict = {}

    def get(factory):
        if factory not in cache:
            cache[factory] = factory()
        return cache[factory]

    return get


def close(ours: torch.Tensor, want: torch.Tensor) -> None:
    scale = float(want.abs().max())
    assert scale > 0, "a zero map proves nothing"
    assert float((ours - want).abs().max()) <= TOLERANCE * scale


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", METHODS)
def test_the_found_layout_equals_the_hand_written_reshape(built, case, method):
    factory, layer, prefix, side = CASES[case]
    model, x = built(factory), vt.images()
    raw = {"relu": False, "upsample": False}
    found = method(model, layer, **raw)(x, target=TARGETS)
    hand = method(model, layer, reshape=hand_reshape(prefix, side), **raw)(x, target=TARGETS)
    assert found.values.shape == (2, side, side)
    close(found.values, hand.values)
    named = "swin" if "swin" in case else "vit"
    close(method(model, layer, reshape=named, **raw)(x, target=TARGETS).values, hand.values)
    full = method(model, layer)(x, target=TARGETS)
    assert full.values.shape == (2, vt.SIZE, vt.SIZE)


@pytest.mark.parametrize(
    ("factory", "layer"),
    [
        (vt.torchvision_vit, "encoder.layers.encoder_layer_1.ln_1"),
        (vt.hf_vit, "vit.layers.1.layernorm_before"),
        (vt.hf_deit, "deit.layers.1.layernorm_before"),
        (vt.torchvision_swin, "features.3.1.norm2"),
        (vt.hf_swin, "swin.encoder.layers.1.blocks.1.layernorm_after"),
    ],
)
def test_default_layers_of_known_transformers(built, factory, layer):
    """The first norm of the last block (ViT: its patch tokens reach the class token through
    that block's attention) or the last norm of the last block (Swin)."""
    model = built(factory)
    assert default_transformer_layer(model) == layer
    got = GradCAM(model)(vt.images(), target=TARGETS)
    assert got.params["layer"] == layer
    assert float(got.values.abs().max()) > 0


def test_families_are_read_from_the_model_not_the_shapes(built):
    assert family_of(built(vt.torchvision_vit)).prefix == 1
    assert family_of(built(vt.hf_deit)).prefix == 2
    swin = family_of(built(vt.torchvision_swin))
    assert swin.kind == "swin" and swin.channels_last and swin.patch == (4, 4)
    assert family_of(built(vt.hf_swin)).kind == "swin"
    wrapped = nn.Sequential(nn.Identity(), built(vt.torchvision_vit))
    assert family_of(wrapped).source == "torchvision VisionTransformer"
    assert family_of(nn.Conv2d(3, 4, 3)) is None


def test_convolution_outputs_stay_channels_first(built):
    """The patch embedding of a ViT and Swin's convolution and final Permute give (N, C, h, w)."""
    x = vt.images()
    for model, layer, side in [
        (built(vt.torchvision_vit), "conv_proj", 4),
        (built(vt.torchvision_swin), "features.0.0", 8),
        (built(vt.torchvision_swin), "permute", 4),
        (built(vt.hf_vit), "vit.embeddings.patch_embeddings.projection", 4),
    ]:
        got = GradCAM(model, layer, upsample=False, relu=False)(x, target=TARGETS)
        want = GradCAM(model, layer, reshape=None, upsample=False, relu=False)(x, target=TARGETS)
        assert got.values.shape == (2, side, side)
        close(got.values, want.values)


class RegisterViT(nn.Module):
    """A ViT-like model unknown to attrib: patch tokens of a 12 x 12 image (3 x 3 patches of
    4) after ``extra`` prefix tokens, LayerNorm, attention, a head on token 0."""

    def __init__(self, extra: int = 1) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.prefix = nn.Parameter(torch.randn(1, extra, 8))
        self.norm = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.prefix.expand(x.shape[0], -1, -1), tokens], dim=1)
        h = self.norm(tokens)
        mixed, _ = self.attn(h, h, h)
        return self.head((h + mixed)[:, 0])


@pytest.mark.parametrize("extra", [1, 2])
def test_unknown_models_by_their_shapes_when_one_layout_fits(extra):
    """9 patch tokens of 4 x 4 pixels on a 12 x 12 image after 1 or 2 prefix tokens: the only
    (prefix, patch side) in (0..2) x divisors of 12 that gives 9 + extra tokens."""
    model = RegisterViT(extra).eval()
    x = torch.randn(2, 3, 12, 12)
    raw = {"relu": False, "upsample": False}
    got = GradCAM(model, "norm", **raw)(x, target=[0, 2])
    hand = GradCAM(model, "norm", reshape=drop_then_grid(extra, 3), **raw)(x, target=[0, 2])
    close(got.values, hand.values)


def test_the_error_lists_the_ways_to_say_the_layout():
    """12 tokens on a 12 x 12 image: no prefix of 0..2 leaves a grid (H/p) x (W/p)."""
    model = RegisterViT(3).eval()
    x = torch.randn(2, 3, 12, 12)
    for method in METHODS:
        with pytest.raises(LayerError) as error:
            method(model, "norm")(x, target=0)
        message = str(error.value)
        for option in ("reshape='vit'", "reshape='swin'", "vit_reshape(grid=(h, w)", "callable"):
            assert option in message, (option, message)
        assert "12 tokens" in message and "'norm'" in message
        assert isinstance(error.value, AttribError)
    # saying it works
    got = GradCAM(model, "norm", reshape=vit_reshape(class_tokens=3))(x, target=0)
    assert got.values.shape == (2, 12, 12)


def test_a_known_model_whose_tokens_do_not_match_its_grid():
    """A layout read from the model is checked against the tokens: 17 tokens and a grid of
    4 x 4 patches fit a torchvision ViT; the same layer fed a 2 x 2 grid's tokens would not."""
    from attrib.methods.cam.layouts import choose_reshape

    model = vt.torchvision_vit()
    layer = model.encoder.layers.encoder_layer_0.ln_1
    fits = choose_reshape("auto", model, layer, "ln_1", torch.zeros(1, 17, 32), (32, 32))
    assert isinstance(fits, type(vit_reshape())) and fits.grid == (4, 4)
    with pytest.raises(LayerError, match="torchvision VisionTransformer"):
        choose_reshape("auto", model, layer, "ln_1", torch.zeros(1, 5, 32), (32, 32))


def test_swin_reshapes_pickle_and_move_values_only():
    import pickle

    maps = torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5)
    assert torch.equal(ChannelsLast()(maps), maps.permute(0, 3, 1, 2))
    tokens = torch.arange(2 * 16 * 3.0).view(2, 16, 3)
    assert torch.equal(ChannelsLast((4, 4))(tokens)[1, 2, 3, 1], tokens[1, 3 * 4 + 1, 2])
    assert pickle.loads(pickle.dumps(ChannelsLast((4, 4)))).grid == (4, 4)


def test_no_state_is_left_on_a_transformer(built):
    model = built(vt.hf_vit)
    before = model_state(model)
    for method in METHODS:
        method(model)(vt.images(), target=TARGETS)
    assert_state_restored(model, before)


# ---- pytorch-grad-cam, with its documented reshape_transform ------------------------------


def test_pytorch_grad_cam_on_a_tiny_torchvision_vit():
    """pytorch-grad-cam's ``vit_reshape_transform(height=4, width=4)`` at the first norm of
    the last block; its ReLU, min-max and resize conventions as in ``test_cam_peers``."""
    pg = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform

    from tests.peers import assert_matches_peer

    model, x = vt.torchvision_vit(), vt.images()
    layer = "encoder.layers.encoder_layer_1.ln_1"

    def peer(name: str) -> torch.Tensor:
        weights = [p for p in model.parameters() if p.requires_grad]
        for p in weights:
            p.requires_grad_(False)
        try:
            with getattr(pg, name)(
                model=model,
                target_layers=[model.get_submodule(layer)],
                reshape_transform=lambda t: vit_reshape_transform(t, height=4, width=4),
            ) as cam:
                targets = [ClassifierOutputTarget(c) for c in TARGETS]
                return torch.from_numpy(cam(input_tensor=x.requires_grad_(True), targets=targets))
        finally:
            for p in weights:
                p.requires_grad_(True)
            model.zero_grad(set_to_none=True)

    x = x.detach()
    ours = {"normalize": "minmax"}
    assert_matches_peer(GradCAM(model, **ours)(x, target=TARGETS).values, peer("GradCAM"))
    assert_matches_peer(
        GradCAMPlusPlus(model, eps=1e-6, **ours)(x, target=TARGETS).values, peer("GradCAMPlusPlus")
    )
    assert_matches_peer(
        ScoreCAM(model, align_corners=True, **ours)(x, target=TARGETS).values, peer("ScoreCAM")
    )

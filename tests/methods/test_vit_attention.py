"""Attention maps and rollout of a torchvision ViT (``attrib.methods.attention``), against a
literal re-run of torchvision's encoder (embedding, then each block with
``need_weights=True``) and the rollout product written out."""

from __future__ import annotations

import pytest
import torch

from attrib.core.errors import LayerError
from attrib.methods.attention import attention_maps, patch_rollout, rollout
from tests import vision_transformers as vt
from tests.conftest import assert_state_restored, model_state

pytest.importorskip("torchvision")


def reference_maps(model, x):
    """torchvision's Encoder.forward, block by block, asking each attention for its weights."""
    with torch.no_grad():
        tokens = model._process_input(x)
        cls = model.class_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + model.encoder.pos_embedding
        maps = []
        for block in model.encoder.layers:
            normed = block.ln_1(h)
            _, weights = block.self_attention(
                normed, normed, normed, need_weights=True, average_attn_weights=False
            )
            maps.append(weights)
            h = block(h)
    return torch.stack(maps, dim=1)


def test_attention_maps_are_the_blocks_own_weights():
    model, x = vt.torchvision_vit(), vt.images()
    before = model_state(model)
    got = attention_maps(model, x)
    assert got.shape == (2, 2, 2, 17, 17)  # samples, layers, heads, tokens, tokens
    torch.testing.assert_close(got, reference_maps(model, x))
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 2, 2, 17))
    assert_state_restored(model, before)


def test_patch_rollout_is_the_product_of_the_mixed_maps():
    model, x = vt.torchvision_vit(), vt.images()
    maps = reference_maps(model, x).double()
    eye = torch.eye(17, dtype=torch.float64)
    want = []
    for sample in maps:
        flow = eye
        for layer in sample:
            mixed = 0.5 * layer.mean(0) + 0.5 * eye  # rows already sum to 1
            flow = mixed @ flow
        want.append(flow[0, 1:].view(4, 4))
    torch.testing.assert_close(patch_rollout(model, x), torch.stack(want))
    # all residual: the identity, nothing flows from the patches to the class token
    assert float(patch_rollout(model, x, residual=1.0).abs().max()) == 0.0
    assert torch.equal(rollout(maps[0], 1.0), eye)


def test_models_without_multihead_attention():
    with pytest.raises(LayerError, match="MultiheadAttention"):
        attention_maps(torch.nn.Conv2d(3, 3, 1), vt.images())

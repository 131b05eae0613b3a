"""Tiny vision transformers for the tests: torchvision's and Hugging Face's own classes with
small configurations (random weights, seeded, nothing downloaded), 32 x 32 images.

- ``torchvision_vit``: ``VisionTransformer`` patch 8 (a 4 x 4 grid), 2 layers, hidden 32,
  MLP 64, 2 heads; tokens ``(N, 1 + 16, 32)``.
- ``torchvision_swin``: ``SwinTransformer`` patch 4, embed 16, depths (2, 2), window 2;
  channels-last maps ``(N, 8, 8, 16)`` then ``(N, 4, 4, 32)``.
- ``hf_vit``, ``hf_deit``: ViT (1 class token) and DeiT (class + distillation token) with the
  ViT's sizes; ``hf_swin``: Swin with the Swin's sizes, tokens ``(N, 64, 16)``, ``(N, 16, 32)``.

torchvision initialises a ViT's head to zeros (every class score constant, every gradient
zero): the head is drawn again here so that maps and gradients are not trivially zero.
"""

from __future__ import annotations

import torch
from torch import nn

SIZE = 32
CLASSES = 4


def images(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def torchvision_vit(seed: int = 0) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    model = VisionTransformer(
        image_size=SIZE,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=CLASSES,
    )
    with torch.no_grad():
        head = model.heads.head
        head.weight.copy_(torch.randn_like(head.weight) / head.in_features**0.5)
        head.bias.copy_(0.1 * torch.randn_like(head.bias))
    return model.eval()


def torchvision_swin(seed: int = 0) -> nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(seed)
    return SwinTransformer(
        patch_size=[4, 4],
        embed_dim=16,
        depths=[2, 2],
        num_heads=[2, 2],
        window_size=[2, 2],
        num_classes=CLASSES,
    ).eval()


def _hf_vit_config(kind: str):
    import transformers

    config_class = {"vit": transformers.ViTConfig, "deit": transformers.DeiTConfig}[kind]
    return config_class(
        image_size=SIZE,
        patch_size=8,
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=CLASSES,
        attn_implementation="eager",
    )


def hf_vit(seed: int = 0) -> nn.Module:
    from transformers import ViTForImageClassification

    torch.manual_seed(seed)
    return ViTForImageClassification(_hf_vit_config("vit")).eval()


def hf_deit(seed: int = 0) -> nn.Module:
    from transformers import DeiTForImageClassification

    torch.manual_seed(seed)
    return DeiTForImageClassification(_hf_vit_config("deit")).eval()


def hf_swin(seed: int = 0) -> nn.Module:
    from transformers import SwinConfig, SwinForImageClassification

    torch.manual_seed(seed)
    config = SwinConfig(
        image_size=SIZE,
        patch_size=4,
        embed_dim=16,
        depths=[2, 2],
        num_heads=[2, 2],
        window_size=2,
        num_labels=CLASSES,
    )
    return SwinForImageClassification(config).eval()

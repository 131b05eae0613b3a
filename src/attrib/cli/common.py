"""What the image commands share: model, images, methods and target from the arguments.

Everything that can be wrong with the command line (a method name, the model, its weights,
the layer, an image file, the target) is checked here, before any explanation runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from attrib.cli import recipes
from attrib.cli.images import LoadedImage, Preset, load_image, preset
from attrib.cli.models import LoadedModel, load_model
from attrib.core.errors import InputError, SettingError, TargetError
from attrib.core.layers import resolve_layer
from attrib.methods.recipes import check_settings

__all__ = ["Setup", "batches", "parse_target", "setup", "unique_names"]


@dataclass
class Setup:
    names: list[str]
    settings: dict[str, Any]
    loaded: LoadedModel
    layer: str | None
    preset: Preset
    images: list[LoadedImage]
    target: Any
    device: torch.device


def setup(args: argparse.Namespace) -> Setup:
    """Check and load everything the arguments name; raises one ``AttribError`` per problem."""
    names = recipes.resolve_names(args.method)
    settings = recipes.parse_settings(args.set)
    check_settings(names, settings)
    if args.batch_size is not None and args.batch_size < 1:
        raise SettingError("--batch-size", "a positive number", args.batch_size, "")
    if args.threads is not None:
        if args.threads < 1:
            raise SettingError("--threads", "a positive number", args.threads, "")
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.weights, device=args.device, labels=args.labels)
    layer = args.layer or loaded.layer
    if args.layer is not None:
        resolve_layer(loaded.model, args.layer)  # a wrong name lists the close ones
    chosen = preset(loaded.preset if args.preprocess == "auto" else args.preprocess)
    images = [load_image(path, chosen) for path in args.images]
    target = parse_target(args.target, loaded.class_names)
    device = next((p.device for p in loaded.model.parameters()), torch.device(args.device))
    return Setup(names, settings, loaded, layer, chosen, images, target, device)


def parse_target(text: str, class_names: Sequence[str] | None) -> Any:
    """``"predicted"``, a class index, or a class name (case ignored)."""
    if text == "predicted":
        return "predicted"
    try:
        return int(text)
    except ValueError:
        pass
    if class_names:
        lowered = [n.lower() for n in class_names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
    raise TargetError(
        "--target",
        "predicted, a class index, or a class name of the model",
        text,
        "Class names are known for ImageNet models and with --labels FILE.",
    )


def unique_names(images: Sequence[LoadedImage]) -> list[str]:
    """File stems, made unique (``cat``, ``cat-2``) so that no output overwrites another."""
    seen: dict[str, int] = {}
    out = []
    for image in images:
        count = seen.get(image.name, 0) + 1
        seen[image.name] = count
        out.append(image.name if count == 1 else f"{image.name}-{count}")
    return out


def batches(images: Sequence[LoadedImage], size: int | None) -> list[list[int]]:
    """Indices of consecutive images of one shape, at most ``size`` (default 16) per batch."""
    size = size or 16
    groups: list[list[int]] = []
    for i, image in enumerate(images):
        if (
            groups
            and len(groups[-1]) < size
            and images[groups[-1][0]].tensor.shape == image.tensor.shape
        ):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def one_batch(images: Sequence[LoadedImage]) -> torch.Tensor:
    """All images as one batch (commands that compare methods over the same images)."""
    shapes = {tuple(i.tensor.shape) for i in images}
    if len(shapes) > 1:
        raise InputError(
            "IMAGE",
            "images of one size",
            f"{len(shapes)} sizes",
            "Use --preprocess imagenet (or crop224) to bring them to one size.",
        )
    return torch.stack([i.tensor for i in images])

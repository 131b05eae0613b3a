"""What the image commands share: model, images, methods and target from the arguments.

Everything that can be wrong with the command line (a method name, the model, its weights,
the layer, an image file, the target) is checked here, before any explanation runs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch

from attrib.cli import recipes
from attrib.core.errors import InputError, LayerError, SettingError, TargetError, warn
from attrib.core.layers import last_conv_layer, resolve_layer, torchscript_part
from attrib.methods import catalogue
from attrib.methods.recipes import INNER, check_settings, settings_for, takes_image_layer
from attrib.runs.images import LoadedImage, Preset, load_image, preset
from attrib.runs.models import LoadedModel, load_model

__all__ = [
    "Setup",
    "batches",
    "check_layer",
    "output_folder",
    "parse_target",
    "runnable_methods",
    "setup",
    "unique_names",
]


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
    output_folder(args.out, create=False)  # before the model loads: a wrong folder costs a second
    if args.batch_size is not None and args.batch_size < 1:
        raise SettingError("--batch-size", "a positive number", args.batch_size, "")
    if args.threads is not None:
        if args.threads < 1:
            raise SettingError("--threads", "a positive number", args.threads, "")
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.weights, device=args.device, labels=args.labels)
    names = runnable_methods(names, loaded.model, args.method)
    check_layer(names, settings, loaded.model, args.layer, loaded.layer)
    layer = args.layer or loaded.layer
    chosen = preset(loaded.preset if args.preprocess == "auto" else args.preprocess)
    images = [load_image(path, chosen) for path in args.images]
    target = parse_target(args.target, loaded.class_names)
    device = next((p.device for p in loaded.model.parameters()), torch.device(args.device))
    return Setup(names, settings, loaded, layer, chosen, images, target, device)


def output_folder(path: str | os.PathLike, *, create: bool = True) -> Path:
    """The folder ``--out`` names, created (with its parents) and checked writable, or a
    ``SettingError`` that says why not. ``create=False`` only looks (before the work starts,
    so that a command refused for another reason leaves no folder behind): the nearest
    existing folder on the path must be a writable folder."""
    folder = Path(path)
    if not create:
        existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
        if not existing.is_dir():
            _unusable(path, f"{existing} is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            _unusable(path, f"{existing} is not writable")
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if error.filename and str(error.filename) != str(path):
            reason += f" ({error.filename})"
        _unusable(path, reason)
    return folder


def _unusable(path: str | os.PathLike, reason: str) -> NoReturn:
    raise SettingError(
        "--out",
        "a folder that can be created and written",
        str(path),
        f"{reason}: choose another --out folder.",
    ) from None


def runnable_methods(
    names: list[str], model: Any, spec: str, argument: str = "--method"
) -> list[str]:
    """``names`` without the methods that cannot run on a TorchScript ``model`` (those whose
    catalogue entry has ``python_module``): dropped with a warning where ``spec`` said
    ``all``, refused where the user named them."""
    part = torchscript_part(model)
    if part is None:
        return names
    infos = [catalogue.find(n) for n in names]
    refused = [i for i in infos if i.python_module]
    if not refused:
        return names
    kept = [i.name for i in infos if not i.python_module]
    if "all" in {catalogue.key(p) for p in spec.split(",")} and kept:
        warn(
            f"the model is TorchScript: {', '.join(i.name for i in refused)} need the Python "
            "model and are left out"
        )
        return kept
    reasons: dict[str, list[str]] = {}
    for info in refused:
        reasons.setdefault(info.python_module, []).append(info.name)
    why = "; ".join(f"{', '.join(ns)}: {reason}" for reason, ns in reasons.items())
    others = [
        catalogue.snake(i.name)
        for family in ("gradient", "perturbation")
        for i in catalogue.entries(family, inputs=recipes.IMAGE_INPUTS)
        if not (i.python_module or i.wrapper)
    ]
    raise SettingError(
        argument,
        "methods that run on a TorchScript model",
        ", ".join(info.name for info in refused),
        f"They need the Python model ({why}), and TorchScript allows neither hooks nor new "
        "backward rules. Load the Python model instead (--model package.module:factory "
        "--weights FILE, or a torchvision name with --weights FILE), or choose methods that "
        f"only call the model ({', '.join([*others[:2], *others[-2:]])}, ...; see attrib methods).",
    )


def _takes_layer(name: str, settings: dict[str, Any]) -> bool:
    info = catalogue.find(name)
    if info.wrapper:
        inner = settings_for(info.name, settings).get(INNER, "saliency")
        return takes_image_layer(catalogue.find(inner))
    return takes_image_layer(info)


def check_layer(
    names: Sequence[str],
    settings: dict[str, Any],
    model: Any,
    layer: str | None,
    default: str | None = None,
) -> None:
    """``--layer``: refused where no method of ``names`` explains a layer, a warning where
    some ignore it, its name checked against the model; without it, the methods that take
    a layer need a convolution to take by default (``default``: the model's own layer)."""
    takers = [n for n in names if _takes_layer(n, settings)]
    if layer is not None:
        if not takers:
            layered = [i.name for i in catalogue.entries("cam")]
            raise SettingError(
                "--layer",
                f"a method that explains a layer (the CAM methods: {', '.join(layered[:4])}, ...)",
                f"--layer {layer} with {', '.join(names)}",
                "Drop --layer, or add a CAM method to --method.",
            )
        ignored = [n for n in names if n not in takers]
        if ignored:
            warn(
                f"--layer {layer} is for {', '.join(takers)}; "
                f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no layer"
            )
        resolve_layer(model, layer)  # a wrong name lists the close ones
        return
    if not takers or default is not None or torchscript_part(model) is not None:
        return
    try:
        last_conv_layer(model)
    except LayerError:
        modules = [n for n, _ in model.named_modules() if n]
        raise LayerError(
            "--layer",
            "the layer to explain (the model has no convolution to take by default)",
            None,
            f"Pass --layer NAME for {', '.join(takers)}, NAME one of the model's modules "
            f"({', '.join(modules[-5:])}, ...).",
        ) from None


def parse_target(text: str, class_names: Sequence[str] | None) -> Any:
    """``"predicted"``, a class index, or a class name (case ignored); a miss suggests the
    class names that hold the word or are close to it."""
    if text == "predicted":
        return "predicted"
    try:
        return int(text)
    except ValueError:
        pass
    hint = "Class names are known for ImageNet models and with --labels FILE."
    if class_names:
        lowered = [n.lower() for n in class_names]
        wanted = text.lower().strip()
        if wanted in lowered:
            return lowered.index(wanted)
        # a name that holds the word ("tabby" -> "tabby cat") before names spelt alike
        shown = [n for n in class_names if wanted and wanted in n.lower().split()]
        if not shown:
            close = difflib.get_close_matches(wanted, lowered, n=3, cutoff=0.6)
            shown = [class_names[lowered.index(c)] for c in close]
        hint = (
            f"Did you mean {', '.join(repr(n) for n in shown[:5])}? Quote a name with spaces."
            if shown
            else "Give predicted, a class index, or one of the model's class names."
        )
    raise TargetError(
        "--target", "predicted, a class index, or a class name of the model", text, hint
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

"""Image methods by name, each built with settings that work on a whole image.

``attrib explain --method gradcam`` needs more than the class: occlusion needs a window, the
removal games need groups of pixels (players), expected gradients needs reference images,
and guided backpropagation needs to know what to do at activations other than ReLU. The
defaults here are chosen from the image size; ``--set key=value`` overrides any of them.

Methods are found by their public names (``attrib.api.method_class``); families whose
modules are not exported there yet are looked up in their own packages, and a method that
this version does not have is reported as such.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.methods.base import Method

__all__ = [
    "FAMILIES",
    "IMAGE_METHODS",
    "Context",
    "available",
    "build",
    "check_settings",
    "find",
    "parse_settings",
    "resolve_names",
]

FAMILIES: dict[str, tuple[str, ...]] = {
    "gradient": (
        "Saliency",
        "GradientXInput",
        "SmoothGrad",
        "SmoothGradSquared",
        "VarGrad",
        "IntegratedGradients",
        "ExpectedGradients",
        "BlurIG",
    ),
    "cam": (
        "CAM",
        "GradCAM",
        "GuidedGradCAM",
        "GradCAMPlusPlus",
        "XGradCAM",
        "HiResCAM",
        "LayerCAM",
        "ScoreCAM",
        "AblationCAM",
        "EigenCAM",
    ),
    "propagation": ("GuidedBackprop", "Deconvolution", "DeepLIFT", "LRP"),
    "perturbation": (
        "Occlusion",
        "FeatureAblation",
        "ExactShapley",
        "ShapleySampling",
        "KernelSHAP",
        "LIME",
    ),
}
IMAGE_METHODS: tuple[str, ...] = tuple(n for names in FAMILIES.values() for n in names)
_PACKAGES = (
    "attrib.methods",
    "attrib.methods.cam",
    "attrib.methods.propagation",
    "attrib.methods.perturbation",
)


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def find(name: str) -> type[Method] | None:
    """The method class with the public name ``name`` (any case), or ``None``."""
    try:
        from attrib.api import method_class

        return method_class(name)
    except (SettingError, ImportError):
        pass
    for package in _PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        for public in getattr(module, "__all__", ()):
            if _key(public) == _key(name):
                found = getattr(module, public)
                if isinstance(found, type) and issubclass(found, Method):
                    return found
    return None


def available() -> dict[str, type[Method]]:
    """Every image method this installation has, by class name, in display order."""
    out = {}
    for name in IMAGE_METHODS:
        cls = find(name)
        if cls is not None:
            out[name] = cls
    return out


def resolve_names(spec: str | Sequence[str]) -> list[str]:
    """Class names from ``"saliency,GradCAM"`` (any case, ``-`` and ``_`` ignored) or
    ``"all"`` (every available method); an unknown name is an error with close names."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise SettingError("--method", "one or more method names", spec, "See attrib methods.")
    have = available()
    by_key = {_key(n): n for n in have}
    names: list[str] = []
    for part in parts:
        if _key(part) == "all":
            names.extend(n for n in have if n not in names)
            continue
        if _key(part) not in by_key:
            missing = {_key(n): n for n in IMAGE_METHODS}.get(_key(part))
            if missing:
                raise SettingError(
                    "--method", "a method this version has", part, f"{missing} is not installed."
                )
            close = difflib.get_close_matches(_key(part), list(by_key), n=3, cutoff=0.5)
            hint = "Did you mean " + ", ".join(by_key[c] for c in close) + "?" if close else ""
            raise SettingError(
                "--method",
                "method names from `attrib methods`",
                part,
                hint or "See attrib methods.",
            )
        name = by_key[_key(part)]
        if name not in names:
            names.append(name)
    return names


def parse_settings(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["steps=16", "GradCAM.layer=layer4"]`` -> ``{"steps": 16, "GradCAM.layer": "layer4"}``.

    Values are Python literals where they parse as one (numbers, tuples, ``True``,
    ``None``), else strings. A key ``Method.key`` is for that method only.
    """
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not all(part.isidentifier() for part in key.strip().split(".")):
            raise SettingError("--set", "key=value or Method.key=value", pair, "")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        out[key.strip()] = value
    return out


def _accepts(cls: type, key: str) -> bool:
    params = inspect.signature(cls.__init__).parameters
    if key in params:
        return True
    wrapper = "method" in params and "model" not in params
    return wrapper and key == "inner"


def settings_for(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``settings`` that method ``name`` takes: ``Name.key`` ones, and the
    plain ``key`` ones its constructor has (so ``--set steps=16`` goes to the path methods
    of a list and not to Grad-CAM)."""
    cls = find(name)
    out = {}
    for key, value in settings.items():
        method, dot, plain = key.rpartition(".")
        if dot:
            if _key(method) == _key(name):
                out[plain] = value
        elif cls is not None and _accepts(cls, key):
            out[key] = value
    return out


def check_settings(names: Sequence[str], settings: dict[str, Any]) -> None:
    """Every setting must reach at least one of the methods ``names``."""
    for key in settings:
        method, dot, plain = key.rpartition(".")
        if dot:
            if _key(method) not in {_key(n) for n in names}:
                raise SettingError(
                    "--set", f"Method.key for a method of --method ({', '.join(names)})", key
                )
            cls = find(resolve_names(method)[0])
            if cls is not None and not _accepts(cls, plain):
                raise SettingError("--set", f"a setting that {method} takes", key, "")
        elif not any((cls := find(n)) is not None and _accepts(cls, key) for n in names):
            raise SettingError("--set", f"a setting that one of {', '.join(names)} takes", key, "")


@dataclass
class Context:
    """What a recipe may use to choose its settings."""

    model: nn.Module
    size: tuple[int, int]
    layer: str | None = None
    references: torch.Tensor | None = None
    batch_size: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _cell(size: tuple[int, int], per_side: int) -> int:
    return max(1, math.ceil(min(size) / per_side))


def _grid(per_side: int):
    def make(ctx: Context) -> Any:
        from attrib.methods.perturbation import grid

        return grid(_cell(ctx.size, per_side))

    return make


def _guide(ctx: Context) -> Any:
    cls = find("GuidedBackprop")
    return cls(ctx.model, other_activations="gradient") if cls is not None else None


# settings chosen per method: values, or functions of the context
_DEFAULTS: dict[str, dict[str, Any]] = {
    "SmoothGrad": {"samples": 16, "seed": 0},
    "SmoothGradSquared": {"samples": 16, "seed": 0},
    "VarGrad": {"samples": 16, "seed": 0},
    "ExpectedGradients": {"samples": 16, "seed": 0, "references": lambda ctx: ctx.references},
    "GuidedGradCAM": {"guide": _guide},
    # activations other than ReLU and clipped ReLU (SiLU, GELU, hardswish) pass their
    # ordinary gradient, as in Captum; on a (clipped) ReLU network this changes nothing
    "GuidedBackprop": {"other_activations": "gradient"},
    "Deconvolution": {"other_activations": "gradient"},
    "Occlusion": {
        "window": lambda ctx: _cell(ctx.size, 7),
        "strides": lambda ctx: max(1, _cell(ctx.size, 7) // 2),
    },
    "FeatureAblation": {"feature_mask": _grid(7)},
    "ExactShapley": {"feature_mask": _grid(3)},
    "ShapleySampling": {"feature_mask": _grid(4), "samples": 8, "seed": 0},
    "KernelSHAP": {"feature_mask": _grid(7), "samples": 256, "seed": 0},
    "LIME": {"feature_mask": _grid(7), "samples": 256, "seed": 0},
}


def build(name: str, ctx: Context) -> Method:
    """The method ``name`` (a class name from ``available()``) for ``ctx``'s model."""
    cls = find(name)
    if cls is None:
        raise SettingError("--method", "a method this version has", name, "")
    settings = settings_for(name, ctx.settings)
    chosen = {
        k: (v(ctx) if callable(v) and not isinstance(v, type) else v)
        for k, v in _DEFAULTS.get(name, {}).items()
        if k not in settings
    }
    chosen = {k: v for k, v in chosen.items() if v is not None}
    params = inspect.signature(cls.__init__).parameters
    if "layer" in params and ctx.layer is not None and "layer" not in settings:
        chosen["layer"] = ctx.layer
    if "batch_size" in params and ctx.batch_size is not None:
        chosen["batch_size"] = ctx.batch_size
    chosen.update(settings)
    try:
        if "method" in params and "model" not in params:  # a wrapper: SmoothGrad family
            inner_name = chosen.pop("inner", "Saliency")
            inner = build(
                _canonical(inner_name),
                Context(ctx.model, ctx.size, ctx.layer, ctx.references, ctx.batch_size),
            )
            return cls(inner, **chosen)
        return cls(ctx.model, **chosen)
    except TypeError as error:
        raise SettingError(
            "--set", f"settings that {name} takes", sorted(settings), str(error)
        ) from None


def _canonical(name: str) -> str:
    names = resolve_names(str(name))
    if len(names) != 1:
        raise SettingError("inner", "one method name", name, "")
    return names[0]

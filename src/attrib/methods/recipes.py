"""Methods built by name, with settings that work on a whole image.

``attrib explain --method gradcam`` (and a dataset run) needs more than the class: occlusion
needs a window, the removal games need groups of pixels (players), expected gradients needs
reference images, guided backpropagation needs to know what to do at activations other than
ReLU. Each method's registration says so (``MethodInfo.image_recipe``, a function of the
``ImageContext``); settings given by the user (``--set key=value``) override it.

Settings are routed by name: a plain ``key`` goes to every method of a list that takes it
(``steps=16`` reaches the path methods and not Grad-CAM), ``Method.key`` to that method
only; a key that no method takes is refused with the settings they do take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError, did_you_mean
from attrib.methods.base import Method
from attrib.methods.catalogue import MethodInfo, find, get, key

__all__ = [
    "ImageContext",
    "build",
    "build_for_image",
    "check_settings",
    "settings_for",
    "takes",
    "takes_image_layer",
]

INNER = "inner"
"""The setting that names a wrapper's wrapped method (``inner="integrated_gradients"``)."""


@dataclass
class ImageContext:
    """What a recipe may use to choose settings for a whole image."""

    model: nn.Module
    size: tuple[int, int]
    layer: str | None = None
    references: torch.Tensor | None = None
    batch_size: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def takes(info: MethodInfo, name: str) -> bool:
    """Whether the method takes the setting ``name`` (a wrapper also takes ``inner``)."""
    return info.takes(name) or (info.wrapper and name == INNER)


def build(
    method: str | type | MethodInfo,
    model: Any,
    settings: dict[str, Any] | None = None,
    *,
    inner: str | type = "saliency",
    inner_settings: dict[str, Any] | None = None,
) -> Any:
    """The method ``method`` (a name, a class, registered or your own) on ``model`` with
    ``settings``; a wrapper wraps ``inner`` (or ``settings["inner"]``) built with
    ``inner_settings``."""
    if isinstance(method, MethodInfo):
        cls = method.cls
    elif isinstance(method, type) and get(method) is None:
        cls = method  # a method class of the user's own
    else:
        cls = find(method).cls
    settings = dict(settings or {})
    if not getattr(cls, "wraps_method", False):
        if inner_settings:
            raise SettingError(
                "inner_settings", f"no inner settings for {cls.__name__}", inner_settings
            )
        return cls(model, **settings)
    wrapped = find(settings.pop(INNER, inner))
    if wrapped.wrapper:
        raise SettingError(INNER, "a method that is not itself a wrapper", wrapped.name)
    return cls(build(wrapped, model, inner_settings or {}), **settings)


def takes_image_layer(info: MethodInfo) -> bool:
    """Whether ``info`` takes its maps at a layer (the CAM methods that take ``layer``):
    where the command's ``--layer`` (``ImageContext.layer``) goes. For the other methods
    ``layer=`` means attribution to a layer, asked for by name only (``--set layer=...``)."""
    return info.family == "cam" and info.takes("layer")


def settings_for(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``settings`` that method ``name`` takes: ``Name.key`` ones, and the
    plain ``key`` ones it has."""
    info = find(name)
    out = {}
    for setting, value in settings.items():
        method, dot, plain = setting.rpartition(".")
        if dot:
            if key(method) == key(info.name):
                out[plain] = value
        elif takes(info, setting):
            out[setting] = value
    return out


def check_settings(names: Sequence[str], settings: dict[str, Any]) -> None:
    """Every setting must reach at least one of the methods ``names``; the error lists the
    settings they take and the closest name."""
    infos = [find(n) for n in names]
    for setting in settings:
        method, dot, plain = setting.rpartition(".")
        if dot:
            chosen = [i for i in infos if key(i.name) == key(method)]
            if not chosen:
                raise SettingError(
                    "--set", f"Method.key for a method of --method ({', '.join(names)})", setting
                )
            candidates, wanted = chosen, plain
        else:
            candidates, wanted = infos, setting
        if not any(takes(i, wanted) for i in candidates):
            raise _not_taken(setting, wanted, candidates)


def _names(info: MethodInfo) -> tuple[str, ...]:
    return info.setting_names + ((INNER,) if info.wrapper else ())


def _not_taken(setting: str, wanted: str, infos: list[MethodInfo]) -> SettingError:
    listing = "; ".join(f"{i.name}: {', '.join(_names(i))}" for i in infos)
    offered = sorted({n for i in infos for n in _names(i)})
    expected = f"a setting of the methods ({listing})"
    return SettingError("--set", expected, setting, did_you_mean(wanted, offered))


def build_for_image(name: str, context: ImageContext) -> Method:
    """The method ``name`` for ``context``'s model and image size: its recipe's settings,
    the context's layer and batch size where it takes them, then the user's settings."""
    info = find(name)
    given = settings_for(info.name, context.settings)
    chosen = {
        k: v
        for k, v in (info.image_recipe(context) if info.image_recipe else {}).items()
        if k not in given and v is not None
    }
    if context.layer is not None and takes_image_layer(info) and "layer" not in given:
        chosen["layer"] = context.layer
    if context.batch_size is not None and info.takes("batch_size"):
        chosen["batch_size"] = context.batch_size
    chosen.update(given)
    if info.wrapper:
        inner = find(chosen.pop(INNER, "saliency"))
        inner_context = ImageContext(
            context.model, context.size, context.layer, context.references, context.batch_size
        )
        return info.cls(build_for_image(inner.name, inner_context), **chosen)
    return info.cls(context.model, **chosen)

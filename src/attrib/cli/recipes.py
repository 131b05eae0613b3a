"""Method names and settings from the command line; the catalogue says the rest.

``--method saliency,GradCAM`` (or ``all``) names methods of images and tensors;
``--set key=value`` gives settings (``Method.key=value`` for one method only), checked
against the catalogue before anything runs (``attrib.methods.recipes.check_settings``).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from attrib.core.errors import SettingError
from attrib.methods import catalogue

__all__ = ["IMAGE_INPUTS", "parse_settings", "resolve_names"]

IMAGE_INPUTS: tuple[catalogue.InputKind, ...] = ("tensor", "image")
"""The methods the image commands run: those of any tensor and those of images."""


def resolve_names(spec: str | Sequence[str], argument: str = "--method") -> list[str]:
    """Method names from ``"saliency,GradCAM"`` (any case, ``-`` and ``_`` ignored) or
    ``"all"`` (every image method); an unknown name is an error with close names."""
    return catalogue.resolve_names(spec, IMAGE_INPUTS, argument=argument)


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

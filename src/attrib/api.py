"""``explain(model, x, method=..., **settings)``: one call for the common case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

import attrib.text  # noqa: F401 - registers the token methods that explain() finds by name
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.target import Target
from attrib.methods import catalogue
from attrib.methods.base import Method
from attrib.methods.recipes import build

__all__ = ["available_methods", "explain", "method_class"]


def available_methods() -> dict[str, type[Method]]:
    """Every method of tensors and images by its name in ``catalogue.key`` form
    (``"saliency"``, ``"gradientxinput"``, ...)."""
    return {
        catalogue.key(info.name): info.cls
        for info in catalogue.entries(inputs=("tensor", "image", "tokens"))
    }


def method_class(method: str | type[Method]) -> type[Method]:
    """The method class named ``method`` (case, dashes and underscores ignored); a class is
    returned as it is."""
    if isinstance(method, type) and issubclass(method, Method):
        return method
    cls: type[Method] = catalogue.find(method).cls
    return cls


def explain(
    model: nn.Module | Callable[..., Any],
    x: Inputs,
    method: str | type[Method] = "saliency",
    target: Target = "predicted",
    *,
    inner: str | type[Method] = "saliency",
    inner_settings: dict[str, Any] | None = None,
    **settings: Any,
) -> Attribution:
    """Explain ``model`` at ``x`` with ``method`` (a name or a class) in one call.

    ``explain(model, x, "saliency", target=3)`` is ``Saliency(model)(x, target=3)``;
    ``settings`` go to the method's constructor. For a wrapper, ``inner`` names the wrapped
    method: ``explain(model, x, "smoothgrad", inner="integrated_gradients", samples=16,
    inner_settings={"steps": 16})`` is
    ``SmoothGrad(IntegratedGradients(model, steps=16), samples=16)``.
    """
    chosen = method_class(method)
    built = build(chosen, model, settings, inner=inner, inner_settings=inner_settings)
    result: Attribution = built(x, target=target)
    return result

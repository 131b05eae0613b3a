"""``explain(model, x, method=..., **settings)``: one call for the common case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.target import Target
from attrib.methods.base import Method

__all__ = ["available_methods", "explain", "method_class"]


def available_methods() -> dict[str, type[Method]]:
    """Every method by its lower-case name (``"saliency"``, ``"gradientxinput"``, ...)."""
    import attrib.methods as methods

    found = {}
    for name in methods.__all__:
        cls = getattr(methods, name)
        if isinstance(cls, type) and issubclass(cls, Method) and cls is not Method:
            found[_key(name)] = cls
    return found


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def method_class(method: str | type[Method]) -> type[Method]:
    """The method class named ``method`` (case, dashes and underscores ignored)."""
    if isinstance(method, type) and issubclass(method, Method):
        return method
    known = available_methods()
    if isinstance(method, str) and _key(method) in known:
        return known[_key(method)]
    import difflib

    close = difflib.get_close_matches(_key(str(method)), list(known), n=3, cutoff=0.5)
    raise SettingError(
        "method",
        f"one of {sorted(known)}",
        method,
        f"Did you mean {close[0]!r}?" if close else "",
    )


def is_wrapper(cls: type[Method]) -> bool:
    """Wrappers (the SmoothGrad family) take a method, not a model."""
    from attrib.methods.smoothing import _NoiseSmoothing

    return issubclass(cls, _NoiseSmoothing)


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
    cls = method_class(method)
    if is_wrapper(cls):
        wrapped = method_class(inner)
        if is_wrapper(wrapped):
            raise SettingError("inner", "a method that is not itself a wrapper", inner, "")
        return cls(wrapped(model, **(inner_settings or {})), **settings)(x, target=target)
    if inner_settings:
        raise SettingError(
            "inner_settings", f"no inner settings for {cls.__name__}", inner_settings, ""
        )
    return cls(model, **settings)(x, target=target)

"""Errors and warnings of attrib.

Every message names the argument, what was expected, what was given, and what to do,
so that a user can fix the call without reading our source.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AttribError",
    "AttribWarning",
    "FileFormatError",
    "InputError",
    "LayerError",
    "ModelOutputError",
    "SettingError",
    "TargetError",
    "describe",
    "did_you_mean",
    "warn",
]


class AttribError(ValueError):
    """Base class of every error attrib raises on purpose.

    It subclasses ``ValueError`` so that code catching bad arguments the usual way keeps working.
    """

    def __init__(
        self,
        argument: str,
        expected: str,
        given: Any,
        todo: str = "",
    ) -> None:
        self.argument = argument
        self.expected = expected
        self.given = given
        self.todo = todo
        message = f"{argument}: expected {expected}, got {describe(given)}."
        if todo:
            message += f" {todo}"
        super().__init__(message)

    def __reduce__(self):  # keep errors picklable (multiprocessing, Ray)
        return (type(self), (self.argument, self.expected, self.given, self.todo))


class InputError(AttribError):
    """The tensor(s) to explain are not usable (dtype, values, shape)."""


class TargetError(AttribError):
    """The target does not select one score per sample."""


class LayerError(AttribError):
    """A layer could not be found or does not behave as the method needs."""


class ModelOutputError(AttribError):
    """The model's output could not be turned into one score per sample."""


class SettingError(AttribError):
    """A method setting (steps, samples, sigma, rule, ...) is out of its range."""


class FileFormatError(AttribError):
    """A file is not one that attrib wrote, or is damaged (``Attribution.load``)."""


class AttribWarning(UserWarning):
    """Something that makes an explanation less trustworthy, without being an error."""


def describe(value: Any) -> str:
    """A short, readable description of ``value`` for error messages."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return f"a {value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return repr(value)
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        if len(value) <= 6:
            return f"a {kind} {value!r}" if len(repr(value)) < 80 else f"a {kind} of {len(value)}"
        return f"a {kind} of {len(value)} items"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def did_you_mean(word: str, options: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """``"Did you mean 'steps'?"`` for the options closest to ``word`` (``""`` for none)."""
    import difflib

    close = difflib.get_close_matches(word, list(options), n=n, cutoff=cutoff)
    return f"Did you mean {', '.join(map(repr, close))}?" if close else ""


def warn(message: str) -> None:
    """Issue an ``AttribWarning`` attributed to the first caller outside the attrib package."""
    import contextlib
    import os
    import sys
    import warnings

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    skipped = (package_dir, os.path.abspath(contextlib.__file__))
    level = 2  # stacklevel 2 is the caller of warn()
    frame: Any = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skipped):
        frame = frame.f_back
        level += 1
    warnings.warn(message, AttribWarning, stacklevel=level)

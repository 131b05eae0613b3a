"""What every method shares: configured once with the model, called on many batches.

A method's constructor only stores settings (it never touches the model); ``__call__``
validates the batch and runs in ``prepared(model)`` (eval mode, frozen parameters), which is
undone when the call returns or raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from attrib.core.batching import check_batch_size
from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.core.inputs import Inputs, check_inputs
from attrib.core.result import Attribution
from attrib.core.target import OutputSelector, Target, check_target_length

__all__ = ["Method"]


class Method:
    """Base class of attrib's methods: ``method(x, target=...) -> Attribution``.

    Args:
        model: the ``nn.Module`` (or any callable built from modules) to explain. Bind
            extra forward arguments with ``functools.partial`` on a wrapper module.
        output: which part of the model's output holds the scores, where it is ambiguous
            (an index, a key, or a callable).
        batch_size: the most rows in one forward (``None``: chosen from the input size).
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        *,
        output: OutputSelector = None,
        batch_size: int | None = None,
    ) -> None:
        if not callable(model):
            raise SettingError("model", "an nn.Module or a callable", model, "")
        self.model = model
        self.output = output
        self.batch_size = check_batch_size(batch_size)

    @property
    def name(self) -> str:
        return type(self).__name__

    def settings(self) -> dict[str, Any]:
        """The settings recorded in ``Attribution.params``."""
        return {"batch_size": self.batch_size, "output": self.output}

    def __call__(self, x: Inputs, target: Target = None) -> Attribution:
        inputs = check_inputs(x)
        check_target_length(target, _n(inputs))
        with prepared(self.model):
            return self.attribute(inputs, target)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if v is not None)
        return f"{self.name}({shown})"


def _n(inputs: Inputs) -> int:
    return next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else inputs.shape[0]

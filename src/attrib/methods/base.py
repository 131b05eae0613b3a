"""What every method shares: configured once with the model, called on many batches.

A method's constructor only binds its settings (``Setting`` class attributes, see
``attrib.core.settings``; it never touches the model); ``__call__`` validates the batch and
runs in ``prepared(model)`` (eval mode, frozen parameters), which is undone when the call
returns or raises. ``result(...)`` is the one place an ``Attribution`` is made.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Any, ClassVar

from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.core.inputs import Inputs, Model, batch_size_of, check_inputs
from attrib.core.neuron import Neuron, NeuronModel
from attrib.core.progress import make_reporter, reporting
from attrib.core.result import Attribution
from attrib.core.settings import Anything, Configurable, Count, Optional, Setting
from attrib.core.target import Target, check_target_length
from attrib.methods.catalogue import check_model

__all__ = ["Method", "explain_neuron"]


class Method(Configurable):
    """Base class of attrib's methods: ``method(x, target=...) -> Attribution``.

    Args:
        model: the ``nn.Module`` (or any callable built from modules) to explain. Bind
            extra forward arguments with ``functools.partial`` on a wrapper module.
        output: which part of the model's output holds the scores, where it is ambiguous
            (an index, a key, or a callable).
        batch_size: the most rows in one forward (``None``: chosen from the input size).
        Other settings: see each method (``type(method).setting_specs()`` lists them).
    """

    integer_inputs: ClassVar[bool] = False
    """Whether the method takes integer or boolean inputs (token ids, categorical codes): the
    removal methods do, since they never differentiate the model."""

    batch_size = Setting(None, Optional(Count(1, "most rows in one forward")))
    output = Setting(None, Anything("None, an output index, a key or a callable"))
    progress = Setting(
        None, Anything("None, True (a bar) or a callable(done_rows, total_rows)"), record=False
    )

    def __init__(self, model: Model, *args: Any, **settings: Any) -> None:
        if not callable(model):
            raise SettingError("model", "an nn.Module or a callable", model, "")
        check_model(type(self), model)  # TorchScript, where the catalogue says it cannot work
        self.model: Model = model
        self.bind_settings(args, settings)

    def first(self) -> Any:
        return self.model

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def draws_at_random(self) -> bool:
        """Whether the attributions depend on random draws (then ``seed`` fixes them): a
        method with a ``seed`` setting, unless a subclass knows better for its settings."""
        return "seed" in self.settings()

    def __call__(self, x: Inputs, target: Target = None, **settings: Any) -> Attribution:
        """Explain the batch ``x``. ``settings`` hold for this call only, e.g. data that
        changes per batch (``baseline=blurred_x``, ``feature_mask=segments``)."""
        if settings:
            return self.for_call(settings)(x, target)
        if isinstance(target, Neuron):
            return explain_neuron(self, x, target)
        inputs = check_inputs(x, integers=self.integer_inputs)
        check_target_length(target, batch_size_of(inputs))
        with ExitStack() as stack:
            if self.progress:
                stack.enter_context(reporting(make_reporter(self.progress, self.name)))
            stack.enter_context(prepared(self.model))
            return self.attribute(inputs, target)

    def with_model(self, model: Model) -> Method:
        """This method, with the same settings, explaining ``model``."""
        return type(self)(model, **self.given_settings())

    def for_call(self, settings: dict[str, Any]) -> Method:
        """This method with ``settings`` changed (a copy; unknown names are refused with
        the method's settings listed)."""
        return self.replace(**settings)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:  # pragma: no cover
        raise NotImplementedError

    def result(
        self,
        values: Any,
        target: Any,
        output: Any,
        *,
        baseline: Any = None,
        delta: Any = None,
        channel_dim: int | None = 1,
        **params: Any,
    ) -> Attribution:
        """The ``Attribution`` of a call: this method's name, its settings and ``params``
        (entries of this call: counts, resolved settings) in ``Attribution.params``."""
        return Attribution(
            values=values,
            target=target,
            method=self.name,
            params={**self.settings(), **params},
            baseline=baseline,
            delta=delta,
            output=output,
            channel_dim=channel_dim,
        )


def explain_neuron(method: Method, x: Inputs, target: Neuron) -> Attribution:
    """``method`` explaining the unit ``target`` of a hidden layer: the same method on the
    model whose output is that unit (``attrib.core.neuron``)."""
    result = method.with_model(NeuronModel(method.model, target))(x, None)
    return replace(
        result, target=target, params={**result.params, "neuron": target.describe(method.model)}
    )

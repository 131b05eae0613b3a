"""The mechanism every propagation method shares: a torch-function mode active during the forward.

Guided backprop, deconvolution, DeepLIFT and LRP replace the backward rule of some
functions. Module hooks see only modules; they miss ``F.relu``, ``x + y`` residuals and
in-place ReLUs, and they cannot tell apart the two calls of a ReLU module that a
torchvision ResNet block uses twice. A ``torch.overrides.TorchFunctionMode`` sees every call
of a torch function, whatever spells it, so each *call* gets its rule: the function runs
inside a custom autograd function whose backward is the rule.

Nothing is attached to the model: the mode lives only while the model's forward runs inside
the method's call, the graph it builds is dropped when the call returns, and afterwards the
model computes ordinary gradients again. TorchScript modules do not dispatch to Python
modes, so they are refused up front rather than explained with the plain gradient.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from attrib.core.errors import LayerError
from attrib.core.inputs import Inputs, module_of
from attrib.methods.propagation.ops import Op, inplace_flag, op_of, without_inplace

__all__ = [
    "ElementwiseRule",
    "Handler",
    "Propagated",
    "Propagator",
    "RuleMode",
    "map_output",
]

# handler(func, op, args, kwargs) -> the call's result
Handler = Callable[[Callable[..., Any], Op, tuple, dict], Any]


class Propagator:
    """What one method does at each kind of call (``ops.Op.kind``).

    ``handlers`` maps kinds to handlers; a call of another kind runs unchanged. When
    ``strict``, a call of a function no rule knows that returns a tensor depending on the
    input raises a ``LayerError`` naming the function and the calling module: DeepLIFT and
    LRP are only exact where every function on the path has a rule.
    """

    method: str = ""
    strict: bool = False
    observes: bool = False

    def __init__(self, model: Any) -> None:
        self.names = _module_names(model)
        self.handlers: dict[str, Handler] = {}
        self.calls = 0

    def where(self) -> str:
        """The dotted name of the module whose forward is running (for messages)."""
        return calling_module(self.names)

    def observe(self, func: Any, op: Op | None, args: tuple, kwargs: dict, result: Any) -> None:
        """Called after every call when ``observes`` (LRP tracks who uses a layer's output)."""

    def route(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Run one call under its handler (every call of the forward comes here, and so do
        the parts of a call that a handler re-expresses as its math, such as attention)."""
        self.calls += 1
        op = op_of(func)
        handler = self.handlers.get(op.kind) if op is not None else None
        if handler is not None and op is not None:
            result = handler(func, op, args, kwargs)
        else:
            result = func(*args, **kwargs)
        if self.observes:
            self.observe(func, op, args, kwargs, result)
        if handler is None and self.strict and op is None and depends_on_input(result):
            raise self.unsupported(
                func,
                "It changes values in a way none of the rules describes, so the result would "
                "not be the method's definition.",
                _UNSUPPORTED_TODO,
            )
        return result

    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` routed as if the forward had called it (``route``)."""
        return self.route(func, args, kwargs)

    def unsupported(self, func: Any, why: str, todo: str) -> LayerError:
        return LayerError(
            "model",
            f"functions that {self.method} has a rule for",
            f"{_function_name(func)} called in {self.where()!r}",
            f"{why} {todo}".strip(),
        )


class RuleMode(TorchFunctionMode):
    """Routes every torch call of the forward to its propagator's handler."""

    def __init__(self, propagator: Propagator) -> None:
        super().__init__()
        self.propagator = propagator

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.propagator.route(func, args, kwargs or {})


_UNSUPPORTED_TODO = (
    "Explain such models with IntegratedGradients or a perturbation method (LRP's transformer "
    "composites, composite='attnlrp' or 'cp-lrp', add rules for softmax, layer norm and "
    "attention)."
)


def depends_on_input(result: Any) -> bool:
    """Whether a call's result (a tensor, or a tuple or list of them) depends on the input.

    Parameters are frozen during an explanation, so ``requires_grad`` means exactly that."""
    if isinstance(result, torch.Tensor):
        return result.requires_grad
    if isinstance(result, (tuple, list)):
        return any(isinstance(r, torch.Tensor) and r.requires_grad for r in result)
    return False


def _function_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or repr(func)
    if name == "fn" and hasattr(func, "__qualname__"):  # torch's boolean_dispatch wrapper
        name = getattr(func, "__qualname__", name)
    return name


def _module_names(model: Any) -> dict[int, str]:
    model = module_of(model)
    if model is None:
        return {}
    return {id(m): (name or type(m).__name__) for name, m in model.named_modules()}


def calling_module(names: Mapping[int, str]) -> str:
    """The innermost module of ``names`` whose ``forward`` is on the Python stack.

    Only used to write messages, so the cost of walking frames is paid on errors alone.
    """
    frame: Any = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            return names[id(owner)]
        frame = frame.f_back
    return "the model's forward"


def check_visible(model: Any, method: str) -> None:
    """Refuse models whose calls a Python mode cannot see (TorchScript)."""
    model = module_of(model)
    if model is None:
        return
    for name, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            raise LayerError(
                "model",
                f"an eager PyTorch model ({method} replaces backward rules call by call)",
                f"the TorchScript module {name or type(module).__name__!r}",
                "TorchScript runs outside Python, so its ReLUs would keep their ordinary "
                "gradient; explain the eager model instead.",
            )


class ElementwiseRule(torch.autograd.Function):
    """``y = f(z)`` element-wise, with the backward of a ``rule``.

    ``rule.forward(z, y)`` keeps what the backward needs (computed here, so later in-place
    writes to ``z`` or ``y`` cannot change it); ``rule.backward(g, kept)`` maps the incoming
    gradient ``g`` (or relevance) to the input. With ``inplace`` the result is written into
    ``z``, as the in-place call (``relu_``, ``inplace=True``) would have done; a rule that
    does not look at ``y`` (``needs_output = False``) lets a ReLU run truly in place, and so
    does one with ``rule.forward_inplace(z, f_)``, which keeps what it needs of ``z``, applies
    the in-place ``f_`` to ``z`` and returns what ``forward`` would have.

    A rule with ``keeps_output = True`` keeps nothing of its own: the output ``y`` is saved
    as autograd saves a ReLU's result (a later in-place write to it makes the backward raise,
    as it would for the plain gradient) and the backward gets ``rule.backward(g, y)``. That
    costs no pass over ``z`` in the forward and no extra memory: the graph holds ``y`` anyway.
    """

    @staticmethod
    def forward(ctx, z, rule, fn, inplace):
        twin = getattr(fn, "inplace", None)  # the in-place function, where there is one
        ctx.rule = rule
        ctx.from_output = getattr(rule, "keeps_output", False)
        reads_output = getattr(rule, "needs_output", True) and not ctx.from_output
        if inplace and twin is not None and not reads_output:
            ctx.kept = None if ctx.from_output else rule.forward(z, None)
            y = twin(z)
        elif inplace and twin is not None and hasattr(rule, "forward_inplace"):
            # the rule reads the output but keeps what it needs of z first: no copy of z
            ctx.kept = rule.forward_inplace(z, twin)
            y = z
        else:
            y = fn(z)
            ctx.kept = None if ctx.from_output else rule.forward(z, y)
            if inplace:
                y = z.copy_(y)
        if inplace:
            ctx.mark_dirty(z)
        if ctx.from_output:
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        kept = ctx.saved_tensors[0] if ctx.from_output else ctx.kept
        return ctx.rule.backward(g, kept), None, None, None


def dependencies(args: tuple, kwargs: dict) -> list[int | str]:
    """Positions (or keyword names) of the arguments that depend on the input."""
    found: list[int | str] = [
        i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad
    ]
    found += [k for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    return found


def substituted(
    func: Callable[..., Any], args: tuple, kwargs: dict, keys: list[int | str]
) -> Callable[..., Any]:
    """``f(*tensors)``: the same call with the arguments at ``keys`` replaced by ``tensors``."""

    def call(*tensors: torch.Tensor) -> Any:
        new_args, new_kwargs = list(args), dict(kwargs)
        for key, t in zip(keys, tensors, strict=True):
            if isinstance(key, int):
                new_args[key] = t
            else:
                new_kwargs[key] = t
        return func(*new_args, **new_kwargs)

    return call


def argument_at(args: tuple, kwargs: dict, key: int | str) -> Any:
    return args[key] if isinstance(key, int) else kwargs[key]


def elementwise_parts(
    func: Callable[..., Any], op: Op, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor], bool] | None:
    """For a call of an element-wise function of its first argument: that argument ``z``,
    the out-of-place function ``t -> func(t, *other arguments)``, and whether the call
    writes in place. ``None`` when ``z`` does not depend on the input."""
    z = args[0] if args else kwargs.get("input")
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return None
    rest_kwargs = {k: v for k, v in kwargs.items() if k != "input"}
    rest_args = args[1:]
    inplace = op.inplace
    if not inplace and inplace_flag(func, args, kwargs):
        inplace = True
        all_args, rest_kwargs = without_inplace(func, (z, *rest_args), rest_kwargs)
        rest_args = all_args[1:]
    pure = op.pure(func)

    def fn(t: torch.Tensor) -> torch.Tensor:
        return pure(t, *rest_args, **rest_kwargs)

    if op.kind == "relu":
        # lets a rule skip a copy
        fn.inplace = torch.relu_  # type: ignore[attr-defined]
    return z, fn, inplace


def elementwise_call(
    rule: Any, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict
) -> torch.Tensor:
    """Run one call of an element-wise function of its first argument under ``rule``."""
    parts = elementwise_parts(func, op, args, kwargs)
    if parts is None:
        return func(*args, **kwargs)
    z, fn, inplace = parts
    return ElementwiseRule.apply(z, rule, fn, inplace)


def map_output(fn: Callable[[torch.Tensor], torch.Tensor], output: Any) -> Any:
    """Apply ``fn`` to every tensor of a model output (tensor, tuple, list or dict)."""
    if isinstance(output, torch.Tensor):
        return fn(output)
    if isinstance(output, Mapping):
        items = {k: map_output(fn, v) for k, v in output.items()}
        try:
            return type(output)(**items) if type(output) is not dict else items
        except TypeError:
            return items
    if isinstance(output, (tuple, list)):
        return type(output)(map_output(fn, v) for v in output)
    return output


class Propagated:
    """The model as core sees it during a propagation method: each forward runs in the mode.

    Core's ``input_gradients`` calls it like the model (``f(x)`` or ``f(**x)``), then takes
    the gradient of the target scores; the custom backward rules recorded during the forward
    do the rest. ``finish(output)`` may rewrite the output (DeepLIFT keeps the input half,
    LRP seeds relevance with the output values).
    """

    def __init__(
        self,
        model: Any,
        propagator: Callable[[], Propagator],
        prepare: Callable[[Inputs], Inputs] | None = None,
        finish: Callable[[Any], Any] | None = None,
    ) -> None:
        self.model = model
        self.propagator = propagator
        self.prepare = prepare
        self.finish = finish

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs: Inputs = kwargs if kwargs else args[0]
        if self.prepare is not None:
            inputs = self.prepare(inputs)
        propagator = self.propagator()
        with _mode(propagator):
            output = self.model(**inputs) if isinstance(inputs, dict) else self.model(inputs)
        if propagator.calls == 0:
            raise LayerError(
                "model",
                f"a forward made of torch calls that {propagator.method} can see",
                "a forward in which no torch function was called from Python",
                "Compiled or scripted graphs hide their ReLUs; explain the eager model.",
            )
        return self.finish(output) if self.finish is not None else output


@contextmanager
def _mode(propagator: Propagator) -> Iterator[RuleMode]:
    mode = RuleMode(propagator)
    with mode:
        yield mode

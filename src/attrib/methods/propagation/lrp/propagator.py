"""The LRP rule of every call of the forward, chosen by the composite.

The backward pass carries *relevance* ``R`` (not gradients). Functions whose gradient moves
values without mixing them (views, indexing, concatenation, padding, max pooling, dropout in
eval mode) move relevance correctly with their ordinary backward. Everything else gets a
rule:

- convolutions and fully connected layers: the composite's ``Rule`` (``layers.py``);
- batch norm: merged into the preceding layer (``MergeBatchNorm``) or the composite's
  ``batch_norms`` rule;
- activations, shifts and scalings by constants: ``Pass`` (relevance unchanged);
- sums of branches, average pooling, means and other parameter-free linear functions:
  ``Norm`` (LRP-0 with a stabiliser);
- a product of a signal with a gate (the output of a sigmoid or hard sigmoid, as in
  squeeze-and-excitation blocks): the signal takes all the relevance and the gate none
  (Arras et al. 2017, "Explaining Recurrent Neural Network Predictions in Sentiment
  Analysis");
- softmax, layer norm and RMS norm, products of two signals (``q k^T``, ``A v``, gated
  products), element-wise math such as ``exp``, shifts by constant tensors (biases, masks):
  the composite's ``softmax``, ``norms``, ``products``, ``math`` and ``shifts`` rules
  (``AttnLRP``, ``CPLRP``; ``transformer.py``); the composites for convolutional networks
  have none, and refuse them;
- ``F.scaled_dot_product_attention`` and ``F.multi_head_attention_forward``: re-expressed as
  their math (``attention.py``), whose parts get the rules above;
- anything else that depends on the input: a ``LayerError`` naming it.

The relevance at the output is the target score itself, ``R = f_c(x)`` (Bach et al. 2015): the model
output passes through ``OutputRelevance``, whose backward multiplies the seed ``dscore /
doutput`` by the output.

In gradient form (``Composite.in_gradient_form``: the transformer composites without
stabilisers) the backward carries ``g = R / y`` instead of ``R``: linear layers, sums, means,
biases and softmax keep their ordinary gradient, the uniform rule halves it, the identity
rule multiplies it by ``y / x``, layer norm holds ``1 / sigma`` constant, and ``LRP``
multiplies the input by ``g`` at the end (``transformer.py``). The values are those of the
rules applied one by one with no stabiliser (tested), at about the cost of a gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from attrib.core.errors import LayerError
from attrib.methods.propagation import attention
from attrib.methods.propagation.lrp.canonizers import Canonizer, MergeBatchNorm
from attrib.methods.propagation.lrp.composites import Composite, LayerInfo
from attrib.methods.propagation.lrp.layers import (
    BatchNormParams,
    LayerCall,
    LayerRelevance,
    WeakOutputs,
    module_of_parameter,
)
from attrib.methods.propagation.lrp.rules import (
    ConstantScale,
    Detach,
    Norm,
    Pass,
    Uniform,
    safe_divide,
    stabilize,
)
from attrib.methods.propagation.lrp.transformer import (
    Halved,
    LayerNormGradient,
    LayerNormRelevance,
    RatioRule,
    RMSNormGradient,
    RMSNormRelevance,
    SoftmaxRelevance,
    UniformMatmul,
    UniformProduct,
)
from attrib.methods.propagation.mode import (
    ElementwiseRule,
    Propagator,
    argument_at,
    dependencies,
    depends_on_input,
    elementwise_call,
    substituted,
)
from attrib.methods.propagation.ops import (
    Op,
    argument,
    batch_norm_arguments,
    inplace_flag,
    without_inplace,
)

__all__ = ["LRPRules", "OutputRelevance"]

_POOLS = {
    F.avg_pool1d,
    F.avg_pool2d,
    F.avg_pool3d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d,
}


# kinds whose output entries are input entries (or copies of them): the sign is kept
_KEEP_SIGN = ("routing", "max_pool", "dropout")
_PADS = {F.pad, torch._C._nn.pad}


class _PassRule:
    """Relevance unchanged (summed over the entries a broadcast copied)."""

    needs_output = False

    @staticmethod
    def forward(z: torch.Tensor, y: torch.Tensor) -> torch.Size:
        return z.shape

    @staticmethod
    def backward(relevance: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return relevance if relevance.shape == shape else relevance.sum_to_size(shape)


_PASS = _PassRule()


class NormRelevance(torch.autograd.Function):
    """``y = fn(x_1, ..., x_k)`` linear; backward ``R_i = x_i * J_i^T (R / stabilize(y))``.

    ``summed``: ``y = x_1 + x_2`` of one shape (a residual sum), whose ``J_i^T s`` is ``s``
    itself: the backward then needs no autograd call.

    ``y`` is recomputed in the backward from the saved inputs (``x_1 + x_2`` is the same sum
    to the bit) rather than kept from the forward: a later in-place write (``relu_``) may
    change ``y``, and a copy kept for the backward would hold one more activation-sized
    tensor per residual sum for the whole call.
    """

    @staticmethod
    def forward(ctx, fn, stabilizer, inplace, summed, *inputs):
        saved = (inputs[0].clone(), *inputs[1:]) if inplace else inputs
        # an in-place sum (out += identity) stays in place: no buffer for y, no copy back
        y = inputs[0].add_(inputs[1]) if inplace and summed else fn(*inputs)
        ctx.stabilizer = stabilizer
        ctx.fn = fn
        ctx.summed = summed
        ctx.save_for_backward(*saved)
        if inplace:
            if y is not inputs[0]:
                inputs[0].copy_(y)
            ctx.mark_dirty(inputs[0])
            return inputs[0]
        return y

    @staticmethod
    def backward(ctx, relevance):
        inputs = ctx.saved_tensors
        if ctx.summed:
            first, second = inputs
            share = _share(relevance, torch.add(first, second), ctx.stabilizer)
            return (None, None, None, None, first * share, share.mul_(second))
        with torch.enable_grad():
            tracked = [t.detach().requires_grad_(True) for t in inputs]
            y = ctx.fn(*tracked)
            share = _share(relevance, y.detach(), ctx.stabilizer)
            grads = torch.autograd.grad(y, tracked, share, allow_unused=True)
        shares = [
            torch.zeros_like(t) if g is None else t.detach() * g
            for t, g in zip(tracked, grads, strict=True)
        ]
        return (None, None, None, None, *shares)


def _share(relevance: torch.Tensor, y: torch.Tensor, stabilizer: float) -> torch.Tensor:
    """``R / stabilize(y)``; an unstabilised denominator that is 0 passes no relevance."""
    if stabilizer == 0:
        return safe_divide(relevance, y)
    denominator = stabilize(y, stabilizer)  # a new tensor: the share may overwrite it
    return torch.div(relevance, denominator, out=denominator)


class OutputRelevance(torch.autograd.Function):
    """Identity forward; backward ``R = output * dscore / doutput``: relevance ``f_c(x)``."""

    @staticmethod
    def forward(ctx, output):
        ctx.save_for_backward(output)
        return output.clone()

    @staticmethod
    def backward(ctx, seed):
        (output,) = ctx.saved_tensors
        return seed * output


class LRPRules(Propagator):
    """The LRP rule of each kind of call, for one forward."""

    strict = True
    observes = True
    method = "LRP"

    def __init__(
        self,
        model: Any,
        composite: Composite,
        canonizers: Sequence[Canonizer],
        parameters: dict[int, tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(model)
        self.composite = composite
        self.gradient_form = composite.in_gradient_form
        self.merge = next((c for c in canonizers if isinstance(c, MergeBatchNorm)), None)
        self.parameters = parameters if parameters is not None else module_of_parameter(model)
        self.layers = WeakOutputs()
        # a layer's real output, kept for its rule (epsilon reuses z) -> that layer's call
        self.kept = WeakOutputs()
        self.gates = WeakOutputs()
        # in gradient form: outputs of layers run with their ordinary gradient
        self.plain_layers = WeakOutputs()
        # tensor -> its version when it was known to be >= 0 (a ReLU's output, a view of one)
        self.nonnegative = WeakOutputs()
        self.first_done = False
        self.merging: LayerCall | None = None
        native = self._native
        self.handlers = {
            "routing": native,
            "max_pool": native,
            "dropout": self._dropout,
            "fused": self._refuse,
            "math": self._math,
            "relu": self._activation,
            "activation": self._activation,
            "gate": self._gate,
            "mixing": self._mixing,
            "add": self._add,
            "neg": self._scale,
            "mul": self._multiply,
            "div": self._divide,
            "matmul": self._matmul,
            "conv": self._layer,
            "linear": self._layer,
            "batch_norm": self._batch_norm,
            "addmm": self._addmm,
            "softmax": self._softmax,
            "layer_norm": self._layer_norm,
            "rms_norm": self._rms_norm,
            **attention.attention_handlers(self),
        }

    # -- bookkeeping of layer outputs -----------------------------------------------------

    def observe(self, func: Any, op: Op | None, args: tuple, kwargs: dict, result: Any) -> None:
        if not depends_on_input(result):
            return
        if (
            op is not None
            and isinstance(result, torch.Tensor)
            and self._stays_nonnegative(op, func, args, kwargs)
        ):
            self.nonnegative.add(result, result._version)
        if op is not None and op.kind == "routing" and isinstance(result, torch.Tensor):
            # a view or copy of a gate (gate[:, :, None, None]) is still a gate
            if any(self.gates.get(a) is not None for a in _tensor_arguments(args)):
                self.gates.add(result, True)
        if not self.layers:
            return
        for arg in _tensor_arguments(args):
            layer = self.layers.get(arg)
            if layer is None:
                continue
            if layer is self.merging:
                self.merging = None  # the batch norm that was just merged into it
                continue
            layer.uses += 1
            if layer.batch_norm is not None:
                raise LayerError(
                    "model",
                    "a layer whose output feeds only the batch norm merged into it",
                    f"{layer.name or 'a layer'} whose output is used again",
                    "Merging the batch norm would change the other use; pass "
                    "canonizers=() to keep batch norms as layers of their own.",
                )

    def _stays_nonnegative(self, op: Op, func: Any, args: tuple, kwargs: dict) -> bool:
        """Whether a call's output is >= 0: a ReLU's, or one that only moves, selects or
        averages entries of tensors that are all >= 0."""
        if op.kind == "relu":
            return True
        if op.kind in _KEEP_SIGN or func in _POOLS:
            if func in _PADS and argument(func, args, kwargs, 3, "value", None) not in (None, 0):
                return False  # padding with another constant than 0 may add negatives
            tensors = [t for t in _tensor_arguments(args) if t.requires_grad]
            return bool(tensors) and all(self.is_nonnegative(t) for t in tensors)
        return False

    def is_nonnegative(self, t: torch.Tensor) -> bool:
        """Whether ``t`` is known to be >= 0 and has not been written into since."""
        return self.nonnegative.get(t) == t._version

    # -- rules -----------------------------------------------------------------------------

    @staticmethod
    def _native(func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return func(*args, **kwargs)

    def _refuse(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        if not dependencies(args, kwargs):
            return func(*args, **kwargs)
        raise self.unsupported(
            func,
            "LRP has rules for linear layers, activations, sums and pooling; this function is "
            "none of them.",
            "Explain such models with IntegratedGradients or a perturbation method.",
        )

    def _dropout(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        training = argument(func, args, kwargs, 2, "training", kwargs.get("train", True))
        if training and argument(func, args, kwargs, 1, "p", 0.5) > 0 and dependencies(args, {}):
            raise self.unsupported(
                func, "Dropout in training mode is random.", "Call it with training=False."
            )
        return func(*args, **kwargs)

    def _apply(
        self, rule: Norm | Pass, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict
    ) -> Any:
        """Run one parameter-free call under ``Pass`` or ``Norm``."""
        keys = dependencies(args, kwargs)
        if not keys:
            return func(*args, **kwargs)
        if self.gradient_form and (isinstance(rule, Norm) or op.kind == "relu"):
            # LRP-0 of a linear function is its gradient; ReLU's y / x is its gradient
            return func(*args, **kwargs)
        inplace = op.inplace or inplace_flag(func, args, kwargs)
        if inplace:
            # a layer whose output this call overwrites keeps a copy (one copy instead of
            # recomputing the layer in the backward)
            call = self.kept.get(argument_at(args, kwargs, keys[0]))
            if call is not None:
                call.preserve_output(argument_at(args, kwargs, keys[0]))
        if isinstance(rule, Pass) and op.kind == "relu" and keys in ([0], ["input"]):
            # Pass never looks at the output, so an in-place ReLU stays in place (no copy)
            return elementwise_call(_PASS, func, op, args, kwargs)
        if inplace and keys[0] != 0:
            raise self.unsupported(
                func,
                "It writes in place into a tensor computed from constants.",
                "Write it out of place.",
            )
        if inplace and not op.inplace:
            args, kwargs = without_inplace(func, args, kwargs)
        pure = op.pure(func)
        fn = substituted(pure, args, kwargs, keys)
        if isinstance(rule, Pass):
            if len(keys) > 1:
                raise self.unsupported(
                    func, "Pass needs a function of one input-dependent tensor.", "Use Norm."
                )
            passing = RatioRule if self.gradient_form else _PASS
            return ElementwiseRule.apply(argument_at(args, kwargs, keys[0]), passing, fn, inplace)
        tensors = [argument_at(args, kwargs, k) for k in keys]
        summed = _plain_sum(pure, keys, kwargs, tensors)
        return NormRelevance.apply(fn, rule.stabilizer, inplace, summed, *tensors)

    def _activation(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        return self._apply(self.composite.function_rule("activations"), func, op, args, kwargs)

    def _gate(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        out = self._activation(func, op, args, kwargs)
        if isinstance(out, torch.Tensor):
            self.gates.add(out, True)
        return out

    def _mixing(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        kind = "pooling" if func in _POOLS else "mixing"
        return self._apply(self.composite.function_rule(kind), func, op, args, kwargs)

    def _scale(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """Shifts and scalings by constants keep the relevance (they are not layers)."""
        if self.gradient_form and op.kind != "add":
            return func(*args, **kwargs)  # y = c x: R_in = R_out is g_in = c g_out
        return self._apply(Pass(), func, op, args, kwargs)

    def _add(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        if len(dependencies(args, kwargs)) > 1:
            return self._apply(self.composite.function_rule("sums"), func, op, args, kwargs)
        shifts = self.composite.shifts
        if isinstance(shifts, Norm) and _shifted_by_a_tensor(args, kwargs):
            # a bias (position embedding, attention mask): it takes its share, x / (x + c)
            return self._apply(shifts, func, op, args, kwargs)
        return self._scale(func, op, args, kwargs)

    def _multiply(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        keys = dependencies(args, kwargs)
        if len(keys) < 2:
            return self._scale(func, op, args, kwargs)
        factors = [argument_at(args, kwargs, k) for k in keys]
        gates = [self.gates.get(f) is not None for f in factors]
        if len(keys) == 2 and gates.count(True) == 1 and not op.inplace:
            # the gate is a constant for the relevance: the signal takes it all
            gate_key = keys[gates.index(True)]
            detached = list(args), dict(kwargs)
            if isinstance(gate_key, int):
                detached[0][gate_key] = argument_at(args, kwargs, gate_key).detach()
            else:
                detached[1][gate_key] = kwargs[gate_key].detach()
            return self._scale(func, op, tuple(detached[0]), detached[1])
        if isinstance(self.composite.products, Uniform) and len(keys) == 2 and not op.inplace:
            if not inplace_flag(func, args, kwargs) and keys == [0, 1]:
                if self.gradient_form:
                    return func(Halved.apply(factors[0]), Halved.apply(factors[1]), *args[2:])
                return UniformProduct.apply(*factors, _two(op.pure(func), args, kwargs))
        raise self.unsupported(
            func,
            "A product of two input-dependent tensors has no LRP rule in this composite "
            "unless one of them is a gate (the output of a sigmoid or hard sigmoid).",
            _TRANSFORMER_TODO,
        )

    def _divide(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        keys = dependencies(args, kwargs)
        reversed_ = func in (torch.Tensor.__rtruediv__, torch.Tensor.__rdiv__)
        denominator = 0 if reversed_ else 1
        if denominator in keys or (len(args) < 2 and "other" in kwargs and "other" in keys):
            raise self.unsupported(
                func, "Division by an input-dependent tensor has no LRP rule.", ""
            )
        return self._scale(func, op, args, kwargs)

    def _matmul(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        keys = dependencies(args, kwargs)
        if len(keys) > 1:
            products = self.composite.products
            if not isinstance(products, Uniform) or keys != [0, 1] or kwargs:
                raise self.unsupported(
                    func,
                    "A product of two input-dependent matrices (attention) has no LRP rule "
                    "in this composite.",
                    _TRANSFORMER_TODO,
                )
            if self.gradient_form:
                return func(Halved.apply(args[0]), Halved.apply(args[1]), *args[2:])
            return UniformMatmul.apply(args[0], args[1], op.pure(func), products.stabilizer)
        return self._apply(self.composite.function_rule("mixing"), func, op, args, kwargs)

    # -- transformer blocks -----------------------------------------------------------------

    def _math(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """Element-wise math of one tensor: the composite's identity rule, or refused."""
        if self.composite.math is None:
            return self._refuse(func, op, args, kwargs)
        return self._apply(self.composite.math, func, op, args, kwargs)

    def _softmax(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        keys = dependencies(args, kwargs)
        if not keys:
            return func(*args, **kwargs)
        rule = self.composite.softmax
        if rule is None or keys not in ([0], ["input"]):
            raise self.unsupported(
                func, "Softmax has no rule in this composite.", _TRANSFORMER_TODO
            )
        x = argument_at(args, kwargs, keys[0])
        if isinstance(rule, Detach):
            return func(*args, **kwargs).detach()
        if self.gradient_form:
            return func(*args, **kwargs)  # x (R - s sum R) is x times softmax's own VJP of R/s
        dim = argument(func, args, kwargs, 1, "dim", None)
        if dim is None:
            raise self.unsupported(func, "Softmax without dim= is ambiguous.", "Pass dim=.")
        return SoftmaxRelevance.apply(x, _bound(func, args, kwargs), dim)

    def _norm_rule(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> ConstantScale:
        rule = self.composite.norms
        if rule is None:
            raise self.unsupported(
                func, "Normalisation layers have no rule in this composite.", _TRANSFORMER_TODO
            )
        if any(k not in (0, "input") for k in dependencies(args, kwargs)):
            raise self.unsupported(func, "Its weight or bias depends on the input.", "")
        return rule

    def _norm_call(
        self, func: Callable[..., Any], args: tuple, kwargs: dict, eps_at: int
    ) -> tuple[torch.Tensor, Any, Any, torch.Tensor | None, Any, tuple[int, ...]] | None:
        """A layer or RMS norm call's ``(x, rule, normalized_shape, weight (detached), eps,
        normalised dims)``; ``None`` when ``x`` does not depend on the input."""
        x = argument(func, args, kwargs, 0, "input", None)
        if not (isinstance(x, torch.Tensor) and x.requires_grad):
            return None
        rule = self._norm_rule(func, args, kwargs)
        shape = argument(func, args, kwargs, 1, "normalized_shape", None)
        weight = argument(func, args, kwargs, 2, "weight", None)
        eps = argument(func, args, kwargs, eps_at, "eps", None)
        dims = tuple(range(-len(_sizes(shape)), 0))
        return x, rule, shape, None if weight is None else weight.detach(), eps, dims

    def _layer_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        call = self._norm_call(func, args, kwargs, eps_at=4)
        if call is None:
            return func(*args, **kwargs)
        x, rule, shape, weight, eps, dims = call
        eps = 1e-5 if eps is None else eps
        if self.gradient_form:
            bias = argument(func, args, kwargs, 3, "bias", None)
            bias = None if bias is None else bias.detach()
            return LayerNormGradient.apply(x, _sizes(shape), weight, bias, eps)
        fn = _bound(func, args, kwargs)
        return LayerNormRelevance.apply(x, fn, weight, dims, eps, rule.stabilizer)

    def _rms_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        call = self._norm_call(func, args, kwargs, eps_at=3)
        if call is None:
            return func(*args, **kwargs)
        x, rule, _, weight, eps, dims = call
        eps = torch.finfo(x.dtype).eps if eps is None else eps
        fn = _bound(func, args, kwargs)
        if self.gradient_form:
            return RMSNormGradient.apply(x, fn, weight, dims, eps)
        return RMSNormRelevance.apply(x, fn, weight, dims, eps, rule.stabilizer)

    def _addmm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        """``bias + x @ W`` (GPT-2's ``Conv1D``): the fully connected layer ``F.linear(x,
        W^T, bias)``, named after the module that owns ``W``."""
        keys = dependencies(args, kwargs)
        if not keys:
            return func(*args, **kwargs)
        bias = argument(func, args, kwargs, 0, "input", None)
        x = argument(func, args, kwargs, 1, "mat1", None)
        weight = argument(func, args, kwargs, 2, "mat2", None)
        scaled = any(kwargs.get(k, 1) != 1 for k in ("beta", "alpha"))
        if keys not in ([1], ["mat1"]) or op.inplace or scaled:
            raise self.unsupported(
                func,
                "Only bias + x @ W with a constant bias and weight is a fully connected layer.",
                "",
            )
        return self._layer(F.linear, op, (x, weight.t(), bias), {}, owner=weight)

    def _layer(
        self,
        func: Callable[..., Any],
        op: Op,
        args: tuple,
        kwargs: dict,
        owner: torch.Tensor | None = None,
    ) -> Any:
        x = argument(func, args, kwargs, 0, "input", None)
        if any(k != 0 and k != "input" for k in dependencies(args, kwargs)):
            raise self.unsupported(func, "Its weights depend on the input (a bilinear layer).", "")
        if not (isinstance(x, torch.Tensor) and x.requires_grad):
            return func(*args, **kwargs)
        if self.gradient_form:  # Epsilon(0) everywhere: LRP-0 of the layer is its gradient
            y = func(*args, **kwargs)
            self.plain_layers.add(y, True)
            return y
        kind = "linear" if func is F.linear else "conv"
        weight = argument(func, args, kwargs, 1, "weight", None)
        name, module = self.parameters.get(id(weight if owner is None else owner), ("", None))
        first = not self.first_done and kind in self.composite.first_kinds
        if first:
            self.first_done = True
        rule = self.composite.layer_rule(LayerInfo(kind, name, module, first))
        call = LayerCall(func, args, kwargs, rule, name, self.is_nonnegative(x))
        y = LayerRelevance.apply(x, call)
        call.keep_output(y)
        self.layers.add(y, call)
        if rule.needs_output:
            self.kept.add(y, call)
        return y

    def _batch_norm(self, func: Callable[..., Any], op: Op, args: tuple, kwargs: dict) -> Any:
        z = argument(func, args, kwargs, 0, "input", None)
        if not (isinstance(z, torch.Tensor) and z.requires_grad):
            return func(*args, **kwargs)
        if batch_norm_arguments(func, args, kwargs)["training"]:
            raise self.unsupported(
                func,
                "Batch norm with batch statistics makes each sample's map depend on the others.",
                "Use running statistics (track_running_stats=True, eval mode).",
            )
        if self.gradient_form and self.merge is not None and self.plain_layers.get(z):
            # LRP-0 of the layer with the batch norm merged into it: the gradient of both
            return func(*args, **kwargs)
        layer = self.layers.get(z)
        if layer is not None and self.merge is not None:
            if self.merge.merge(layer, BatchNormParams.of_call(args, kwargs, func)):
                y = ElementwiseRule.apply(z, _PASS, _bound(func, args, kwargs), False)
                layer.keep_output(y)  # the merged layer's real output
                if layer.rule.needs_output:
                    self.kept.add(y, layer)
                self.merging = layer
                return y
        rule = self.composite.function_rule("batch_norms")
        return self._apply(rule, func, op, args, kwargs)


_TRANSFORMER_TODO = (
    "Use a transformer composite (LRP(model, composite='attnlrp') or 'cp-lrp'), or "
    "explain the model with IntegratedGradients."
)


def _shifted_by_a_tensor(args: tuple, kwargs: dict) -> bool:
    """Whether a sum with one input-dependent term adds a constant tensor of at least one
    dimension (a bias), rather than a number (``1 + tanh(x)``: part of an element-wise
    function)."""
    others = [a for a in (*args[:2], kwargs.get("other")) if isinstance(a, torch.Tensor)]
    return any(not t.requires_grad and t.dim() > 0 for t in others)


def _two(
    fn: Callable[..., Any], args: tuple, kwargs: dict
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(a, b) -> fn(a, b, *the call's other arguments)``."""
    return substituted(fn, args, kwargs, [0, 1])


def _sizes(shape: Any) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(shape)


_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__}


def _plain_sum(func: Callable[..., Any], keys: list, kwargs: dict, tensors: list) -> bool:
    """Whether the call is ``a + b`` of two input-dependent tensors of one shape and dtype
    (no ``alpha``, no broadcasting): its Jacobian hands each input the relevance share."""
    return (
        func in _ADDS
        and keys == [0, 1]
        and not kwargs
        and tensors[0].shape == tensors[1].shape
        and tensors[0].dtype == tensors[1].dtype
    )


def _bound(func: Callable[..., Any], args: tuple, kwargs: dict) -> Callable[..., Any]:
    return substituted(func, args, kwargs, [0])


def _tensor_arguments(args: tuple) -> list[torch.Tensor]:
    found = []
    for a in args:
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(t for t in a if isinstance(t, torch.Tensor))
    return found

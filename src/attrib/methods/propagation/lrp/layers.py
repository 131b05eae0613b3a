"""One call of a linear layer under LRP: its arguments, its merged batch norm, its rule.

A convolution or fully connected call ``z = W x + b`` runs inside ``LayerRelevance``, whose
backward applies the layer's ``Rule`` (see ``rules.py``) to the relevance arriving at the
output. Modified forwards ``W^t x^t + b^t`` are computed only for the terms a rule has (and
not at all for ``x^-`` terms of inputs that are non-negative, as after a ReLU); the
transposed products ``(W^t)^T s`` use the convolution's own backward kernel
(``aten.convolution_backward``) so no forward is recomputed for them.

When a batch norm follows the layer (``canonizers.MergeBatchNorm``), its parameters are
folded in at backward time: ``W' = W * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma /
sqrt(var + eps) + beta``, the rule sees the merged layer and the batch norm passes relevance
through unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attrib.core.inputs import module_of
from attrib.methods.propagation.lrp.rules import Clamp, Rule, Term, safe_divide, stabilize
from attrib.methods.propagation.ops import argument, batch_norm_arguments

__all__ = ["BatchNormParams", "LayerCall", "LayerRelevance"]

_TRANSPOSED = {F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
_DIMS = {
    F.conv1d: 1,
    F.conv2d: 2,
    F.conv3d: 3,
    F.conv_transpose1d: 1,
    F.conv_transpose2d: 2,
    F.conv_transpose3d: 3,
}


@dataclass(frozen=True)
class BatchNormParams:
    """The affine map of a batch norm in eval mode: ``y = scale * (z - mean) + shift``."""

    scale: torch.Tensor
    mean: torch.Tensor
    shift: torch.Tensor

    @classmethod
    def of_call(cls, args: tuple, kwargs: dict, func: Callable[..., Any]) -> BatchNormParams:
        found = batch_norm_arguments(func, args, kwargs)
        mean, var, weight, bias = (
            found.get(k) for k in ("running_mean", "running_var", "weight", "bias")
        )
        assert mean is not None and var is not None  # eval mode: running statistics
        scale = torch.rsqrt(var + found["eps"])
        if weight is not None:
            scale = scale * weight
        shift = bias if bias is not None else torch.zeros_like(scale)
        return cls(scale.detach(), mean.detach(), shift.detach())


class LayerCall:
    """One call of ``conv*d``, ``conv_transpose*d`` or ``linear`` and what its rule needs."""

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        rule: Rule,
        name: str,
        nonnegative_input: bool = False,
    ) -> None:
        self.func = func
        # the input is known to be >= 0 (a ReLU's output): no need to look at its values
        self.nonnegative_input = nonnegative_input
        self.kind = "linear" if func is F.linear else "conv"
        self.weight: torch.Tensor = argument(func, args, kwargs, 1, "weight", None).detach()
        bias = argument(func, args, kwargs, 2, "bias", None)
        self.bias: torch.Tensor | None = None if bias is None else bias.detach()
        self.options = self._options(func, args, kwargs)
        self.rule = rule
        self.name = name
        self.batch_norm: BatchNormParams | None = None
        self.uses = 0
        self._output: torch.Tensor | None = None
        self._output_version = -1

    @staticmethod
    def _options(func: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
        if func is F.linear:
            return {}
        names: tuple[str, ...]
        defaults: tuple[int, ...]
        if func in _TRANSPOSED:
            names = ("stride", "padding", "output_padding", "groups", "dilation")
            defaults = (1, 0, 0, 1, 1)
        else:
            names = ("stride", "padding", "dilation", "groups")
            defaults = (1, 0, 1, 1)
        return {
            name: argument(func, args, kwargs, 3 + i, name, default)
            for i, (name, default) in enumerate(zip(names, defaults, strict=True))
        }

    # -- the layer's output (the real pre-activation z) ---------------------------------

    def keep_output(self, output: torch.Tensor) -> None:
        """Remember the layer's real output, if the rule uses it, to save a recomputation."""
        if self.rule.needs_output:
            self._output = output
            self._output_version = output._version

    def preserve_output(self, target: torch.Tensor) -> None:
        """Called before an in-place write into ``target``: if it still holds the kept
        output, keep a copy of it instead (else the backward would recompute the layer)."""
        if target is self._output and target._version == self._output_version:
            self.keep_output(target.detach().clone())

    def kept_output(self) -> torch.Tensor | None:
        """The real output, unless an in-place operation has since changed it."""
        out = self._output
        if out is None or out._version != self._output_version:
            return None
        return out.detach()

    # -- merged parameters, forward and transposed forward --------------------------------

    @property
    def out_channels(self) -> int:
        if self.func in _TRANSPOSED:
            return self.weight.shape[1] * self.options["groups"]
        return self.weight.shape[0]

    def parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.batch_norm is None:
            return self.weight, self.bias
        bn = self.batch_norm
        weight = self.weight
        if self.func in _TRANSPOSED:
            shape = (1, -1) + (1,) * (weight.dim() - 2)
        else:
            shape = (-1,) + (1,) * (weight.dim() - 1)
        merged_weight = weight * bn.scale.view(shape)
        bias = self.bias if self.bias is not None else torch.zeros_like(bn.mean)
        return merged_weight, (bias - bn.mean) * bn.scale + bn.shift

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return self.func(x, weight, bias, **self.options)

    def transpose(self, s: torch.Tensor, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``W^T s``: the layer's vector-Jacobian product with weights ``weight``."""
        if self.func is F.linear:
            return s @ weight
        padding = self.options["padding"]
        if isinstance(padding, str):  # "same" may pad asymmetrically: let autograd do it
            with torch.enable_grad():
                t = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.func(t, weight, None, **self.options), t, s)
            return grad
        d = _DIMS[self.func]
        o = self.options
        transposed = self.func in _TRANSPOSED
        return torch.ops.aten.convolution_backward(
            s,
            x,
            weight,
            None,
            _tuple(o["stride"], d),
            _tuple(padding, d),
            _tuple(o["dilation"], d),
            transposed,
            _tuple(o.get("output_padding", 0), d),
            o["groups"],
            [True, False, False],
        )[0]

    # -- the rule -----------------------------------------------------------------------

    def relevance(self, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        """``R_in`` from the relevance ``R`` at the (merged) layer's output."""
        weight, bias = self.parameters()
        rule = self.rule
        nonnegative = rule.clamps_inputs and (self.nonnegative_input or bool(x.min() >= 0))
        real = None
        if rule.needs_output:
            real = self.kept_output()
            if real is None:
                real = self.forward(x, weight, bias)
        epsilon = rule.stabilizer
        total: torch.Tensor | None = None
        for part in rule.parts:
            chosen = []
            for term in part.terms:
                x_t = term.inputs(x, nonnegative)
                if x_t is not None:
                    chosen.append((term, x_t, *term.params(weight, bias)))
            if not chosen:
                continue
            if len(chosen) > 1 and self._stackable():
                fold = epsilon > 0 and all(term_sign(t, nonnegative) == 1 for t, *_ in chosen)
                terms = [self._stacked(chosen, epsilon if fold else 0.0)]
            else:
                reused = [term.is_forward and real is not None for term, *_ in chosen]
                # every term >= 0 (z+ on x+, W- x-): stabilize(z) = z + eps, and the eps
                # rides on the first term's bias, so the convolution adds it for free
                fold = (
                    epsilon > 0
                    and not any(reused)
                    and all(term_sign(term, nonnegative) == 1 for term, *_ in chosen)
                )
                terms = []
                for i, ((term, x_t, w_t, b_t), reuse) in enumerate(
                    zip(chosen, reused, strict=True)
                ):
                    if fold and i == 0:
                        b_t = _plus(b_t, term.sign * epsilon, self.out_channels, w_t)
                    z_t = real if reuse and real is not None else self.forward(x_t, w_t, b_t)
                    terms.append(_Term(term.sign, x_t, w_t, z_t, not reuse))
            share = self._share(relevance, terms, 0.0 if fold else epsilon, fold)
            if part.where != "all":
                assert real is not None  # a rule that keeps one sign needs the layer's output
                share = share * ((real > 0) if part.where == "positive" else (real < 0))
            for contribution in self._contributions(share, terms, x, part.weight):
                total = contribution if total is None else total.add_(contribution)
        return total if total is not None else torch.zeros_like(x)

    def _stacked(
        self,
        chosen: list[tuple[Term, torch.Tensor, torch.Tensor, torch.Tensor | None]],
        folded_epsilon: float,
    ) -> _Term:
        """A part's terms as ONE term: ``sum_t c_t (W^t x^t + b^t)`` is one call of the layer
        on the inputs stacked along the features, ``[x^1, x^2, ...]``, with the weights
        ``[c_1 W^1, c_2 W^2, ...]`` (plus ``folded_epsilon`` in the bias); its transposed
        product hands every term its ``c_t (W^t)^T s`` at once (``_contributions`` adds them
        up). On the first convolution of an image model (3 input channels) two or three
        terms cost little more than one: the call's cost barely grows with so few channels.
        """
        inputs = torch.cat([x_t for _, x_t, _, _ in chosen], dim=self._features)
        weights = torch.cat(
            [w_t if term.sign == 1 else term.sign * w_t for term, _, w_t, _ in chosen], dim=1
        )
        bias: torch.Tensor | None = None
        for term, _, _, b_t in chosen:
            if b_t is not None:
                signed = b_t if term.sign == 1 else term.sign * b_t
                bias = signed if bias is None else bias + signed
        if folded_epsilon:
            bias = _plus(bias, folded_epsilon, self.out_channels, weights)
        z = self.forward(inputs, weights, bias)
        return _Term(1.0, inputs, weights, z, owned=True, stacked=len(chosen))

    @property
    def _features(self) -> int:
        """The dimension of the layer's input features (``F.linear`` maps the last one)."""
        return -1 if self.func is F.linear else 1

    @staticmethod
    def _share(
        relevance: torch.Tensor, terms: list[_Term], epsilon: float, stabilized: bool
    ) -> torch.Tensor:
        """``R / stabilize(sum_t c_t z^t)``, writing into the freshly computed ``z^t``
        (``stabilized``: the sum already holds its stabiliser)."""
        first = terms[0]
        owned = first.owned or first.sign != 1
        denominator = first.z if first.sign == 1 else first.sign * first.z
        for t in terms[1:]:
            if owned:
                denominator.add_(t.z, alpha=t.sign)
            else:
                denominator = denominator.add(t.z, alpha=t.sign)
                owned = True
        if not stabilized:
            if epsilon == 0:  # LRP-0: only an unstabilised denominator can be 0
                return safe_divide(relevance, denominator)
            denominator, owned = stabilize(denominator, epsilon), True
        if not owned:
            return relevance / denominator
        # the share overwrites a denominator computed here (no z^t is read after this)
        return torch.div(relevance, denominator, out=denominator)

    def _contributions(
        self, share: torch.Tensor, terms: list[_Term], x: torch.Tensor, weight: float
    ) -> list[torch.Tensor]:
        """``c_t x^t (W^t)^T s`` for every term (a stacked term's parts summed back)."""
        out = []
        for t in terms:
            # the transposed product reads only the input's shape: the layer's own input
            # unless the term stacks several (a Bound input is an expanded constant)
            grad = self.transpose(share, t.w, t.x if t.stacked > 1 else x)
            contribution = grad.mul_(t.x) if grad.is_contiguous() else grad * t.x
            if t.stacked > 1:
                dim = self._features % contribution.dim()
                contribution = contribution.unflatten(dim, (t.stacked, -1)).sum(dim)
            coefficient = weight * t.sign
            if coefficient != 1:
                contribution.mul_(coefficient)
            out.append(contribution)
        return out

    def _stackable(self) -> bool:
        """Whether ``W^T s`` for several weights can be one call (weights stacked along the
        inputs): fully connected layers and ungrouped, explicitly padded convolutions."""
        if self.func is F.linear:
            return True
        o = self.options
        return (
            self.func not in _TRANSPOSED and o["groups"] == 1 and not isinstance(o["padding"], str)
        )


@dataclass(frozen=True)
class _Term:
    """One computed term of a part: sign, modified input, modified weight, ``z^t``,
    whether ``z^t`` was computed here (and may be written into), and how many of the rule's
    terms it stacks."""

    sign: float
    x: torch.Tensor
    w: torch.Tensor
    z: torch.Tensor
    owned: bool
    stacked: int = 1  # terms stacked along the input features (``LayerCall._stacked``)


def _plus(
    bias: torch.Tensor | None, value: float, channels: int, weight: torch.Tensor
) -> torch.Tensor:
    """``bias + value`` (a bias of ``value`` where the layer has none)."""
    if bias is not None:
        return bias + value
    return weight.new_full((channels,), value)


_PART_SIGNS = {"positive": 1, "negative": -1, "square": 1, "ones": 1}


def term_sign(term: Term, nonnegative: bool) -> int:
    """``+1`` when ``c_t (W^t x^t + b^t) >= 0`` whatever the input, else ``0`` (unknown).

    ``x^t`` has a known sign for ``x+``, ``x-``, a post-ReLU input and a bound ``>= 0``;
    ``W^t`` for the positive or negative part (no ``gamma``), the square and ones; the bias
    goes through the same map as the weight, so it has the sign of the weight's part.
    """
    inputs, params = term.inputs, term.params
    if isinstance(inputs, Clamp):
        if inputs.min is not None and inputs.min >= 0:
            x_sign = 1
        elif inputs.max is not None and inputs.max <= 0 and inputs.min is None:
            x_sign = -1
        elif inputs.min is None and inputs.max is None and nonnegative:
            x_sign = 1
        else:
            return 0
    elif isinstance(inputs.value, (int, float)) and not isinstance(inputs.value, bool):
        if inputs.value < 0:
            return 0
        x_sign = 1
    else:
        return 0
    w_sign = _PART_SIGNS.get(params.part, 0) if params.gamma is None else 0
    if w_sign == 0:
        return 0
    product = x_sign * w_sign
    if params.bias and params.part != "ones" and w_sign != product:
        return 0  # e.g. W- x- + b-: the bias may outweigh the product
    signed = product * term.sign
    return 1 if signed > 0 else 0


def _tuple(value: Any, d: int) -> list[int]:
    if isinstance(value, int):
        return [value] * d
    return list(value)


class LayerRelevance(torch.autograd.Function):
    """Forward: the layer itself. Backward: the layer's rule, from output to input relevance."""

    @staticmethod
    def forward(ctx, x, call):
        ctx.save_for_backward(x)
        ctx.call = call
        return call.forward(x, call.weight, call.bias)

    @staticmethod
    def backward(ctx, relevance):
        (x,) = ctx.saved_tensors
        return ctx.call.relevance(x, relevance), None


def module_of_parameter(model: Any) -> dict[int, tuple[str, nn.Module]]:
    """``id(weight) -> (name, module)`` for every module with a weight (or running mean)."""
    model = module_of(model)
    if model is None:
        return {}
    found: dict[int, tuple[str, nn.Module]] = {}
    for name, module in model.named_modules():
        for attribute in ("weight", "running_mean"):
            tensor = getattr(module, attribute, None)
            if isinstance(tensor, torch.Tensor):
                found.setdefault(id(tensor), (name, module))
    return found


class WeakOutputs:
    """``tensor -> value`` for tensors produced during one forward, without keeping them alive."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, Any]] = {}

    def add(self, tensor: torch.Tensor, value: Any) -> None:
        self._items[id(tensor)] = (weakref.ref(tensor), value)

    def get(self, tensor: Any) -> Any:
        if not isinstance(tensor, torch.Tensor):
            return None
        item = self._items.get(id(tensor))
        if item is None or item[0]() is not tensor:
            return None
        return item[1]

    def __bool__(self) -> bool:
        return bool(self._items)

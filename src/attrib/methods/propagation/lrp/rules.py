"""LRP rules as data (Bach et al. 2015; Montavon et al. 2019, "Layer-Wise Relevance
Propagation: An Overview").

A linear layer ``z = W x + b`` passes the relevance ``R`` of its outputs to its inputs. Every
rule of the literature has one shape: a few *terms*, each a modified input ``x^t`` fed
through modified parameters ``(W^t, b^t)`` and counted with a sign ``c_t``; their sum is the
denominator, and each term hands back its share:

    z^t = W^t x^t + b^t,      s = R / stabilize(sum_t c_t z^t),
    R_in = sum_t c_t * x^t * (W^t)^T s.

A rule may have several such *parts* (alpha-beta has a positive and a negative one), each
with a weight and optionally restricted to outputs whose real pre-activation ``z`` is
positive or negative (the generalised gamma rule). ``stabilize(z) = z + eps * sign(z)`` with
``sign(0) = 1`` (Zennit's convention), and a zero denominator passes no relevance.

A new rule is a list of terms: see ``Epsilon`` or ``ZPlus`` below (about ten lines each).
Rules hold no lambdas, so they pickle. ``Pass`` and ``Norm`` are the rules of functions
without parameters (activations, sums, pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from attrib.core.errors import SettingError

__all__ = [
    "AlphaBeta",
    "Bound",
    "Clamp",
    "ConstantScale",
    "Detach",
    "Epsilon",
    "Flat",
    "Gamma",
    "Norm",
    "Params",
    "Part",
    "Pass",
    "Rule",
    "SoftmaxTaylor",
    "Term",
    "Uniform",
    "WSquare",
    "ZBox",
    "ZPlus",
    "stabilize",
]


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z + epsilon * sign(z)``, with ``sign(0) = +1``: a new tensor (``z`` itself for 0)."""
    if epsilon == 0:
        return z
    # [z >= 0] * 2 epsilon - epsilon + z: the comparison written straight into one new
    # tensor of z's dtype, the rest in place (torch.where with two scalars, or a bool mask
    # converted, took 2-3x as long on large maps); 2 epsilon - epsilon is epsilon exactly
    signs = torch.ge(z, 0, out=torch.empty_like(z, memory_format=torch.contiguous_format))
    return signs.mul_(2 * epsilon).sub_(epsilon).add_(z)


def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, and 0 where the denominator is 0 (no relevance to split)."""
    zero = denominator == 0
    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, denominator)).to(
        numerator.dtype
    )


# -- input modifiers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clamp:
    """``x -> clamp(x, min, max)``: ``Clamp()`` is the input itself, ``Clamp(min=0)`` its
    positive part ``x+``, ``Clamp(max=0)`` its negative part ``x-``."""

    min: float | None = None
    max: float | None = None

    def __call__(self, x: torch.Tensor, nonnegative: bool) -> torch.Tensor | None:
        """The modified input, or ``None`` where it is known to be all zeros."""
        if self.min is None and self.max is None:
            return x
        if nonnegative and self.min is not None and self.min <= 0 and self.max is None:
            return x  # x+ of a post-ReLU input is the input
        if nonnegative and self.max == 0 and self.min is None:
            return None  # x- of a post-ReLU input is zero: skip the term
        return x.clamp(min=self.min, max=self.max)


@dataclass(frozen=True)
class Bound:
    """The input replaced by a constant: ``1`` (flat, w-square) or a pixel bound (z-box).

    ``value`` is a number or a tensor broadcastable to one sample (``(C, 1, 1)``, ``(C, H,
    W)``) or to the batch with a leading 1.
    """

    value: Any = 1.0

    def __call__(self, x: torch.Tensor, nonnegative: bool) -> torch.Tensor:
        return torch.as_tensor(self.value, dtype=x.dtype, device=x.device).expand_as(x)


# -- parameter modifiers -----------------------------------------------------------------

PartName = Literal["all", "positive", "negative", "square", "ones"]


@dataclass(frozen=True)
class Params:
    """``(W, b) -> (W', b')`` with ``W' = f(W)``, or ``W + gamma * f(W)`` when ``gamma`` is
    set, for ``f`` the identity, the positive or negative part, the square, or ones. The bias
    goes through the same ``f`` (as in Zennit) unless ``bias=False`` drops it."""

    part: PartName = "all"
    gamma: float | None = None
    bias: bool = True

    def __call__(
        self, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        new_weight = self._apply(weight)
        new_bias = self._apply(bias) if (self.bias and bias is not None) else None
        if self.part == "ones":
            new_bias = None  # the flat rule ignores biases
        return new_weight, new_bias

    def _apply(self, t: torch.Tensor) -> torch.Tensor:
        part = {
            "all": lambda u: u,
            "positive": lambda u: u.clamp(min=0),
            "negative": lambda u: u.clamp(max=0),
            "square": lambda u: u * u,
            "ones": torch.ones_like,
        }[self.part](t)
        return part if self.gamma is None else t + self.gamma * part

    @property
    def identity(self) -> bool:
        return self.part == "all" and self.gamma is None and self.bias


# -- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One modified forward ``z^t = W^t x^t + b^t`` with its sign ``c_t``."""

    inputs: Clamp | Bound = Clamp()
    params: Params = Params()
    sign: float = 1.0

    @property
    def is_forward(self) -> bool:
        """Whether this term is the layer's own forward, whose output we already have."""
        return (
            isinstance(self.inputs, Clamp)
            and self.inputs.min is None
            and self.inputs.max is None
            and self.params.identity
        )


@dataclass(frozen=True)
class Part:
    """Terms normalised together, weighted by ``weight``, applied where the layer's real
    output is positive, negative, or everywhere (``where``)."""

    terms: tuple[Term, ...]
    weight: float = 1.0
    where: Literal["all", "positive", "negative"] = "all"


class Rule:
    """A rule for a linear layer (convolution or fully connected): parts of terms, and a
    stabiliser added to each part's denominator."""

    def __init__(self, parts: Sequence[Part], stabilizer: float = 1e-6) -> None:
        if isinstance(stabilizer, bool) or not isinstance(stabilizer, (int, float)):
            raise SettingError("stabilizer", "a number >= 0", stabilizer, "")
        if stabilizer < 0:
            raise SettingError("stabilizer", "a number >= 0", stabilizer, "")
        self.parts = tuple(parts)
        self.stabilizer = float(stabilizer)

    @property
    def needs_output(self) -> bool:
        """Whether the rule uses the layer's real output (its denominator or a sign)."""
        return any(
            part.where != "all" or any(term.is_forward for term in part.terms)
            for part in self.parts
        )

    @property
    def clamps_inputs(self) -> bool:
        """Whether a term uses ``x+`` or ``x-`` (then non-negative inputs save work)."""
        return any(
            isinstance(t.inputs, Clamp) and (t.inputs.min is not None or t.inputs.max is not None)
            for part in self.parts
            for t in part.terms
        )

    def _settings(self) -> dict[str, Any]:
        return {"stabilizer": self.stabilizer}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), self.parts, self.stabilizer))


_POS_IN, _NEG_IN = Clamp(min=0.0), Clamp(max=0.0)
_POS_W_NO_BIAS, _NEG_W_NO_BIAS = Params("positive", bias=False), Params("negative", bias=False)


class Epsilon(Rule):
    """LRP-epsilon (Bach et al. 2015): ``R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j``.
    ``Epsilon(0)`` is LRP-0, which on ReLU networks equals gradient times input."""

    def __init__(self, epsilon: float = 1e-6) -> None:
        super().__init__([Part((Term(),))], stabilizer=epsilon)
        self.epsilon = float(epsilon)

    def _settings(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}


class ZPlus(Rule):
    """LRP-z+ (Montavon et al. 2017), i.e. alpha=1, beta=0: only positive contributions,
    ``z^+ = W^+ x^+ + b^+ + W^- x^-``."""

    def __init__(self, stabilizer: float = 1e-6) -> None:
        terms = (Term(_POS_IN, Params("positive")), Term(_NEG_IN, _NEG_W_NO_BIAS))
        super().__init__([Part(terms)], stabilizer=stabilizer)


class AlphaBeta(Rule):
    """LRP-alpha-beta (Bach et al. 2015): ``alpha`` times the relevance split by positive
    contributions minus ``beta`` times that split by negative ones; ``alpha - beta = 1``."""

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = 1e-6) -> None:
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1) > 1e-12:
            raise SettingError(
                "alpha, beta", "alpha >= 0, beta >= 0 and alpha - beta = 1", (alpha, beta), ""
            )
        positive = (
            Term(_POS_IN, Params("positive")),
            Term(_NEG_IN, Params("negative", bias=False)),
        )
        negative = (
            Term(_POS_IN, Params("negative")),
            Term(_NEG_IN, Params("positive", bias=False)),
        )
        parts = [Part(positive, weight=alpha), Part(negative, weight=-beta)]
        super().__init__(parts, stabilizer=stabilizer)
        self.alpha, self.beta = float(alpha), float(beta)

    def _settings(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "stabilizer": self.stabilizer}


class Gamma(Rule):
    """LRP-gamma (Montavon et al. 2019), generalised to inputs of both signs (Andeol et al.
    2021, as in Zennit): where the layer's output is positive, positive contributions are
    boosted by ``gamma`` (``W + gamma W^+`` on ``x^+``, ``W + gamma W^-`` on ``x^-``); where it
    is negative, negative contributions are."""

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6) -> None:
        up, down = Params("positive", gamma), Params("negative", gamma)
        positive = (Term(_POS_IN, up), Term(_NEG_IN, Params("negative", gamma, bias=False)))
        negative = (Term(_POS_IN, down), Term(_NEG_IN, Params("positive", gamma, bias=False)))
        parts = [Part(positive, where="positive"), Part(negative, where="negative")]
        super().__init__(parts, stabilizer=stabilizer)
        self.gamma = float(gamma)

    def _settings(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "stabilizer": self.stabilizer}


class ZBox(Rule):
    """LRP-z^B (Montavon et al. 2017) for the first layer of inputs bounded by ``low <= x <=
    high`` (pixels): ``z = W x - W^+ low - W^- high``, each part handing relevance back to its
    own input. ``low``/``high`` are numbers or tensors broadcastable to one sample, in the
    model's input space (after any normalisation the model does not do itself)."""

    def __init__(self, low: Any, high: Any, stabilizer: float = 1e-6) -> None:
        terms = (
            Term(),
            Term(Bound(low), Params("positive"), sign=-1.0),
            Term(Bound(high), Params("negative"), sign=-1.0),
        )
        super().__init__([Part(terms)], stabilizer=stabilizer)
        self.low, self.high = low, high

    def _settings(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "stabilizer": self.stabilizer}

    def __hash__(self) -> int:
        return id(self)


class Flat(Rule):
    """The flat rule (Lapuschkin et al. 2019): relevance spread uniformly over the receptive
    field, ``R_i = sum_j 1 / (sum_i' 1) R_j``, whatever the input and weights."""

    def __init__(self, stabilizer: float = 1e-6) -> None:
        super().__init__([Part((Term(Bound(1.0), Params("ones")),))], stabilizer=stabilizer)


class WSquare(Rule):
    """The w^2 rule (Montavon et al. 2017): ``R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j``, for a
    first layer with unbounded inputs (the bias is squared too, as in Zennit)."""

    def __init__(self, stabilizer: float = 1e-6) -> None:
        super().__init__([Part((Term(Bound(1.0), Params("square")),))], stabilizer=stabilizer)


# -- rules of functions without parameters -----------------------------------------------


class Pass:
    """Relevance passes unchanged (activations, gates' signals, batch norm left unmerged,
    shifts and scalings by constants); it is summed where the function broadcast its input."""

    def __repr__(self) -> str:
        return "Pass()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Norm:
    """LRP-0 with a stabiliser for any linear function ``y = L(x_1, ..., x_k)`` without
    parameters (sums of branches, average pooling, means): ``R_i = x_i * J_i^T (R /
    stabilize(y))``. For ``y = a + b`` it splits ``R`` in proportion to ``a`` and ``b``."""

    def __init__(self, stabilizer: float = 1e-6) -> None:
        if isinstance(stabilizer, bool) or not isinstance(stabilizer, (int, float)):
            raise SettingError("stabilizer", "a number >= 0", stabilizer, "")
        self.stabilizer = float(stabilizer)

    def __repr__(self) -> str:
        return f"Norm(stabilizer={self.stabilizer!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.stabilizer == other.stabilizer

    def __hash__(self) -> int:
        return hash((type(self), self.stabilizer))


# -- rules of the nonlinear functions of a transformer block -------------------------------
# (Achtibat et al. 2024, "AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for
# Transformers"; Ali et al. 2022, "XAI for Transformers: Better Explanations through
# Conservative Propagation")


class _Stabilized:
    """A parameter-free rule with a stabiliser (compared and hashed by it)."""

    def __init__(self, stabilizer: float = 1e-6) -> None:
        if isinstance(stabilizer, bool) or not isinstance(stabilizer, (int, float)):
            raise SettingError("stabilizer", "a number >= 0", stabilizer, "")
        if stabilizer < 0:
            raise SettingError("stabilizer", "a number >= 0", stabilizer, "")
        self.stabilizer = float(stabilizer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stabilizer={self.stabilizer!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Stabilized)
            and type(self) is type(other)
            and self.stabilizer == other.stabilizer
        )

    def __hash__(self) -> int:
        return hash((type(self), self.stabilizer))


class Uniform(_Stabilized):
    """AttnLRP's uniform rule for a product of ``k`` input-dependent factors (Achtibat et al.
    2024, Prop. 3.2 and 3.3): each factor gets ``1/k`` of the relevance.

    - element-wise ``y = a * b``: ``R_a = R_b = R / 2``;
    - matrix product ``y = a @ b`` (``q k^T``, ``attention @ v``): the epsilon rule of the
      bilinear map, halved, ``R_a = a * ((R / stabilize(2 y)) @ b^T)`` and ``R_b = b *
      (a^T @ (R / stabilize(2 y)))``: since ``a * J_a^T s`` and ``b * J_b^T s`` each sum to
      ``sum(s * y)`` (Euler's theorem for a bilinear map), the two halves add up to ``R``
      up to the stabiliser.
    """


class SoftmaxTaylor:
    """AttnLRP's rule for ``s = softmax(x)`` (Achtibat et al. 2024, Prop. 3.1, a Taylor
    decomposition at ``x`` with the bias term left out):

        R_in_i = x_i * (R_i - s_i * sum_j R_j).

    It is not conservative: ``sum_i R_in_i = sum_i x_i R_i - (sum_i s_i x_i) sum_j R_j``, the
    rest is absorbed. Masked entries (``x = -inf``, or the most negative float that masks use)
    have ``s = 0`` and ``R = 0``, and get no relevance.
    """

    def __repr__(self) -> str:
        return "SoftmaxTaylor()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Detach:
    """CP-LRP (Ali et al. 2022): the function's output is a constant for the relevance, as
    if detached from the graph; no relevance flows through it. On the attention softmax
    this makes ``attention @ v`` a linear map of ``v`` with fixed weights."""

    def __repr__(self) -> str:
        return "Detach()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class ConstantScale(_Stabilized):
    """Layer norm and RMS norm with the scale ``1 / sigma(x)`` held constant (AttnLRP's
    identity rule on the normalisation, Prop. 3.4; the "LN-detach" of Ali et al. 2022).

    Layer norm ``y = (x - mean(x)) / sigma * w + b`` is then the linear map ``J = diag(w /
    sigma) (I - 11^T / n)`` plus the bias ``b``, and gets its epsilon rule:

        s = R / stabilize(y),   t = s * w / sigma,   R_in = x * (t - mean(t)),

    so ``sum R_in = sum_j R_j (y_j - b_j) / stabilize(y_j)``: only the bias and the
    stabiliser absorb relevance. RMS norm ``y = x / rms(x) * w`` (no mean, no bias) passes
    ``R_in = x * w / rms * s``, which is ``R`` up to the stabiliser.
    """

"""Composites: which LRP rule each layer gets (Montavon et al. 2019, section 10.3).

A composite maps each linear layer, given as ``LayerInfo(kind, name, module, first)``, to a
``Rule``, and each kind of parameter-free function (sums of branches, pooling, other linear
functions, activations, batch norms left unmerged) to ``Norm`` or ``Pass``. Rules by module
name (``names=``) win over the first-layer rule, which wins over the rule of the kind.

The named composites are those of Zennit (and of Montavon et al. 2019, Kohlbrenner et al.
2020), with Zennit's defaults, so that the same composite gives the same map:

==========================  =================  ==================  =====================
composite                   first layer        other convolutions  fully connected
==========================  =================  ==================  =====================
``EpsilonPlus``             (as the others)    z+                  epsilon
``EpsilonAlpha2Beta1``      (as the others)    alpha=2, beta=1     epsilon
``EpsilonPlusFlat``         flat (conv or fc)  z+                  epsilon
``EpsilonGammaBox``         z-box (conv)       gamma=0.25          epsilon
==========================  =================  ==================  =====================

Every one passes relevance through activations and unmerged batch norms (``Pass``) and splits
it over sums of branches and pooling windows with ``Norm`` (LRP-0 with a 1e-6 stabiliser).
They have no rule for softmax, layer norm or products of two signals, and refuse them.

The transformer composites add those rules (``transformer_rules`` below):

================  ==========================  ==========================
function          ``AttnLRP``                 ``CPLRP``
================  ==========================  ==========================
linear, conv      epsilon                     epsilon
softmax           ``SoftmaxTaylor``           ``Detach``
``a @ b``, a * b  ``Uniform``                 ``Uniform`` (``A @ v`` has one
                                              signal once A is detached)
layer/RMS norm    ``ConstantScale``           ``ConstantScale``
activations,      ``Pass`` (identity rule)    ``Pass``
element-wise math
``x + bias``      ``Norm`` (epsilon rule)     ``Norm``
================  ==========================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from attrib.core.errors import SettingError
from attrib.methods.propagation.lrp.rules import (
    AlphaBeta,
    ConstantScale,
    Detach,
    Epsilon,
    Flat,
    Gamma,
    Norm,
    Pass,
    Rule,
    SoftmaxTaylor,
    Uniform,
    ZBox,
    ZPlus,
)

__all__ = [
    "COMPOSITES",
    "CPLRP",
    "AttnLRP",
    "Composite",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlus",
    "EpsilonPlusFlat",
    "LayerInfo",
    "make_composite",
]

LAYER_KINDS = ("conv", "linear")


@dataclass(frozen=True)
class LayerInfo:
    """One call of a linear layer, as a composite sees it.

    ``kind`` is ``"conv"`` (any convolution, transposed ones included) or ``"linear"``;
    ``name`` the dotted name of the module that owns the weight (``""`` for a functional call
    with a weight that belongs to no module); ``first`` whether it is the first call, in the
    forward, of the kinds the composite's first-layer rule is for.
    """

    kind: str
    name: str
    module: nn.Module | None
    first: bool


class Composite:
    """A mapping from layers to rules.

    Args:
        conv: the rule of convolutions.
        linear: the rule of fully connected layers.
        first: the rule of the first layer of ``first_kinds`` in the forward (``None``: none).
        first_kinds: which kinds of layer can be the "first layer".
        names: rules for layers by dotted module name (override everything else).
        sums: the rule of ``a + b`` where both depend on the input (residual connections).
        pooling: the rule of average pooling (adaptive or not).
        mixing: the rule of other parameter-free linear functions (means, sums over
            dimensions, interpolation, products with constant matrices).
        activations: the rule of element-wise activations.
        batch_norms: the rule of batch norms that are not merged into a preceding layer.
        softmax: the rule of softmax (``SoftmaxTaylor()``, ``Detach()``; ``None``: refused).
        products: the rule of products of two input-dependent tensors, element-wise or
            matrix products (``Uniform()``; ``None``: refused unless one factor is a gate).
        norms: the rule of layer norm and RMS norm (``ConstantScale()``; ``None``: refused).
        math: the rule of other element-wise functions of one tensor (``exp``, ``pow``, ...;
            ``Pass()`` is the identity rule; ``None``: refused).
        shifts: the rule of ``x + c`` for a constant tensor ``c`` (a bias, a position
            embedding, an attention mask): ``Pass()`` (default) hands all relevance to ``x``,
            ``Norm(eps)`` is the epsilon rule of a bias, ``x / stabilize(x + c) R``. Shifts
            by a number (``1 + tanh(x)``) are part of an element-wise function and pass.
        gradient_form: compute the relevance as ``x * g`` for a modified gradient ``g`` where
            every rule allows it (no stabiliser anywhere: ``in_gradient_form``): the same
            values as rule-by-rule relevance, for about the cost of a gradient (LXT's
            "efficient" AttnLRP). The transformer composites set it.
    """

    def __init__(
        self,
        *,
        conv: Rule,
        linear: Rule,
        first: Rule | None = None,
        first_kinds: tuple[str, ...] = ("conv",),
        names: Mapping[str, Rule] | None = None,
        sums: Norm | None = None,
        pooling: Norm | Pass | None = None,
        mixing: Norm | Pass | None = None,
        activations: Norm | Pass | None = None,
        batch_norms: Norm | Pass | None = None,
        softmax: SoftmaxTaylor | Detach | None = None,
        products: Uniform | None = None,
        norms: ConstantScale | None = None,
        math: Pass | None = None,
        shifts: Norm | Pass | None = None,
        gradient_form: bool = False,
    ) -> None:
        for label, rule in (("conv", conv), ("linear", linear), ("first", first)):
            if rule is not None and not isinstance(rule, Rule):
                raise SettingError(label, "an LRP Rule (Epsilon(), ZPlus(), ...)", rule, "")
        for label, rule in (names or {}).items():
            if not isinstance(rule, Rule):
                raise SettingError(f"names[{label!r}]", "an LRP Rule", rule, "")
        if not set(first_kinds) <= set(LAYER_KINDS):
            raise SettingError("first_kinds", f"kinds among {LAYER_KINDS}", first_kinds, "")
        if sums is not None and not isinstance(sums, Norm):
            raise SettingError(
                "sums",
                "Norm(...): relevance of a sum must be split between its terms",
                sums,
                "Pass would hand the whole relevance to every branch.",
            )
        self.conv = conv
        self.linear = linear
        self.first = first
        self.first_kinds = tuple(first_kinds)
        self.names = dict(names or {})
        self.functions: dict[str, Norm | Pass] = {
            "sums": sums or Norm(),
            "pooling": pooling or Norm(),
            "mixing": mixing or Norm(),
            "activations": activations or Pass(),
            "batch_norms": batch_norms or Pass(),
        }
        for label, function in self.functions.items():
            if not isinstance(function, (Norm, Pass)):
                raise SettingError(label, "Norm(...) or Pass()", function, "")
        for label, value, kinds, what in (
            ("softmax", softmax, (SoftmaxTaylor, Detach), "SoftmaxTaylor(), Detach() or None"),
            ("products", products, (Uniform,), "Uniform(...) or None"),
            ("norms", norms, (ConstantScale,), "ConstantScale(...) or None"),
            ("math", math, (Pass,), "Pass() or None"),
            ("shifts", shifts, (Norm, Pass), "Norm(...), Pass() or None"),
        ):
            if value is not None and not isinstance(value, kinds):
                raise SettingError(label, what, value, "")
        self.softmax = softmax
        self.products = products
        self.norms = norms
        self.math = math
        self.shifts: Norm | Pass = shifts or Pass()
        self.gradient_form = bool(gradient_form)

    @property
    def in_gradient_form(self) -> bool:
        """Whether the relevance is computed as ``x * g`` (``gradient_form``, and every rule
        is its unstabilised form: ``Epsilon(0)`` layers, ``Norm(0)``, ``Uniform(0)``,
        ``ConstantScale(0)``; ``Pass``, ``SoftmaxTaylor`` and ``Detach`` have none)."""
        if not self.gradient_form:
            return False
        layers = [self.conv, self.linear, self.first, *self.names.values()]
        if any(r is not None and not (type(r) is Epsilon and r.epsilon == 0) for r in layers):
            return False
        stabilized = [*self.functions.values(), self.shifts, self.products, self.norms]
        return all(getattr(r, "stabilizer", 0.0) == 0 for r in stabilized)

    def layer_rule(self, layer: LayerInfo) -> Rule:
        if layer.name in self.names:
            return self.names[layer.name]
        if layer.first and self.first is not None:
            return self.first
        return self.conv if layer.kind == "conv" else self.linear

    def function_rule(self, kind: str) -> Norm | Pass:
        return self.functions[kind]

    def __repr__(self) -> str:
        first = f", first={self.first!r}" if self.first is not None else ""
        return f"{type(self).__name__}(conv={self.conv!r}, linear={self.linear!r}{first})"


class EpsilonPlus(Composite):
    """z+ for convolutions, epsilon for fully connected layers (Zennit's ``EpsilonPlus``)."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(
            conv=ZPlus(stabilizer), linear=Epsilon(epsilon), **_norms(stabilizer, kwargs)
        )


class EpsilonAlpha2Beta1(Composite):
    """alpha=2, beta=1 for convolutions, epsilon for fully connected layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(
            conv=AlphaBeta(2.0, 1.0, stabilizer),
            linear=Epsilon(epsilon),
            **_norms(stabilizer, kwargs),
        )


class EpsilonPlusFlat(Composite):
    """flat for the first layer (convolution or fully connected), then as ``EpsilonPlus``."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(
            conv=ZPlus(stabilizer),
            linear=Epsilon(epsilon),
            first=Flat(stabilizer),
            first_kinds=("conv", "linear"),
            **_norms(stabilizer, kwargs),
        )


class EpsilonGammaBox(Composite):
    """z-box for the first convolution (inputs within ``[low, high]``), gamma for the other
    convolutions, epsilon for fully connected layers (Montavon et al. 2019's recommendation)."""

    def __init__(
        self,
        low: Any,
        high: Any,
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        stabilizer: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            conv=Gamma(gamma, stabilizer),
            linear=Epsilon(epsilon),
            first=ZBox(low, high, stabilizer),
            first_kinds=("conv",),
            **_norms(stabilizer, kwargs),
        )


def transformer_rules(
    softmax: SoftmaxTaylor | Detach, stabilizer: float, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The rules of a transformer composite beyond its layers (``AttnLRP``, ``CPLRP``)."""
    defaults = {
        "softmax": softmax,
        "products": Uniform(stabilizer),
        "norms": ConstantScale(stabilizer),
        "math": Pass(),
        "activations": Pass(),
        "shifts": Norm(stabilizer),
        "gradient_form": True,
    }
    return {**_norms(stabilizer, {}), **defaults, **kwargs}


class AttnLRP(Composite):
    """AttnLRP (Achtibat et al. 2024): epsilon for linear layers and convolutions, its softmax
    rule (``SoftmaxTaylor``), the uniform rule for ``q k^T``, ``attention @ v`` and gated
    products, layer norm with its scale held constant, the identity rule for element-wise
    activations, and biases (``x + c``) absorbing relevance by the epsilon rule.

    ``epsilon`` (layers) and ``stabilizer`` (sums, products, norms) default to 0, as in the
    authors' LXT: then the relevance is computed in gradient form (``gradient_form``), at
    about the cost of a gradient; a positive value computes rule by rule."""

    def __init__(self, epsilon: float = 0.0, stabilizer: float = 0.0, **kwargs: Any) -> None:
        super().__init__(
            conv=Epsilon(epsilon),
            linear=Epsilon(epsilon),
            **transformer_rules(SoftmaxTaylor(), stabilizer, kwargs),
        )


class CPLRP(Composite):
    """Conservative propagation (Ali et al. 2022, "CP-LRP"): as ``AttnLRP`` but the attention
    softmax is detached (``Detach``), so ``attention @ v`` is linear in ``v`` and relevance
    flows through the values only; layer norm with its scale held constant. ``epsilon`` and
    ``stabilizer`` as for ``AttnLRP``."""

    def __init__(self, epsilon: float = 0.0, stabilizer: float = 0.0, **kwargs: Any) -> None:
        super().__init__(
            conv=Epsilon(epsilon),
            linear=Epsilon(epsilon),
            **transformer_rules(Detach(), stabilizer, kwargs),
        )


def _norms(stabilizer: float, kwargs: dict[str, Any]) -> dict[str, Any]:
    defaults = {"sums": Norm(stabilizer), "pooling": Norm(stabilizer), "mixing": Norm(stabilizer)}
    return {**defaults, **kwargs}


COMPOSITES: dict[str, Callable[..., Composite]] = {
    "epsilon_plus": EpsilonPlus,
    "epsilon_alpha2_beta1": EpsilonAlpha2Beta1,
    "epsilon_plus_flat": EpsilonPlusFlat,
    "epsilon_gamma_box": EpsilonGammaBox,
    "attnlrp": AttnLRP,
    "cp-lrp": CPLRP,
}


def _composite_key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_COMPOSITE_KEYS = {_composite_key(name): name for name in COMPOSITES}


def make_composite(composite: str | Composite | None, rule: Rule | None) -> Composite:
    """The composite an ``LRP`` call uses: a named one, an instance, or one rule everywhere."""
    if rule is not None:
        if composite is not None:
            raise SettingError(
                "rule", "either rule= or composite=, not both", rule, "rule= uses one rule "
                "for every layer; a Composite maps layers to rules."
            )  # fmt: skip
        if not isinstance(rule, Rule):
            raise SettingError("rule", "an LRP Rule (Epsilon(), ZPlus(), ...)", rule, "")
        return Composite(conv=rule, linear=rule)
    if composite is None:
        return EpsilonPlus()
    if isinstance(composite, Composite):
        return composite
    if isinstance(composite, str):
        # "cp-lrp", "cp_lrp", "CPLRP" and "AttnLRP" name the same composites as the table
        composite = _COMPOSITE_KEYS.get(_composite_key(composite), composite)
    if isinstance(composite, str) and composite in COMPOSITES:
        if composite == "epsilon_gamma_box":
            raise SettingError(
                "composite",
                "EpsilonGammaBox(low, high) with the input bounds",
                composite,
                "The z-box rule needs the lowest and highest input values, e.g. "
                "EpsilonGammaBox(low=-2.1, high=2.6) for ImageNet-normalised images.",
            )
        return COMPOSITES[composite]()
    raise SettingError("composite", f"a Composite or one of {sorted(COMPOSITES)}", composite, "")

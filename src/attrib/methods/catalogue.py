"""The catalogue: what every method is, said once, where the method is defined.

Each method class carries a registration::

    @register(
        family="gradient",
        paper="Simonyan et al. 2014",
        short="input gradient of the class score",
        summary="How much the class score changes when one input value changes.",
        formula="A = ∂S_c/∂x;  map M_ij = max_c |A_cij|",
    )
    class Saliency(Method): ...

and its settings are ``Setting`` attributes of the class (``attrib.core.settings``). The
command line, ``explain()``, the report, ``viz``, the text methods and the demo read the
catalogue; no other table of method names exists. A new method is one module with a
registered class, imported by its package's ``__init__``.

A method is in the catalogue once its module is imported: ``attrib.methods`` imports every
method of tensors and images, ``attrib.text`` the text methods. A reader that lists every
method imports both (``viz``, ``explain()``, ``attrib methods``); ``import attrib`` alone
imports neither (its names load on first use).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from attrib.core.errors import LayerError, SettingError
from attrib.core.layers import torchscript_part
from attrib.core.settings import Configurable, Setting

__all__ = [
    "FAMILIES",
    "FAMILY_TITLES",
    "HOOKS_A_LAYER",
    "RULES_IN_PYTHON",
    "Family",
    "InputKind",
    "MethodInfo",
    "check_model",
    "entries",
    "find",
    "get",
    "key",
    "register",
    "resolve_names",
    "snake",
]

Family = Literal["gradient", "cam", "propagation", "perturbation", "text"]
FAMILIES: tuple[Family, ...] = ("gradient", "cam", "propagation", "perturbation", "text")
FAMILY_TITLES: dict[Family, str] = {
    "gradient": "Gradient and path methods",
    "cam": "Class activation maps",
    "propagation": "Modified backpropagation",
    "perturbation": "Removal and Shapley methods",
    "text": "Text methods",
}

InputKind = Literal["tensor", "image", "tokens", "text"]
"""What a method explains: ``"tensor"`` any tensor (or dict of tensors); ``"image"`` image
batches ``(N, C, H, W)`` (layer maps, blurs); ``"tokens"`` token embeddings ``(N, L, d)``;
``"text"`` raw strings through a black-box classifier."""

HOOKS_A_LAYER = "it captures a layer's activations with a hook"
"""``MethodInfo.python_module`` of the CAM family."""
RULES_IN_PYTHON = (
    "it gives each ReLU, sum and convolution call of the forward a new backward rule, in Python"
)
"""``MethodInfo.python_module`` of the propagation family (``torch.overrides.TorchFunctionMode``):
a compiled graph would bypass the mode and silently give the plain gradient."""

ImageRecipe = Callable[[Any], Mapping[str, Any]]
"""``recipe(context) -> settings`` for a whole image (``attrib.methods.recipes``)."""

M = TypeVar("M", bound=type)


@dataclass(frozen=True)
class MethodInfo:
    """What a method is.

    Attributes:
        cls: the class; ``name`` is its name, the method's public name.
        family: its family (``FAMILIES``), which orders listings and the report.
        paper: the paper(s), "Author et al. year".
        short: a few words (``attrib methods``); ``summary``: the idea in a sentence or
            two (the report); ``formula``: the definition in plain text.
        signed: its values add up to a change of the score (completeness, or a removal
            game): their sign says for or against the class, so maps are drawn signed.
        completeness: ``Attribution.delta`` holds a completeness (or efficiency) gap.
        inputs: what it explains (``InputKind``).
        aliases: other names it is found by (``attrib.methods.catalogue.key`` form).
        image_recipe: settings for whole images, from an ``ImageContext``: a window, a
            grid of players, references (the command line and dataset runs use it).
        token_reduction: how ``attrib.text`` turns a token's ``d`` values at the input
            embeddings into one score when no reduction is asked for (a name of
            ``attrib.text.aggregate``): ``"sum"`` (default) where values add up to a change
            of the score (gradient x input, path methods, the token removal methods that
            spread ``R_t / d`` over the dimensions); ``"l2"`` for a plain gradient, whose
            sum over dimensions means nothing (a layer norm after the embeddings even makes
            it 0; Li et al. 2016 take the norm); ``None`` for a wrapper: that of the
            method it wraps.
        python_module: why the method needs the model as a Python ``nn.Module`` (it hooks a
            layer, ``HOOKS_A_LAYER``, or gives the forward's calls new backward rules in
            Python, ``RULES_IN_PYTHON``), or ``""`` where it only calls the model. A
            TorchScript model (compiled: no hooks, no Python dispatch) is refused for such a
            method with this reason (``check_model``).
    """

    cls: type
    family: Family
    paper: str
    short: str
    summary: str
    formula: str
    signed: bool = False
    completeness: bool = False
    inputs: InputKind = "tensor"
    aliases: tuple[str, ...] = ()
    image_recipe: ImageRecipe | None = field(default=None, compare=False)
    token_reduction: str | None = "sum"
    python_module: str = ""

    @property
    def name(self) -> str:
        return self.cls.__name__

    @property
    def year(self) -> int:
        """The year of the first paper cited (orders a family chronologically)."""
        found = re.search(r"\b(1[89]|20)\d\d\b", self.paper)
        return int(found.group()) if found else 9999

    @property
    def wrapper(self) -> bool:
        """Wraps another method (the SmoothGrad family) instead of taking a model."""
        return bool(getattr(self.cls, "wraps_method", False))

    @property
    def settings(self) -> tuple[Setting, ...]:
        if isinstance(self.cls, type) and issubclass(self.cls, Configurable):
            return self.cls.setting_specs()
        return ()

    @property
    def setting_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def takes(self, name: str) -> bool:
        return self.setting(name) is not None


_REGISTRY: dict[str, MethodInfo] = {}


def register(
    *,
    family: Family,
    paper: str,
    short: str,
    summary: str,
    formula: str,
    signed: bool = False,
    completeness: bool = False,
    inputs: InputKind = "tensor",
    aliases: Iterable[str] = (),
    image_recipe: ImageRecipe | None = None,
    token_reduction: str | None = "sum",
    python_module: str = "",
) -> Callable[[M], M]:
    """Class decorator: put the method in the catalogue (see ``MethodInfo``)."""
    if family not in FAMILIES:
        raise SettingError("family", f"one of {FAMILIES}", family)

    def decorate(cls: M) -> M:
        info = MethodInfo(
            cls=cls,
            family=family,
            paper=paper,
            short=short,
            summary=summary,
            formula=formula,
            signed=signed,
            completeness=completeness,
            inputs=inputs,
            aliases=tuple(key(a) for a in aliases),
            image_recipe=image_recipe,
            token_reduction=token_reduction,
            python_module=python_module,
        )
        known = _REGISTRY.get(info.name)
        if known is not None and known.cls is not cls:
            raise SettingError("name", "a method name used once", info.name)
        _REGISTRY[info.name] = info
        return cls

    return decorate


def check_model(method: type, model: Any) -> None:
    """Refuse a TorchScript ``model`` (``attrib.core.layers.torchscript_part``) for a method
    that needs a Python ``nn.Module`` (``MethodInfo.python_module`` of ``method`` or of the
    registered class it derives from), with a ``LayerError`` that says why and what to do."""
    info = next((get(c) for c in getattr(method, "__mro__", ()) if get(c) is not None), None)
    if info is None or not info.python_module:
        return
    part = torchscript_part(model)
    if part is None:
        return
    others = [
        i.name for i in entries(inputs=("tensor", "image")) if not (i.python_module or i.wrapper)
    ]
    raise LayerError(
        "model",
        f"a Python nn.Module ({info.name}: {info.python_module})",
        part,
        "TorchScript runs outside Python, so it allows neither hooks nor new backward rules: "
        "explain the Python model (its class with the saved state dict), or use a method "
        f"that only calls the model ({', '.join(others[:4])}, ...).",
    )


def key(name: str) -> str:
    """The form names are compared in: lower case, no ``_``, ``-`` or spaces
    (``"Integrated_Gradients"`` and ``"integrated-gradients"`` are the same method)."""
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def snake(name: str) -> str:
    """A class name in snake case, as users type it: ``"GradientXInput"`` ->
    ``"gradient_x_input"``, ``"LRP"`` -> ``"lrp"``, ``"BlurIG"`` -> ``"blur_ig"``."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)
    return "_".join(w.lower() for w in words) or name.lower()


def entries(
    family: Family | None = None, inputs: Iterable[InputKind] | None = None
) -> list[MethodInfo]:
    """Every method, by family (``FAMILIES`` order) and within a family by the year of its
    paper (then in the order registered); optionally of one family or some input kinds."""
    kinds = None if inputs is None else set(inputs)
    chosen = [
        info
        for info in _REGISTRY.values()
        if (family is None or info.family == family) and (kinds is None or info.inputs in kinds)
    ]
    return sorted(chosen, key=lambda info: (FAMILIES.index(info.family), info.year))


def get(name: str | type) -> MethodInfo | None:
    """The entry of a method name (``Attribution.method``), alias or class, or ``None``."""
    if isinstance(name, type):
        info = _REGISTRY.get(name.__name__)
        return info if info is not None and info.cls is name else None
    if name in _REGISTRY:
        return _REGISTRY[name]
    matches = _matches(str(name), list(_REGISTRY.values()))
    return matches[0] if matches else None


def find(
    name: str | type, inputs: Iterable[InputKind] | None = None, *, argument: str = "method"
) -> MethodInfo:
    """The entry of ``name`` (any case, ``_``/``-`` ignored, or an alias), among methods of
    ``inputs`` kinds (the first kind that has one wins), or a ``SettingError`` about
    ``argument`` listing the close names."""
    kinds = list(inputs) if inputs is not None else [None]
    for kind in kinds:
        pool = entries(inputs=None if kind is None else [kind])
        if isinstance(name, type):
            found = [info for info in pool if info.cls is name]
        else:
            found = _matches(str(name), pool)
        if found:
            return found[0]
    pool = entries(inputs=None if inputs is None else list(inputs))
    names = sorted({info.name for info in pool})
    close = difflib.get_close_matches(key(str(name)), [key(n) for n in names], n=3, cutoff=0.5)
    by_key = {key(n): n for n in names}
    shown = [f"{by_key[c]} ({snake(by_key[c])})" for c in close]
    hint = ("Did you mean " + ", ".join(shown) + "?") if close else ""
    raise SettingError(
        argument, "a method of `attrib methods`", name, hint or f"Known: {', '.join(names)}."
    )


def _matches(name: str, pool: list[MethodInfo]) -> list[MethodInfo]:
    wanted = key(name)
    exact = [info for info in pool if key(info.name) == wanted]
    return exact or [info for info in pool if wanted in info.aliases]


def resolve_names(
    spec: str | Iterable[str],
    inputs: Iterable[InputKind] | None = None,
    *,
    argument: str = "method",
) -> list[str]:
    """Method names from ``"saliency,GradCAM"`` or a list (any case, aliases too), or
    ``"all"`` (every method of ``inputs`` kinds), without repeats, in the order given."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise SettingError(argument, "one or more method names", spec, "See attrib methods.")
    kinds = None if inputs is None else list(inputs)
    names: list[str] = []
    for part in parts:
        if key(part) == "all":
            found = [info.name for info in entries(inputs=kinds)]
        else:
            found = [find(part, kinds, argument=argument).name]
        names.extend(n for n in found if n not in names)
    return names

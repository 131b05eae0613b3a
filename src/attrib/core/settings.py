"""Settings said once: declared on the class, bound and checked by one constructor.

A method's settings are class attributes; the constructor, ``settings()`` (what
``Attribution.params`` records), ``repr``, ``inspect.signature`` and the catalogue's listing
all read the same declarations::

    class Occlusion(PerturbationMethod):
        window = Setting(REQUIRED, Anything("an int or a tuple of sizes"))
        strides = Setting(None, Anything("None, an int or a tuple like window"))

A subclass inherits its parents' settings, may change a default by declaring the setting
again (``relu = Setting(False, FLAG)``), and may fix one (``sampler =
Fixed(KernelSampler())``): a fixed setting is no longer accepted by the constructor nor
recorded. Unknown keywords are refused with the list
of the class's settings and the closest name.

Settings cannot be assigned after construction (a method is configured once and called on
many batches, so derived state never goes stale): ``replace(**changes)`` builds a copy.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from attrib.core.errors import SettingError, did_you_mean

__all__ = [
    "FLAG",
    "REQUIRED",
    "SEED",
    "Anything",
    "Check",
    "Choice",
    "Configurable",
    "Count",
    "Fixed",
    "Function",
    "Instance",
    "Number",
    "Optional",
    "Setting",
    "shown_value",
]

C = TypeVar("C", bound="Configurable")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a setting that has none: the constructor refuses to go without it."""


class Check:
    """What a setting accepts: ``what`` says it in words (errors and listings), ``accepts``
    tests a value and ``convert`` normalises an accepted one."""

    @property
    def what(self) -> str:
        return "any value"

    @property
    def hint(self) -> str:
        return ""

    def accepts(self, value: Any) -> bool:
        return True

    def convert(self, value: Any) -> Any:
        return value

    def __call__(self, name: str, value: Any) -> Any:
        if not self.accepts(value):
            raise SettingError(name, self.what, value, self.hint)
        return self.convert(value)


@dataclass(frozen=True)
class Anything(Check):
    """Any value; the method checks it where it is used (a baseline against the input)."""

    description: str = "any value"

    @property
    def what(self) -> str:
        return self.description


@dataclass(frozen=True)
class Count(Check):
    """An int (never a bool) of at least ``minimum``; ``purpose`` says what it counts."""

    minimum: int | None = 1
    purpose: str = ""

    @property
    def what(self) -> str:
        bound = "an int" if self.minimum is None else f"an int >= {self.minimum}"
        return f"{bound} ({self.purpose})" if self.purpose else bound

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return self.minimum is None or value >= self.minimum


@dataclass(frozen=True)
class Number(Check):
    """A finite int or float (never a bool) within optional bounds; stored as a float.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    purpose: str = ""

    @property
    def what(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            bound = f"a number in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            bound = f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            bound = f"a finite number {'<' if self.high_open else '<='} {self.high:g}"
        else:
            bound = "a finite number"
        return f"{bound} ({self.purpose})" if self.purpose else bound

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def convert(self, value: Any) -> Any:
        return float(value)


@dataclass(frozen=True)
class Choice(Check):
    """One of a few values (names, usually)."""

    options: tuple[Any, ...] = ()
    advice: str = ""

    @property
    def what(self) -> str:
        return f"one of {self.options}"

    @property
    def hint(self) -> str:
        return self.advice

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:  # an unhashable or uncomparable value is not one of them
            return False


@dataclass(frozen=True)
class Function(Check):
    """A callable; ``what`` says which one."""

    description: str = "a callable"

    @property
    def what(self) -> str:
        return self.description

    def accepts(self, value: Any) -> bool:
        return callable(value)


@dataclass(frozen=True)
class Instance(Check):
    """An instance of one of ``types``."""

    types: tuple[type, ...] = ()
    description: str = "an object of the right type"

    @property
    def what(self) -> str:
        return self.description

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)


@dataclass(frozen=True)
class Optional(Check):
    """``None``, or what ``inner`` accepts."""

    inner: Check = Anything()

    @property
    def what(self) -> str:
        return f"None or {self.inner.what}"

    @property
    def hint(self) -> str:
        return self.inner.hint

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def convert(self, value: Any) -> Any:
        return None if value is None else self.inner.convert(value)


@dataclass(frozen=True)
class _Flag(Check):
    @property
    def what(self) -> str:
        return "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


FLAG: Check = _Flag()
SEED: Check = Optional(Count(None, "reproducible draws"))


def shown_value(value: Any) -> Any:
    """How a setting's value is recorded in ``Attribution.params``: tensors as ``"tensor"``
    and modules by their class name (results stay small and printable), the rest as is."""
    if type(value).__module__.startswith("torch"):
        import torch

        if isinstance(value, torch.Tensor):
            return "tensor"
        if isinstance(value, torch.nn.Module):
            return type(value).__name__
    if isinstance(value, (list, tuple)) and any(shown_value(v) is not v for v in value):
        return type(value)(shown_value(v) for v in value)
    return value


class Setting:
    """One setting of a ``Configurable`` class: its default, its check, how it is recorded.

    Args:
        default: the value when none is given; ``REQUIRED`` for none.
        check: a ``Check`` (or any ``check(name, value) -> value`` raising ``SettingError``).
        positional: may also be given by position, after the first argument (the model).
        shown: how the value is recorded by ``settings()`` (default: ``shown_value``).
        record: ``False`` for settings that change how a call runs, not what it computes
            (a progress bar): ``settings()`` leaves them out.
    """

    def __init__(
        self,
        default: Any = REQUIRED,
        check: Callable[[str, Any], Any] = Anything(),
        *,
        positional: bool = False,
        shown: Callable[[Any], Any] | None = None,
        record: bool = True,
    ) -> None:
        self.default = default
        self.check = check
        self.positional = positional
        self.shown = shown or shown_value
        self.record = record
        self.name = ""
        self.owner: type | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        cls = type(obj).__name__
        raise SettingError(
            self.name,
            f"no change after {cls}(...) is built (it is configured once)",
            value,
            f"Build another: method.replace({self.name}=...), or {cls}(..., {self.name}=...).",
        )

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def what(self) -> str:
        return str(getattr(self.check, "what", "any value"))

    def describe(self) -> str:
        """``name=default`` (or ``name`` for a required one) and what it accepts."""
        head = self.name if self.required else f"{self.name}={self.default!r}"
        return f"{head}: {self.what}"

    def bind(self, value: Any) -> Any:
        return self.check(self.name, value)

    def __repr__(self) -> str:
        return f"Setting({self.describe()})"


class Fixed(Setting):
    """A parent's setting that a subclass fixes: not accepted, not recorded; its value is
    ``value``, or what the subclass's ``configure`` assigns (a kernel made from a width)."""

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)


def _declared(cls: type) -> tuple[Setting, ...]:
    """The settings of ``cls``: its own first, then its parents' (nearest first), each in
    declaration order; a name that a nearer class declares ``Fixed`` is left out."""
    seen: set[str] = set()
    found: list[Setting] = []
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if name in seen or name.startswith("__"):
                continue
            if isinstance(value, Fixed):
                seen.add(name)
            elif isinstance(value, Setting):
                seen.add(name)
                found.append(value)
    return tuple(found)


class Configurable:
    """A class whose settings are ``Setting`` attributes, bound by its constructor.

    Subclasses call ``bind_settings(args, kwargs)`` from ``__init__`` and may define
    ``configure()`` for checks across settings and for derived state.
    """

    first_argument: ClassVar[str] = "model"
    """The name of the argument before the settings (shown by ``inspect.signature``)."""
    _settings: ClassVar[tuple[Setting, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._settings = _declared(cls)
        cls.__signature__ = _signature(cls)  # type: ignore[attr-defined]

    @classmethod
    def setting_specs(cls) -> tuple[Setting, ...]:
        """Every setting the constructor takes, in the order ``settings()`` records them."""
        return cls._settings

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(s.name for s in cls._settings)

    def bind_settings(self, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Check and store every setting from positional ``args`` and ``kwargs``."""
        cls = type(self)
        positional = [s for s in cls._settings if s.positional]
        if len(args) > len(positional):
            names = ", ".join(s.name for s in positional) or "none"
            raise SettingError(
                "arguments",
                f"at most {len(positional)} positional setting(s) after the "
                f"{cls.first_argument} ({names})",
                f"{len(args)} positional values",
                "Pass settings by keyword: name=value.",
            )
        given = dict(kwargs)
        for spec, value in zip(positional, args, strict=False):
            if spec.name in given:
                raise SettingError(spec.name, "one value", "it twice (by position and keyword)")
            given[spec.name] = value
        known = {s.name for s in cls._settings}
        for key in given:
            if key not in known:
                raise unknown_setting(cls, key)
        self.__dict__["_given"] = given
        for spec in cls._settings:
            if spec.name in given:
                value = spec.bind(given[spec.name])
            elif spec.required:
                raise SettingError(
                    spec.name,
                    spec.what,
                    None,
                    f"{cls.__name__} needs it: {cls.__name__}(..., {spec.name}=...).",
                )
            else:
                value = spec.default
            self.__dict__[spec.name] = value
        self.configure()

    def configure(self) -> None:
        """Checks across settings and derived state, after every setting is bound."""

    def assign(self, name: str, value: Any) -> None:
        """Set a setting's stored value from ``configure`` (a default resolved there)."""
        self.__dict__[name] = value

    def settings(self) -> dict[str, Any]:
        """The settings as recorded in ``Attribution.params`` (tensors as ``"tensor"``)."""
        return {s.name: s.shown(self.__dict__[s.name]) for s in type(self)._settings if s.record}

    def given_settings(self) -> dict[str, Any]:
        """The settings as they were passed to the constructor (for ``replace``)."""
        return dict(self.__dict__.get("_given", {}))

    def first(self) -> Any:
        """The value of the first argument (the model; the wrapped method for wrappers)."""
        raise NotImplementedError  # pragma: no cover - every base class defines it

    def replace(self: C, **changes: Any) -> C:
        """A copy with some settings changed: ``ig.replace(steps=64)``."""
        make: Any = type(self)  # subclasses take (first, **settings)
        copy: C = make(self.first(), **{**self.given_settings(), **changes})
        return copy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown_settings()})"

    def shown_settings(self) -> str:
        """``name=value`` for each setting not at its default (how ``repr`` shows it)."""
        settings = self.settings()
        return ", ".join(
            f"{s.name}={settings[s.name]!r}"
            for s in type(self)._settings
            if s.record and (s.required or not _same(self.__dict__[s.name], s.default))
        )


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value is default or (type(value) is type(default) and value == default))
    except (RuntimeError, TypeError, ValueError):  # tensors and other uncomparable values
        return False


def unknown_setting(cls: type[Configurable], key: str) -> SettingError:
    """The error for a keyword ``cls`` does not take: its settings and the closest name."""
    names = cls.setting_names()
    expected = f"a setting of {cls.__name__} ({', '.join(names)})"
    return SettingError(key, expected, key, did_you_mean(key, names))


def _signature(cls: type[Configurable]) -> inspect.Signature:
    kind = inspect.Parameter
    params = [kind(cls.first_argument, kind.POSITIONAL_ONLY)]
    specs = cls._settings
    ordered = [s for s in specs if s.positional] + [s for s in specs if not s.positional]
    for spec in ordered:
        params.append(
            kind(
                spec.name,
                kind.POSITIONAL_OR_KEYWORD if spec.positional else kind.KEYWORD_ONLY,
                default=kind.empty if spec.required else spec.default,
            )
        )
    try:
        return inspect.Signature(params)
    except ValueError:  # a required positional after a defaulted one: keywords only
        return inspect.Signature(
            [params[0]] + [p.replace(kind=kind.KEYWORD_ONLY) for p in params[1:]]
        )

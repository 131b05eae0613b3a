"""Baselines ``x'`` for path methods: the "absence of signal" an input is compared with.

``baseline=`` accepts

- a number: that constant everywhere (``0`` is the usual "black" of zero-centred inputs);
- ``"black"``, ``"white"``, ``"gray"``: the lowest value, the highest value and their midpoint
  of ``value_range`` (default: each sample's own min and max, so on a normalised image
  ``"black"`` is the darkest value the image has, not 0);
- ``"blur"``: the input blurred with a Gaussian of ``blur_sigma`` pixels (Sturmfels et al.
  2020, "Visualizing the Impact of Feature Attribution Baselines");
- ``"uniform"``: uniform noise over ``value_range``, drawn with ``seed``;
- a tensor of the input's shape (one baseline per sample) or of one sample's shape (shared);
- a list of any of these: several baselines, whose attributions are averaged;
- for dict inputs, a dict with one such spec per key (or one spec for all keys).

Where the input is a dict, the shapes are checked key by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from attrib.core.errors import SettingError
from attrib.core.settings import SEED, Anything, Check, Number, Optional, Setting
from attrib.methods.blur import gaussian_blur

__all__ = ["NAMED_BASELINES", "BaselineSettings", "gaussian_blur", "make_baselines"]

NAMED_BASELINES = ("black", "white", "gray", "grey", "blur", "uniform")


def _value_range(
    x: torch.Tensor, value_range: tuple[float, float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if value_range is not None:
        low, high = value_range
        return torch.full_like(x, float(low)), torch.full_like(x, float(high))
    dims = tuple(range(1, x.dim()))
    return x.amin(dim=dims, keepdim=True).expand_as(x), x.amax(dim=dims, keepdim=True).expand_as(x)


def _one_baseline(
    spec: Any,
    x: torch.Tensor,
    *,
    name: str,
    value_range: tuple[float, float] | None,
    blur_sigma: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if not x.is_floating_point():
        return _discrete_baseline(spec, x, name)
    if isinstance(spec, torch.Tensor):
        spec = spec.to(device=x.device, dtype=x.dtype)
        if tuple(spec.shape) == tuple(x.shape):
            return spec
        if tuple(spec.shape) == tuple(x.shape[1:]) or spec.dim() == 0:
            return spec.expand_as(x)
        raise SettingError(
            name,
            f"a tensor of the input's shape {tuple(x.shape)} or of one sample's shape "
            f"{tuple(x.shape[1:])}",
            spec,
            "For several baselines pass a list of tensors.",
        )
    if isinstance(spec, bool):
        raise SettingError(name, "a number, a name, a tensor or a list of those", spec, "")
    if isinstance(spec, (int, float)):
        return torch.full_like(x, float(spec))
    if isinstance(spec, str):
        key = spec.lower()
        if key in ("black", "white", "gray", "grey"):
            lo, hi = _value_range(x, value_range)
            return {"black": lo, "white": hi}.get(key, (lo + hi) / 2).clone()
        if key == "blur":
            sigma = blur_sigma if blur_sigma is not None else max(x.shape[-2:]) / 10
            return gaussian_blur(x, sigma)
        if key == "uniform":
            lo, hi = _value_range(x, value_range)
            noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu")
            return lo + (hi - lo) * noise.to(x.device)
    raise SettingError(
        name,
        f"a number, one of {NAMED_BASELINES}, a tensor, or a list of those",
        spec,
        "",
    )


def _discrete_baseline(spec: Any, x: torch.Tensor, name: str) -> torch.Tensor:
    """The baseline of integer or boolean inputs (token ids, categorical codes): a number or
    a tensor of values the input's dtype holds exactly; names of image baselines do not
    apply."""
    todo = "Give a value of the input's kind: an int (a padding id, a category) or a tensor."
    if isinstance(spec, torch.Tensor):
        spec = spec.to(device=x.device)
        if spec.is_floating_point() and not bool((spec == spec.round()).all()):
            raise SettingError(name, f"whole numbers for {x.dtype} inputs", spec, todo)
        one = _one_baseline(
            spec.double(), x.double(), name=name, value_range=None, blur_sigma=None, generator=None
        )
        return one.to(x.dtype)
    if isinstance(spec, (bool, int)) or (isinstance(spec, float) and spec.is_integer()):
        return torch.full_like(x, int(spec))
    raise SettingError(name, f"a whole number or a tensor for {x.dtype} inputs", spec, todo)


def make_baselines(
    spec: Any,
    x: torch.Tensor | dict[str, torch.Tensor],
    *,
    value_range: tuple[float, float] | None = None,
    blur_sigma: float | None = None,
    seed: int | None = None,
) -> list[torch.Tensor] | list[dict[str, torch.Tensor]]:
    """The list of baselines (one or several), each with the structure and shape of ``x``."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not specs:
        raise SettingError("baseline", "at least one baseline", spec, "")
    made: list[Any] = []
    for k, one in enumerate(specs):
        name = "baseline" if len(specs) == 1 else f"baseline[{k}]"
        if isinstance(x, dict):
            per_key = one if isinstance(one, dict) else {key: one for key in x}
            if set(per_key) != set(x):
                raise SettingError(name, f"a baseline for each input {sorted(x)}", per_key, "")
            made.append(
                {
                    key: _one_baseline(
                        per_key[key],
                        x[key],
                        name=f"{name}[{key!r}]",
                        value_range=value_range,
                        blur_sigma=blur_sigma,
                        generator=generator,
                    )
                    for key in x
                }
            )
        else:
            made.append(
                _one_baseline(
                    one,
                    x,
                    name=name,
                    value_range=value_range,
                    blur_sigma=blur_sigma,
                    generator=generator,
                )
            )
    return made


def is_sequence_of_baselines(spec: Any) -> bool:
    return isinstance(spec, Sequence) and not isinstance(spec, str)


class _ValueRange(Check):
    @property
    def what(self) -> str:
        return "None (each sample's own min and max) or (low, high) with low < high"

    def accepts(self, value: Any) -> bool:
        return value is None or (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and value[0] < value[1]
        )

    def convert(self, value: Any) -> Any:
        return None if value is None else (float(value[0]), float(value[1]))


class BaselineSettings:
    """The settings of methods that compare the input with baselines (see the module):
    ``baseline``, and the ``value_range``, ``blur_sigma`` and ``seed`` of the named ones."""

    baseline = Setting(0.0, Anything("a number, a name, a tensor, or a list of those"))
    value_range = Setting(None, _ValueRange())
    blur_sigma = Setting(None, Optional(Number(0, low_open=True, purpose="pixels")))
    seed = Setting(None, SEED)

    @property
    def draws_at_random(self) -> bool:
        """Only the ``"uniform"`` baseline is drawn at random."""
        return _names_uniform(self.baseline)

    def make_baselines(self, inputs: Any) -> list[Any]:
        """The baselines of ``inputs`` (one or several, each shaped like the inputs)."""
        return make_baselines(
            self.baseline,
            inputs,
            value_range=self.value_range,
            blur_sigma=self.blur_sigma,
            seed=self.seed,
        )


def _names_uniform(spec: Any) -> bool:
    if isinstance(spec, str):
        return spec == "uniform"
    if isinstance(spec, dict):
        return any(_names_uniform(v) for v in spec.values())
    if isinstance(spec, (list, tuple)):
        return any(_names_uniform(v) for v in spec)
    return False

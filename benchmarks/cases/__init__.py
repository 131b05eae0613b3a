"""The registry of benchmark cases: one module per method family, found automatically.

A case module calls ``register(Case(...))`` at import time; ``all_cases()`` imports every
module in this package, so adding a method family is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from benchmarks.limits import Need
from benchmarks.models import Setup

__all__ = ["Case", "Contenders", "all_cases", "register", "select_cases"]


@dataclass(frozen=True)
class Contenders:
    """Zero-argument callables that compute the same attribution on the same batch.

    Each returns the attribution values as a tensor shaped like the input (so results can be
    checked to agree). ``peer`` is ``None`` for a method no other library offers.
    """

    ours: Callable[[], torch.Tensor]
    peer: Callable[[], torch.Tensor] | None
    peer_name: str | None = None


@dataclass(frozen=True)
class Case:
    """One benchmarked method.

    Args:
        name: the row label and the name ``--only`` selects by.
        family: the module (method family) it comes from.
        needs: the passes the method cannot avoid, per image; they define its limit.
        build: makes the contenders for one configuration (called once per configuration,
            outside the timings, so one-off set-up such as constructing the explainer is not
            timed).
    """

    name: str
    family: str
    needs: tuple[Need, ...]
    build: Callable[[Setup], Contenders]


_CASES: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add ``case`` to the registry (a name may be registered once)."""
    if case.name in _CASES:
        raise ValueError(f"benchmark case {case.name!r} is registered twice")
    _CASES[case.name] = case
    return case


def all_cases() -> list[Case]:
    """Every registered case, after importing every module of this package."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return list(_CASES.values())


def select_cases(only: Sequence[str] | None) -> list[Case]:
    """The cases whose name or family is in ``only`` (all of them when ``only`` is empty)."""
    cases = all_cases()
    if not only:
        return cases
    chosen = [c for c in cases if c.name in only or c.family in only]
    unknown = set(only) - {c.name for c in cases} - {c.family for c in cases}
    if unknown:
        known = sorted({c.name for c in cases} | {c.family for c in cases})
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; known: {', '.join(known)}")
    return chosen

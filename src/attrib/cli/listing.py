"""``attrib methods [NAME]``: every method of the catalogue, one line each with its paper, or
one method in full (its idea, formula and settings, for ``--set``)."""

from __future__ import annotations

import argparse

from attrib.methods import catalogue
from attrib.text import method_names  # and the text methods register in the catalogue

__all__ = ["run"]


def run(args: argparse.Namespace | None) -> int:
    name = getattr(args, "name", None)
    if name:
        describe(catalogue.find(name, argument="NAME"))
        return 0
    for family in catalogue.FAMILIES:
        members = catalogue.entries(family)
        if not members:
            continue
        print(f"{catalogue.FAMILY_TITLES[family]}:")
        for info in members:
            print(f"  {info.name:<21}{info.paper:<44}{info.short}")
    print("text methods by name (attrib explain-text --method NAME):")
    print("  " + ", ".join(method_names()))
    print("attrib methods NAME: one method's formula and settings")
    return 0


def describe(info: catalogue.MethodInfo) -> None:
    """One method in full: what ``--set key=value`` can change, with the defaults."""
    print(f"{info.name} ({info.paper}): {info.short}")
    print(f"  {info.summary}")
    print(f"  formula: {info.formula}")
    kind = "wraps another method (--set inner=NAME)" if info.wrapper else info.inputs
    signed = "signed" if info.signed else "magnitude"
    gap = ", completeness gap in delta" if info.completeness else ""
    print(f"  explains: {kind}; maps drawn as {signed}{gap}")
    print("  settings:")
    for spec in info.settings:
        print(f"    {spec.describe()}")

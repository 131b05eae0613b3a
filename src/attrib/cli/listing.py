"""``attrib methods``: every method of the catalogue, one line each, with its paper."""

from __future__ import annotations

import argparse

from attrib.methods import catalogue

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    for family in catalogue.FAMILIES:
        members = catalogue.entries(family)
        if not members:
            continue
        print(f"{catalogue.FAMILY_TITLES[family]}:")
        for info in members:
            print(f"  {info.name:<21}{info.paper:<44}{info.short}")
    from attrib.text import method_names

    print("text methods by name (attrib explain-text --method NAME):")
    print("  " + ", ".join(method_names()))
    return 0

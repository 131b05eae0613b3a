"""``attrib methods``: every method, one line, with its paper."""

from __future__ import annotations

import argparse

from attrib.cli import recipes
from attrib.report.notes import note_for

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    have = recipes.available()
    for family, names in recipes.FAMILIES.items():
        print(f"{family} methods:")
        for name in names:
            cls = have.get(name)
            note = note_for(name, cls)
            status = "" if cls is not None else "  (not in this version)"
            print(f"  {name:<21}{note.paper:<44}{note.short}{status}")
    try:
        from attrib.text import method_names

        print("text methods (attrib explain-text --method NAME):")
        print("  " + ", ".join(method_names()))
    except ImportError:
        pass
    return 0

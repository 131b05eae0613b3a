"""What each method is, in a few words: its paper, the idea, the formula.

The report prints these next to the maps; they come from the method's registration in the
catalogue (``attrib.methods.catalogue``). A method of your own that is not registered is
described by the first line of its docstring, marked as outside the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

from attrib.methods import catalogue

__all__ = ["NOTES", "MethodNote", "families", "note_for"]


@dataclass(frozen=True)
class MethodNote:
    """``short``: a few words (``attrib methods``); ``paper``; ``summary``: the idea in a
    sentence or two; ``formula``: the definition, in plain text."""

    short: str
    paper: str
    summary: str
    formula: str


def _note(info: catalogue.MethodInfo) -> MethodNote:
    return MethodNote(info.short, info.paper, info.summary, info.formula)


NOTES: dict[str, MethodNote] = {info.name: _note(info) for info in catalogue.entries()}
"""The notes of the catalogue's methods, by name."""


def note_for(name: str, cls: type | None = None) -> MethodNote:
    """The note on method ``name`` (``Attribution.method``; a wrapper's ``SmoothGrad(...)``
    is the wrapper's); a method outside the catalogue gets its docstring's first line."""
    info = catalogue.get(name.split("(", 1)[0]) or (catalogue.get(cls) if cls else None)
    if info is not None:
        return _note(info)
    first = ((cls.__doc__ if cls is not None else "") or "").strip().splitlines()
    line = first[0] if first else name
    return MethodNote(line, "(not in attrib's catalogue)", line, "")


def families(methods: list[str]) -> list[tuple[str, list[str]]]:
    """``methods`` grouped by the catalogue's families (titled, in display order); methods
    outside the catalogue come last, as "Other methods"."""
    out = []
    for family in catalogue.FAMILIES:
        members = [m for m in methods if _family(m) == family]
        if members:
            out.append((catalogue.FAMILY_TITLES[family], members))
    rest = [m for m in methods if _family(m) is None]
    return out + ([("Other methods", rest)] if rest else [])


def _family(method: str) -> str | None:
    info = catalogue.get(method.split("(", 1)[0])
    return info.family if info is not None else None

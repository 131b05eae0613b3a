"""What a report holds, before it becomes HTML: pictures as PNG bytes, tables as text."""

from __future__ import annotations

from dataclasses import dataclass, field

from attrib.report.notes import MethodNote

__all__ = ["InputRow", "MapCell", "Picture", "Report", "Section", "Table"]


@dataclass
class Picture:
    """A figure: PNG bytes, a title and a caption."""

    title: str
    png: bytes
    caption: str = ""


@dataclass
class InputRow:
    """One input image and the model's top predictions for it."""

    name: str
    png: bytes
    predictions: list[tuple[str, float]] = field(default_factory=list)
    caption: str = ""


@dataclass
class MapCell:
    """One method's map of one image (``png`` is ``None`` where the method failed)."""

    png: bytes | None
    title: str
    note: str = ""


@dataclass
class Table:
    """A table of text cells; ``caption`` says how to read it."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """A ready HTML fragment (e.g. token highlighting from ``attrib.text``) with a title."""

    title: str
    html: str
    pictures: list[Picture] = field(default_factory=list)


@dataclass
class Report:
    """Everything ``render`` puts on the page, in order."""

    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[InputRow] = field(default_factory=list)
    families: list[tuple[str, list[str]]] = field(default_factory=list)
    maps: dict[tuple[str, str], MapCell] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[Picture] = field(default_factory=list)
    sanity: list[Picture] = field(default_factory=list)
    text: list[Section] = field(default_factory=list)
    methods: dict[str, MethodNote] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verdict: Table | None = None  # the last section: which methods to trust, and why
    verdict_summary: str = ""

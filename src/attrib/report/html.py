"""A ``Report`` as one self-contained HTML page.

Everything is inside the file: images are ``data:image/png;base64`` URIs and the style is
one inline ``<style>`` element; there is no script and no link to anything outside, so the
page opens anywhere, offline, and can be mailed or archived as one file.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path

from attrib.report.content import Picture, Report, Table
from attrib.viz.export import data_uri

__all__ = ["MAP_WIDTH", "MAX_COLUMNS", "PAGE_WIDTH", "render", "wrapped", "write_html"]

PAGE_WIDTH = 1400
"""The page's largest width in CSS pixels (``max-width`` of the body)."""
MAP_WIDTH = 168
"""A map's width in a grid, in CSS pixels; maps shrink below it on narrower windows."""
_PAGE_PADDING = 16
_CELL = MAP_WIDTH + 2 * 3  # a map cell: the map and its padding
_ROW_HEAD = 100  # the column of image names
MAX_COLUMNS = (PAGE_WIDTH - 2 * _PAGE_PADDING - _ROW_HEAD) // _CELL
"""The most maps in one row of a grid: a family with more wraps into several grids of about
equal width, so every method shows on the page without horizontal scrolling."""

_STYLE = f"""
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:{PAGE_WIDTH}px;padding:0 {_PAGE_PADDING}px;color:#222;line-height:1.45}}
h1{{font-size:1.6em;margin-bottom:4px}}h2{{border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:36px}}h3{{margin-bottom:6px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{padding:4px 8px;vertical-align:top}}
table.data td,table.data th{{border:1px solid #ddd;text-align:left}}
table.data td.num{{text-align:right;white-space:nowrap}}
table.maps{{table-layout:fixed}}
table.maps td{{text-align:center;font-size:11px;padding:3px}}
table.maps th{{font-size:12px;overflow-wrap:anywhere}}
table.maps th.image{{width:{_ROW_HEAD - 12}px;text-align:left}}
table.maps img{{width:100%;max-width:{MAP_WIDTH}px;height:auto;display:block;margin:auto}}
.scroll{{overflow-x:auto}}.caption{{color:#555;font-size:0.9em;margin:2px 0 10px}}
.facts td:first-child{{color:#555;padding-right:16px}}
.note{{color:#8a4b00}}.fail{{color:#a00;font-size:11px;max-width:{MAP_WIDTH}px}}
code{{background:#f5f5f5;padding:1px 4px;border-radius:3px;font-size:0.92em}}
figure{{margin:12px 0}}figure img{{max-width:100%}}
.pred{{font-size:0.92em}}
.verdict{{font-size:1.05em;background:#f6f8fa;border-left:4px solid #4a7;padding:8px 12px}}
"""


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="{data_uri(png)}" alt="{html.escape(alt, quote=True)}"{size}>'


_NUMBER = re.compile(r"^[-+−]?(\d[\d.,]*|\.\d+)(e[-+]?\d+)?( ± [\d.e+-]+)?%?$|^n/a$")


def _cell(text: str) -> str:
    """A table cell: numbers right-aligned (so that digits line up), text left-aligned."""
    number = " class='num'" if _NUMBER.match(text.strip()) else ""
    return f"<td{number}>{html.escape(text)}</td>"


def _table(table: Table, heading: bool = True) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in table.rows)
    caption = f'<div class="caption">{html.escape(table.caption)}</div>' if table.caption else ""
    title = f"<h3>{html.escape(table.title)}</h3>" if heading else ""
    return (
        f"{title}{caption}"
        f'<div class="scroll"><table class="data"><tr>{head}</tr>{body}</table></div>'
    )


def _figure(picture: Picture) -> str:
    caption = (
        f"<figcaption class='caption'>{html.escape(picture.caption)}</figcaption>"
        if picture.caption
        else ""
    )
    return (
        f"<figure><h3>{html.escape(picture.title)}</h3>"
        f"{_img(picture.png, picture.title)}{caption}</figure>"
    )


def _inputs(report: Report) -> str:
    rows = []
    for row in report.inputs:
        predictions = "<br>".join(
            f"{html.escape(label)} &nbsp;<b>{p:.3f}</b>" for label, p in row.predictions
        )
        caption = f'<div class="caption">{html.escape(row.caption)}</div>' if row.caption else ""
        rows.append(
            f"<tr><td>{_img(row.png, row.name, 168)}</td><td><b>{html.escape(row.name)}</b>"
            f'{caption}<div class="pred">{predictions}</div></td></tr>'
        )
    return "<h2 id='inputs'>Inputs and predictions</h2><table>" + "".join(rows) + "</table>"


def _maps(report: Report) -> str:
    parts = [
        "<h2 id='maps'>Maps</h2><div class='caption'>Each map over its image (grey). "
        "Magnitudes: <i>inferno</i> (dark to yellow); signed maps: red for the class, blue "
        "against it, white at 0. Colours are scaled by the 99th percentile of |map| "
        "(beyond it: the strongest colour); the opacity grows with |map|.</div>"
    ]
    names = [row.name for row in report.inputs]
    for family, methods in report.families:
        parts.append(f"<h3>{html.escape(family)}</h3>")
        for chunk in wrapped(methods):
            parts.append(_grid(report, names, chunk))
    return "".join(parts)


def wrapped(methods: list[str], columns: int = MAX_COLUMNS) -> list[list[str]]:
    """``methods`` in rows of at most ``columns``, as even as possible (10 -> 5 + 5)."""
    if not methods:
        return []
    rows = math.ceil(len(methods) / max(1, columns))
    size = math.ceil(len(methods) / rows)
    return [methods[i : i + size] for i in range(0, len(methods), size)]


def _grid(report: Report, names: list[str], methods: list[str]) -> str:
    # the grid's natural width, capped by the page: maps shrink on narrower windows
    width = _ROW_HEAD + len(methods) * _CELL
    head = "<th class='image'></th>" + "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    body = []
    for name in names:
        cells = [f"<th class='image'>{html.escape(name)}</th>"]
        for method in methods:
            cell = report.maps.get((name, method))
            if cell is None:
                cells.append("<td></td>")
            elif cell.png is None:
                cells.append(f'<td><div class="fail">{html.escape(cell.note)}</div></td>')
            else:
                title = html.escape(cell.title).replace("\n", "<br>")
                cells.append(f"<td>{_img(cell.png, f'{method} {name}')}{title}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    style = f"width:min(100%, {width}px)"
    return f"<table class='maps' style='{style}'><tr>{head}</tr>{''.join(body)}</table>"


def _methods(report: Report) -> str:
    rows = []
    for name, note in report.methods.items():
        formula = f"<code>{html.escape(note.formula)}</code>" if note.formula else ""
        rows.append(
            f"<tr><td><b>{html.escape(name)}</b><br><span class='caption'>"
            f"{html.escape(note.paper)}</span></td><td>{html.escape(note.summary)}"
            f"<br>{formula}</td></tr>"
        )
    return "<h2 id='methods'>Methods</h2><table class='data'>" + "".join(rows) + "</table>"


def _verdict(report: Report) -> str:
    summary = (
        f"<p class='verdict'>{html.escape(report.verdict_summary)}</p>"
        if report.verdict_summary
        else ""
    )
    table = _table(report.verdict, heading=False) if report.verdict else ""
    return f"<h2 id='verdict'>Verdict</h2>{summary}{table}"


def render(report: Report) -> str:
    """The page's HTML."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        "<table class='facts'>"
        + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in report.facts
        )
        + "</table>",
    ]
    if report.inputs:
        parts.append(_inputs(report))
    if report.maps:
        parts.append(_maps(report))
    if report.tables or report.figures:
        parts.append("<h2 id='metrics'>Metrics</h2>")
        parts.extend(_table(t) for t in report.tables)
        parts.extend(_figure(f) for f in report.figures)
    if report.sanity:
        parts.append("<h2 id='sanity'>Sanity checks</h2>")
        parts.extend(_figure(f) for f in report.sanity)
    if report.text:
        parts.append("<h2 id='text'>Text</h2>")
        for section in report.text:
            parts.append(f"<h3>{html.escape(section.title)}</h3>{section.html}")
            parts.extend(_figure(f) for f in section.pictures)
    if report.methods:
        parts.append(_methods(report))
    if report.notes:
        parts.append("<h2 id='notes'>Notes</h2><ul>")
        parts.extend(f"<li class='note'>{html.escape(n)}</li>" for n in report.notes)
        parts.append("</ul>")
    if report.verdict is not None or report.verdict_summary:
        parts.append(_verdict(report))  # last: what to take away from the page
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: Report, path: str | os.PathLike) -> Path:
    """Write the page to ``path`` (UTF-8); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(report), encoding="utf-8")
    return target

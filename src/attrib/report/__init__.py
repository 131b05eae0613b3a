"""attrib.report: one self-contained HTML page of explanations.

    from attrib.report import add_metrics, add_sanity, add_verdict, explain_all, image_report
    methods = {"GradCAM": GradCAM(model, layer="layer4")}
    explained = explain_all(methods, x)
    report = image_report("My model", names, pixels, model(x), explained, class_names=names)
    scores = add_metrics(report, model, x, explained, explained.target)
    checked = add_sanity(report, methods, x, explained.target, model=model)
    add_verdict(report, scores, checked)
    write_html(report, "out/report.html")

The page holds the inputs and their predictions, every method's map side by side, the
metrics table and curves (with a random map as the baseline), the sanity-check figures, text
highlighting, each method's description and formula, and ends with the verdict
(``add_verdict``): which methods passed the sanity check and beat the random map. Images
are embedded as base64 PNG: no script, no network.
``attrib report`` and ``attrib demo`` write it from the command line.

``erasure_table`` and ``write_erasure`` write the attention erasure tests of
``attrib.text.erasure`` (a text table; JSON and PNG files), for ``attrib erasure``.
"""

from attrib.report.build import (
    Explained,
    add_metrics,
    add_sanity,
    add_verdict,
    explain_all,
    image_report,
)
from attrib.report.content import InputRow, MapCell, Picture, Report, Section, Table
from attrib.report.erasure import erasure_table, write_erasure
from attrib.report.html import render, write_html
from attrib.report.notes import NOTES, MethodNote, note_for

__all__ = [
    "NOTES",
    "Explained",
    "InputRow",
    "MapCell",
    "MethodNote",
    "Picture",
    "Report",
    "Section",
    "Table",
    "add_metrics",
    "add_sanity",
    "add_verdict",
    "erasure_table",
    "explain_all",
    "image_report",
    "note_for",
    "render",
    "write_erasure",
    "write_html",
]

"""The attention erasure tests (``attrib.text.erasure``) written down: a short text table of
the numbers, and a folder with the summary as JSON and the two figures as PNG.

    report = erasure_tests(classifier, texts)
    print(erasure_table(report))
    write_erasure(report, "out/erasure", command="attrib erasure --sentences 250")
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the annotations only
    from attrib.text.erasure import ErasureReport

__all__ = ["erasure_table", "write_erasure"]


def erasure_table(report: ErasureReport) -> str:
    """The numbers as a short text report: the 2 x 2 table of decision flips of the single
    weight test, then per ranking how often and after how much removal the decision flips."""
    s = report.summary()
    t = report.single.table()
    one = s["single_weight"]
    lines = [
        f"Attention erasure (Serrano and Smith 2019), layer {report.layer} ({report.layer_name}), "
        f"{len(report.texts)} texts ({report.skipped} skipped)",
        "",
        "1. Single weight: decision flips, % of texts",
        "                       remove random: flip   no flip",
        f"  remove top: flip       {t[0, 0]:10.1f}   {t[0, 1]:7.1f}",
        f"  remove top: no flip    {t[1, 0]:10.1f}   {t[1, 1]:7.1f}",
        f"  Delta JS > 0 in {100 * one['share_delta_js_positive']:.1f}% of texts; median "
        f"Delta JS {one['median_delta_js']:.2e}, "
        f"median Delta alpha {one['median_delta_alpha']:.3f}",
        "",
        "2. Sets: fraction of inputs removed before the decision flips",
    ]
    for name in report.sets.removed:
        r = s["sets"][name]
        med = "-" if r["median_fraction_removed"] is None else f"{r['median_fraction_removed']:.3f}"
        mean = "-" if r["mean_fraction_removed"] is None else f"{r['mean_fraction_removed']:.3f}"
        lines.append(
            f"  {name:<22} flipped in {100 * r['share_flipped']:5.1f}% of texts; "
            f"when flipped: median fraction {med}, mean {mean}; "
            f"all texts (no flip = 1): mean {r['mean_fraction_never_flipped_as_1']:.3f}"
        )
    return "\n".join(lines)


def write_erasure(
    report: ErasureReport, out: str | os.PathLike, *, command: str | None = None
) -> list[Path]:
    """Write ``erasure.json`` (``report.summary()``, with the ``command`` that made it where
    given) and, where matplotlib is installed, ``single_weight.png`` and ``set_fractions.png``
    into the folder ``out``; returns the paths written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary = report.summary()
    if command is not None:
        summary["command"] = command
    written = [folder / "erasure.json"]
    written[0].write_text(json.dumps(summary, indent=2) + "\n")
    if importlib.util.find_spec("matplotlib") is None:  # drawing is an optional extra
        return written
    from attrib.viz import save_png, set_fractions_figure, single_weight_figure

    for name, fig in (
        ("single_weight.png", single_weight_figure(report.single)),
        ("set_fractions.png", set_fractions_figure(report.sets)),
    ):
        written.append(save_png(fig, folder / name, dpi=fig.dpi))
    return written

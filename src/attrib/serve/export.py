"""``attrib explore RUN --out site/``: the explorer of one run as static files, for sharing a
small run: ``site/index.html`` opens from ``file://`` with no server.

The site is the explorer's own page (the same HTML, CSS and JavaScript) with ``data.js``
holding what the API would answer: every sample's row and details, the verdict, and the
paths of pictures drawn once here (``files/``: a thumbnail, the input, and each method's map
signed and absolute, with the default colour map). The page filters, sorts and pages those
rows itself; live explanations need a server and are left out. A run of more samples than
``max_samples`` is refused (its pictures would be a folder of thousands of files): serve it.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from attrib.core.errors import SettingError
from attrib.serve.pictures import THUMBNAIL, input_png, map_png
from attrib.serve.served import open_served, served_names

__all__ = ["export_site"]

PAGE_FILES = ("index.html", "app.js", "charts.js", "style.css", "favicon.png")


def export_site(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, max_samples: int = 500
) -> Path:
    """Write the site of the run in ``run_dir`` to ``out``; returns ``out/index.html``."""
    name = served_names([str(run_dir)])[0]
    served = open_served(run_dir, name)
    n = len(served.ids)
    if n > max_samples:
        raise SettingError(
            "RUN",
            f"a run of at most {max_samples} samples for a static site",
            f"a run of {n:,}",
            "Serve it instead (attrib serve RUN), or raise --max-samples.",
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    page = resources.files("attrib.serve").joinpath("static")
    for file in PAGE_FILES:
        (folder / file).write_bytes(page.joinpath(file).read_bytes())
    pictures = folder / "files"
    shutil.rmtree(pictures, ignore_errors=True)
    pictures.mkdir()
    rows, details, files = [], {}, {}
    for i, sample_id in enumerate(served.ids):
        row = served.row(i)
        row["scores"] = {key: _finite(column[i]) for key, column in served.scores.items()}
        rows.append(row)
        details[sample_id] = served.sample(sample_id)
        if served.kind == "images":
            files[sample_id] = _pictures(served, sample_id, i, pictures)
    data = {
        "info": {"runs": [served.describe()], "model": None, "max_upload_bytes": 0},
        "rows": {name: rows},
        "details": {name: details},
        "summaries": {name: served.summary()},
        "files": {name: files},
    }
    text = json.dumps(data, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    (folder / "data.js").write_text(
        "// The explorer's data for this static site (attrib explore).\n"
        f"window.ATTRIB_DATA = {text};\n",
        encoding="utf-8",
    )
    return folder / "index.html"


def _pictures(served: Any, sample_id: str, i: int, root: Path) -> dict[str, Any]:
    folder = root / str(i)
    folder.mkdir()
    pixels = served.pixels(sample_id)
    out: dict[str, Any] = {"maps": {}}
    shape = None
    if pixels is not None:
        (folder / "thumb.png").write_bytes(input_png(pixels, THUMBNAIL))
        (folder / "input.png").write_bytes(input_png(pixels))
        out["thumb"], out["input"] = f"files/{i}/thumb.png", f"files/{i}/input.png"
        shape = pixels.shape[:2]
    if served.statuses[i] != "ok":
        return out
    for k, method in enumerate(served.methods):
        saliency = served.map(sample_id, method)
        if pixels is None and k == 0:
            (folder / "thumb.png").write_bytes(map_png(saliency, signed=False, size=THUMBNAIL))
            out["thumb"] = out["input"] = f"files/{i}/thumb.png"
        entry = {}
        for mode in ("signed", "absolute"):
            path = folder / f"{k}-{mode}.png"
            path.write_bytes(map_png(saliency, signed=mode == "signed", shape=shape))
            entry[mode] = f"files/{i}/{path.name}"
        out["maps"][method] = entry
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None

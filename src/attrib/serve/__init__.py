"""attrib.serve: the explorer, a web page over dataset runs and live explanations.

    attrib serve runs/r50 [runs/other ...] [--model resnet50 --weights r50.pth] [--port 8765]

An ASGI app (``attrib.serve.app``, Starlette) served by uvicorn on 127.0.0.1: the runs'
tables are read once through ``attrib.runs`` (``attrib.serve.served``), maps and inputs are
drawn as PNGs on the server (``attrib.serve.pictures``), a loaded model explains uploads
and a run's samples for another class or method (``attrib.serve.live``). The page is
static HTML, CSS and JavaScript in ``attrib/serve/static`` (no CDN, no build step).
``attrib explore RUN --out site/`` writes the same page with its data as files that open
from ``file://`` with no server (``attrib.serve.export``).
"""

from __future__ import annotations

from attrib.serve.app import create_app
from attrib.serve.served import open_served, served_names

__all__ = ["create_app", "open_served", "served_names"]

"""Reports ``serve-*``: the explorer (``attrib serve``) on a run of ``SAMPLES`` (10,000)
samples, against a real uvicorn server on this machine.

The run is synthetic (``tests.serve.synthetic.write_image_run``: 32 x 32 ground-truth
images, two methods with maps, two metrics), written through the run store's own writer.

=================  ==========================================================================
report             what it measures
=================  ==========================================================================
``serve-page``     a page of 100 samples (``/api/runs/R/samples``, random filters, sorts and
                   offsets): p50/p95 ms of the JSON; and of the page with its 100 thumbnails
                   fetched over 6 connections (as a browser does), first cold (drawn), then
                   warm (cached). Target: p95 of the page < 100 ms.
``serve-paint``    the overview in Chromium (``/usr/bin/chromium``): first contentful paint,
                   and the time until the 100 thumbnails are drawn. Target: first paint < 1 s.
``serve-live``     a live Grad-CAM (``layer4``) request on torchvision's resnet18 (random
                   weights, seeded) for an uploaded 224 x 224 image: the job, its answer and
                   the map PNG, end to end over HTTP, against ``GradCAM(model)(x, target)``
                   called directly on the same input (medians, interleaved). Target <= 1.3x.
                   The upload before it (decode, prepare, the top classes: one forward) is
                   timed apart: an image is uploaded once and explained many ways.
``serve-load``     ``CLIENTS`` (20) clients for ``SECONDS`` (30) s, each paging (random
                   filters and sorts) and opening samples (the sample's JSON, its input and
                   its two maps): requests, errors, p50/p95 ms per request.
=================  ==========================================================================

``--only serve`` runs them all. ``BENCH_SERVE_SAMPLES=200 BENCH_SERVE_SECONDS=3`` makes a
smoke run.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.report import text_table

SAMPLES = int(os.environ.get("BENCH_SERVE_SAMPLES", "10000"))
SECONDS = float(os.environ.get("BENCH_SERVE_SECONDS", "30"))
CLIENTS = 20
PAGE = 100
ROUNDS = 40  # timed pages (serve-page) and live requests (serve-live: ROUNDS // 4)
CHROMIUM = os.environ.get("ATTRIB_CHROMIUM", "/usr/bin/chromium")

_state: dict[str, Any] = {}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _workspace() -> Path:
    if "root" not in _state:
        root = Path(tempfile.mkdtemp(prefix="attrib-bench-serve-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _state["root"] = root
    return _state["root"]


def _run(progress: Any) -> Path:
    """The synthetic run, written once per benchmark run."""
    if "run" not in _state:
        from tests.serve.synthetic import write_image_run

        progress(f"serve: writing a synthetic run of {SAMPLES:,} samples")
        _state["run"] = write_image_run(_workspace() / "data", n=SAMPLES, shard_size=256)
    return _state["run"]


class Server:
    """uvicorn in a thread on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the explorer did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ServerProcess:
    """``attrib serve RUN --port P`` in a process of its own, as a user runs it (the load's
    client threads then do not share the server's interpreter lock)."""

    def __init__(self, run: Path) -> None:
        import subprocess
        import sys

        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        command = [sys.executable, "-m", "attrib.cli", "serve", str(run), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "serving on ..." once it listens
        if not line.startswith("serving on"):
            self.close()
            raise RuntimeError(f"attrib serve did not start: {line!r}")
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _process(progress: Any) -> ServerProcess:
    run = _run(progress)
    if "open_s" not in _state:
        from attrib.serve.served import open_served

        started = time.perf_counter()
        open_served(run, "bench")
        _state["open_s"] = time.perf_counter() - started
    return ServerProcess(run)


def _server(progress: Any, live: Any = None) -> Server:
    from attrib.serve.app import create_app
    from attrib.serve.served import open_served

    run = _run(progress)
    started = time.perf_counter()
    served = open_served(run, "bench")
    _state["open_s"] = time.perf_counter() - started
    return Server(create_app([served], live))


def _page_params(rng: random.Random, total: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": PAGE, "offset": rng.randrange(0, max(1, total - PAGE))}
    if rng.random() < 0.5:
        params["sort"] = rng.choice(["GradCAM:deletion", "IntegratedGradients:insertion"])
        params["order"] = rng.choice(["asc", "desc"])
    if rng.random() < 0.3:
        params["class"] = rng.randrange(4)
        params["offset"] = 0
    if rng.random() < 0.3:
        params["correct"] = rng.choice(["true", "false"])
        params["offset"] = 0
    return params


def serve_page(ctx: ReportContext) -> ReportResult:
    import httpx

    server = _process(ctx.progress)
    rng = random.Random(0)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/api/runs/run/samples")  # warm-up
            page_ms, cold_ms, warm_ms = [], [], []
            pool = ThreadPoolExecutor(6)
            clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(6)]
            for k in range(ROUNDS):
                params = _page_params(rng, SAMPLES)
                start = time.perf_counter()
                rows = client.get("/api/runs/run/samples", params=params).json()["rows"]
                page_ms.append((time.perf_counter() - start) * 1000)
                for out in (cold_ms, warm_ms):
                    start = time.perf_counter()
                    list(
                        pool.map(
                            lambda pair: (
                                clients[pair[0] % 6]
                                .get("/api/runs/run/thumb.png", params={"id": pair[1]["id"]})
                                .raise_for_status()
                            ),
                            enumerate(rows),
                        )
                    )
                    out.append((time.perf_counter() - start) * 1000 + page_ms[-1])
                ctx.progress(f"serve-page: {k + 1}/{ROUNDS}")
            pool.shutdown()
            for c in clients:
                c.close()
    finally:
        server.close()
    data = {
        "samples": SAMPLES,
        "open_s": _state["open_s"],
        "page_ms": page_ms,
        "page_with_thumbnails_cold_ms": cold_ms,
        "page_with_thumbnails_warm_ms": warm_ms,
    }
    header = ["what", "p50 ms", "p95 ms", "target"]
    rows_out = [
        ["page of 100 (JSON)", *_p(page_ms), "p95 < 100"],
        ["+ 100 thumbnails, drawn", *_p(cold_ms), ""],
        ["+ 100 thumbnails, cached", *_p(warm_ms), ""],
    ]
    title = (
        f"== serve-page: {SAMPLES:,} samples; the run's tables opened in "
        f"{_state['open_s']:.2f} s; {ROUNDS} random pages =="
    )
    return ReportResult("serve-page", [title, *text_table(header, rows_out)], data)


def _p(values: list[float]) -> list[str]:
    return [f"{_percentile(values, 50):.1f}", f"{_percentile(values, 95):.1f}"]


def serve_paint(ctx: ReportContext) -> ReportResult:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        return ReportResult("serve-paint", [f"== serve-paint: skipped ({error}) =="])
    if not Path(CHROMIUM).exists():
        return ReportResult("serve-paint", [f"== serve-paint: skipped (no {CHROMIUM}) =="])
    server = _process(ctx.progress)
    paints, grids = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for k in range(5):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                start = time.perf_counter()
                page.goto(f"{server.url}/#/runs/run?offset={min(k * PAGE, max(0, SAMPLES - PAGE))}")
                page.wait_for_selector("#grid .card")
                while not page.evaluate(  # the thumbnails in view (the others load lazily)
                    "() => [...document.querySelectorAll('#grid img')]"
                    ".filter(i => i.getBoundingClientRect().top < innerHeight)"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                ):
                    time.sleep(0.01)
                grids.append((time.perf_counter() - start) * 1000)
                paint = page.evaluate(
                    "() => (performance.getEntriesByName('first-contentful-paint')[0] || {})"
                    ".startTime || null"
                )
                paints.append(float(paint) if paint is not None else float("nan"))
                context.close()
            browser.close()
    finally:
        server.close()
    data = {"first_contentful_paint_ms": paints, "grid_drawn_ms": grids}
    title = f"== serve-paint: the overview of {SAMPLES:,} samples in Chromium, 5 loads =="
    rows = [
        ["first contentful paint", f"{statistics.median(paints):.0f}", "< 1000"],
        ["thumbnails in view drawn", f"{statistics.median(grids):.0f}", ""],
    ]
    return ReportResult(
        "serve-paint", [title, *text_table(["what", "median ms", "target"], rows)], data
    )


def serve_live(ctx: ReportContext) -> ReportResult:
    import io

    import httpx
    import torch
    import torchvision
    from PIL import Image

    from attrib.methods import GradCAM
    from attrib.runs.models import LoadedModel
    from attrib.serve.live import Live

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    live = Live(LoadedModel(model, "resnet18 (random weights)", "crop224", None, "layer4"))
    server = _server(ctx.progress, live)
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(buffer, "PNG")
    picture = buffer.getvalue()
    ends, directs = [], []
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            upload = client.post("/api/uploads", content=picture).json()
            x = live.find_upload(upload["upload"]).input[None]
            with torch.no_grad():
                target = int(model(x).argmax())
            method = GradCAM(model, layer="layer4")

            def direct() -> None:
                method(x, target=target)

            uploads: list[float] = []

            def end_to_end() -> None:
                start = time.perf_counter()
                made = client.post("/api/uploads", content=picture).json()
                uploads.append(time.perf_counter() - start)
                started[0] = time.perf_counter()
                job = client.post(
                    "/api/jobs",
                    json={"upload": made["upload"], "methods": ["GradCAM"], "target": target},
                ).json()
                while job["state"] in ("queued", "running"):
                    job = client.get(f"/api/jobs/{job['job']}", params={"wait": 2000}).json()
                assert job["state"] == "done", job
                client.get(
                    f"/api/jobs/{job['job']}/map.png", params={"method": "GradCAM"}
                ).raise_for_status()

            started = [0.0]  # when the request (after its upload) was sent
            direct()
            end_to_end()
            uploads.clear()
            for k in range(max(3, ROUNDS // 4)):
                start = time.perf_counter()
                direct()
                directs.append(time.perf_counter() - start)
                end_to_end()
                ends.append(time.perf_counter() - started[0])
                ctx.progress(f"serve-live: {k + 1}")
    finally:
        server.close()
    ratio = statistics.median(ends) / statistics.median(directs)
    data = {"end_to_end_s": ends, "method_s": directs, "upload_s": uploads, "ratio": ratio}
    title = "== serve-live: Grad-CAM (layer4) on resnet18, one 224 x 224 upload =="
    rows = [
        [
            f"{statistics.median(directs) * 1000:.1f}",
            f"{statistics.median(ends) * 1000:.1f}",
            f"{ratio:.2f}x",
            "<= 1.3x",
            f"{statistics.median(uploads) * 1000:.1f}",
        ]
    ]
    header = ["GradCAM called ms", "request end to end ms", "ratio", "target", "upload ms"]
    return ReportResult("serve-live", [title, *text_table(header, rows)], data)


def serve_load(ctx: ReportContext) -> ReportResult:
    import httpx

    server = _process(ctx.progress)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def client_loop(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while time.monotonic() < stop:
                params = _page_params(rng, SAMPLES)
                urls: list[tuple[str, dict[str, Any]]] = [("/api/runs/run/samples", params)]
                rows = _get(client, *urls[0], latencies, errors, lock)
                if not rows:
                    continue
                row = rng.choice(rows.json()["rows"] or [{"id": "00000"}])
                one = {"id": row["id"]}
                for url, p in (
                    ("/api/runs/run/sample", one),
                    ("/api/runs/run/input.png", one),
                    ("/api/runs/run/map.png", {**one, "method": "GradCAM"}),
                    ("/api/runs/run/map.png", {**one, "method": "IntegratedGradients"}),
                ):
                    _get(
                        client, url, p, latencies, errors, lock, allow_404=row.get("status") != "ok"
                    )

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client_loop, range(CLIENTS)))
    finally:
        server.close()
    ms = [v * 1000 for v in latencies]
    data = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "requests": len(ms),
        "errors": len(errors),
        "first_errors": errors[:5],
        "p50_ms": _percentile(ms, 50),
        "p95_ms": _percentile(ms, 95),
    }
    title = f"== serve-load: {CLIENTS} clients for {SECONDS:.0f} s, {SAMPLES:,} samples =="
    header = ["requests", "per s", "errors", "p50 ms", "p95 ms"]
    rows = [[str(len(ms)), f"{len(ms) / SECONDS:.0f}", str(len(errors)), *_p(ms)]]
    return ReportResult("serve-load", [title, *text_table(header, rows)], data)


def _get(
    client: Any,
    url: str,
    params: dict[str, Any],
    latencies: list[float],
    errors: list[str],
    lock: threading.Lock,
    allow_404: bool = False,
) -> Any:
    start = time.perf_counter()
    try:
        answer = client.get(url, params=params)
        ok = answer.status_code == 200 or (allow_404 and answer.status_code == 404)
    except Exception as error:  # a refused or dropped connection is an error of the load
        answer, ok = None, False
        with lock:
            errors.append(f"{url}: {error}")
    elapsed = time.perf_counter() - start
    with lock:
        latencies.append(elapsed)
        if answer is not None and not ok:
            errors.append(f"{url} {params}: {answer.status_code}")
    return answer if ok and answer is not None and answer.status_code == 200 else None


for _name, _run_report in (
    ("page", serve_page),
    ("paint", serve_paint),
    ("live", serve_live),
    ("load", serve_load),
):
    register_report(Report(f"serve-{_name}", family="serve", run=_run_report))

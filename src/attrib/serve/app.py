"""The explorer's ASGI app (Starlette): a JSON API over the served runs and a loaded model,
PNGs drawn on the server, and the page (static HTML, CSS and JavaScript shipped with the
package).

Security, all in this module:
- nothing a request names is a path: runs by their served name, samples by an id of the
  run's table, methods by the run's manifest, static files by a fixed list; anything else
  (``..%2f..%2fetc%2fpasswd``, ``/etc/passwd``) is a 404;
- every answer carries a Content-Security-Policy that allows only the server's own origin
  (no inline script or style, no other host), ``nosniff`` and ``no-referrer``;
- the Host header must name the loopback address when the server listens on it (a web page
  elsewhere cannot reach it through DNS rebinding);
- an error is JSON ``{"error": message}`` with a 4xx for bad input, and a 500 without any
  traceback for anything unexpected; the server keeps serving;
- uploads are decoded from their bytes (``attrib.serve.live``); nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attrib.core.errors import AttribError
from attrib.serve.live import MAX_UPLOAD_BYTES, Live, UploadError, signed_method
from attrib.serve.pictures import COLORMAPS, MODES, THUMBNAIL, PngCache, input_png, map_png
from attrib.serve.served import NotFoundError, ServedRun

__all__ = ["CSP", "STATIC_FILES", "create_app"]

log = logging.getLogger("attrib.serve")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "data.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""The page's files: the only files the server sends that are not drawn for a request."""
PAGE_LIMIT = 500
JOB_REQUEST_BYTES = 64 << 10  # a job request is a small JSON object
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def static_file(name: str) -> bytes:
    """A file of the page (``NotFoundError`` for any name not in ``STATIC_FILES``)."""
    if name not in STATIC_FILES:
        raise NotFoundError("no such file")
    return resources.files("attrib.serve").joinpath("static").joinpath(name).read_bytes()


class SecurityHeaders:
    """Adds the security headers (see the module) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class Explorer:
    """The state the routes read: the served runs, the loaded model, the PNG cache."""

    def __init__(self, runs: Sequence[ServedRun], live: Live | None) -> None:
        self.runs = {r.name: r for r in runs}
        self.live = live
        self.cache = PngCache()

    def run(self, request: Request) -> ServedRun:
        name = request.path_params.get("run")
        if name not in self.runs:
            raise NotFoundError("no such run")
        return self.runs[name]

    def need_live(self) -> Live:
        if self.live is None:
            raise HTTPException(
                409, "no model is loaded: start attrib serve with --model (and --weights)"
            )
        return self.live


# -- request parsing ---------------------------------------------------------------------------


def _int(request: Request, name: str, default: int | None, low: int = 0, high: int = 10**9) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}")
    return value


def _choice(request: Request, name: str, options: Sequence[str], default: str) -> str:
    raw = request.query_params.get(name) or default
    if raw not in options:  # a name of nothing served, like any other: 404
        raise NotFoundError(f"no {name} {raw[:40]!r}; one of {', '.join(options)}")
    return raw


def _signed_for(mode: str, default: bool) -> bool:
    return default if mode == "auto" else mode == "signed"


async def _cached_png(cache: PngCache, key: tuple, make: Any) -> Response:
    """A cached PNG straight from the event loop; one to draw in the thread pool (drawing
    and reading maps block)."""
    from starlette.concurrency import run_in_threadpool

    found = cache.peek(key)
    if found is None:
        found = await run_in_threadpool(cache.get, key, make)
    return _png_response(found)


def _png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=600"})


class JSON(JSONResponse):
    """JSON without NaN (``null`` instead): every browser's ``JSON.parse`` reads it."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":"), default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        item = value.item()
        return None if isinstance(item, float) and not math.isfinite(item) else item
    raise TypeError(type(value).__name__)


# -- routes ------------------------------------------------------------------------------------


def make_routes(explorer: Explorer) -> list[Route]:
    async def page(request: Request) -> Response:
        return Response(static_file("index.html"), media_type=STATIC_FILES["index.html"])

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        return Response(
            static_file(name),
            media_type=STATIC_FILES.get(name, "application/octet-stream"),
            headers={"cache-control": "no-cache"},
        )

    async def info(request: Request) -> Response:
        return JSON(
            {
                "runs": [r.describe() for r in explorer.runs.values()],
                "model": explorer.live.describe() if explorer.live is not None else None,
                "max_upload_bytes": MAX_UPLOAD_BYTES,
            }
        )

    def samples(request: Request) -> Response:
        served = explorer.run(request)
        correct = request.query_params.get("correct") or None
        if correct not in (None, "true", "false"):
            raise HTTPException(400, "correct must be true or false")
        status = request.query_params.get("status") or None
        if status not in (None, "ok", "error"):
            raise HTTPException(400, "status must be ok or error")
        sort = request.query_params.get("sort") or None
        if sort is not None and sort not in served.scores:
            raise NotFoundError("no such score column")
        result = served.page(
            cls=_int(request, "class", None, 0, 10**7),
            correct=None if correct is None else correct == "true",
            status=status,
            sort=sort,
            descending=_choice(request, "order", ("asc", "desc"), "asc") == "desc",
            offset=_int(request, "offset", 0),
            limit=_int(request, "limit", 100, 1, PAGE_LIMIT),
        )
        return JSON({"total": result.total, "offset": result.offset, "rows": result.rows})

    def sample(request: Request) -> Response:
        served = explorer.run(request)
        return JSON(served.sample(request.query_params.get("id", "")))

    async def input_picture(request: Request) -> Response:
        served = explorer.run(request)
        sample_id = request.query_params.get("id", "")
        served.position(sample_id)
        size = _int(request, "size", None, 16, 1024)

        def make() -> bytes:
            pixels = served.pixels(sample_id)
            if pixels is None:
                raise NotFoundError("the run's inputs cannot be read (its source moved?)")
            return input_png(pixels, size)

        return await _cached_png(explorer.cache, ("input", served.name, sample_id, size), make)

    async def thumbnail(request: Request) -> Response:
        served = explorer.run(request)
        sample_id = request.query_params.get("id", "")
        served.position(sample_id)

        def make() -> bytes:
            pixels = served.pixels(sample_id)
            if pixels is not None:
                return input_png(pixels, THUMBNAIL)
            # no input to draw: the first method's map stands for the sample
            method = served.methods[0]
            saliency = served.map(sample_id, method)
            return map_png(saliency, signed=False, size=THUMBNAIL)

        return await _cached_png(explorer.cache, ("thumb", served.name, sample_id), make)

    async def map_picture(request: Request) -> Response:
        served = explorer.run(request)
        sample_id = request.query_params.get("id", "")
        method = served.check_method(request.query_params.get("method", ""))
        served.position(sample_id)
        cmap = _choice(request, "cmap", COLORMAPS, "auto")
        mode = _choice(request, "mode", MODES, "auto")
        size = _int(request, "size", None, 16, 1024)
        signed = _signed_for(mode, signed_method(method))

        def make() -> bytes:
            saliency = served.map(sample_id, method)
            pixels = served.pixels(sample_id)
            shape = pixels.shape[:2] if pixels is not None else None
            return map_png(saliency, signed=signed, cmap=cmap, shape=shape, size=size)

        key = ("map", served.name, sample_id, method, cmap, signed, size)
        return await _cached_png(explorer.cache, key, make)

    def summary(request: Request) -> Response:
        return JSON(explorer.run(request).summary())

    async def upload(request: Request) -> Response:
        live = explorer.need_live()
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise UploadError(f"the upload is larger than {MAX_UPLOAD_BYTES >> 20} MiB", 413)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_UPLOAD_BYTES:
                raise UploadError(f"the upload is larger than {MAX_UPLOAD_BYTES >> 20} MiB", 413)
        from starlette.concurrency import run_in_threadpool

        made = await run_in_threadpool(live.upload, bytes(body))
        height, width = made.pixels.shape[:2]
        return JSON({"upload": made.id, "width": width, "height": height, "top": made.top})

    async def upload_picture(request: Request) -> Response:
        live = explorer.need_live()
        try:
            made = live.find_upload(request.path_params["upload"])
        except LookupError:
            raise NotFoundError("no such upload") from None
        return await _cached_png(
            explorer.cache, ("upload", made.id), lambda: input_png(made.pixels)
        )

    async def submit(request: Request) -> Response:
        live = explorer.need_live()
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > JOB_REQUEST_BYTES:
                raise HTTPException(413, "a job request is a small JSON object")
        try:
            body = json.loads(bytes(raw))
        except ValueError:
            raise HTTPException(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the body must be a JSON object")
        methods = body.get("methods")
        if not isinstance(methods, list):
            raise HTTPException(400, "methods must be a list of names")
        if "text" in body:
            job = live.submit_text(body["text"], methods, body.get("target"))
            return JSON(job.describe(live.class_name), status_code=202)
        if "upload" in body:
            try:
                made = live.find_upload(str(body["upload"]))
            except LookupError:
                raise NotFoundError("no such upload") from None
            tensor, pixels = made.input, made.pixels
        else:
            served = explorer.runs.get(str(body.get("run")))
            if served is None:
                raise NotFoundError("no such run")
            sample_id = str(body.get("id", ""))
            served.position(sample_id)
            tensor, pixels = _run_input(served, sample_id, live)
        job = live.submit(tensor, pixels, methods, body.get("target"))
        return JSON(job.describe(live.class_name), status_code=202)

    async def job_state(request: Request) -> Response:
        live = explorer.need_live()
        job = _job(live, request)
        if request.method == "DELETE":
            live.cancel(job.id)
        else:
            wait = _int(request, "wait", 0, 0, 10_000)  # ms: answer at the job's next change
            if wait:
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(job.wait_change, wait / 1000)
        return JSON(job.describe(live.class_name))

    async def job_map(request: Request) -> Response:
        live = explorer.need_live()
        job = _job(live, request)
        method = request.query_params.get("method", "")
        if method not in job.maps:
            raise NotFoundError("no map of this method in the job")
        cmap = _choice(request, "cmap", COLORMAPS, "auto")
        mode = _choice(request, "mode", MODES, "auto")
        signed = _signed_for(mode, signed_method(method))
        shape = job.pixels.shape[:2] if job.pixels is not None else None
        key = ("job", job.id, method, cmap, signed)
        return await _cached_png(
            explorer.cache,
            key,
            lambda: map_png(job.maps[method], signed=signed, cmap=cmap, shape=shape),
        )

    async def job_input(request: Request) -> Response:
        live = explorer.need_live()
        job = _job(live, request)
        if job.pixels is None:
            raise NotFoundError("no picture of this input")
        pixels = job.pixels
        return await _cached_png(explorer.cache, ("jobinput", job.id), lambda: input_png(pixels))

    return [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/runs/{run}/samples", samples),
        Route("/api/runs/{run}/sample", sample),
        Route("/api/runs/{run}/input.png", input_picture),
        Route("/api/runs/{run}/thumb.png", thumbnail),
        Route("/api/runs/{run}/map.png", map_picture),
        Route("/api/runs/{run}/summary", summary),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads/{upload}/input.png", upload_picture),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs/{job}", job_state, methods=["GET", "DELETE"]),
        Route("/api/jobs/{job}/map.png", job_map),
        Route("/api/jobs/{job}/input.png", job_input),
        Route("/{name}", static),
    ]


def _job(live: Live, request: Request) -> Any:
    try:
        return live.find_job(request.path_params["job"])
    except LookupError:
        raise NotFoundError("no such job") from None


def _run_input(served: ServedRun, sample_id: str, live: Live) -> tuple[Any, Any]:
    """A run's sample as the loaded model's input (the run's source read again)."""
    source = served.source()
    if source is None or served.kind != "images":
        raise HTTPException(409, "the run's inputs cannot be read again (its source moved?)")
    sample = source[served.position(sample_id)]
    if sample.error is not None or sample.input is None:
        raise HTTPException(409, "this sample could not be read")
    return sample.input, served.pixels(sample_id)


# -- errors ------------------------------------------------------------------------------------


async def _not_found(request: Request, error: Exception) -> Response:
    return JSON({"error": str(error) or "not found"}, status_code=404)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return JSON({"error": error.detail}, status_code=error.status_code)


async def _upload_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, UploadError)
    return JSON({"error": str(error)}, status_code=error.status)


async def _bad_setting(request: Request, error: Exception) -> Response:
    return JSON({"error": " ".join(str(error).split())}, status_code=400)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("attrib serve: %s %s failed", request.method, request.url.path)
    return JSON({"error": "internal error (the server's log says more)"}, status_code=500)


def _lifespan(live: Live | None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if live is not None:
                live.close()

    return lifespan


def create_app(
    runs: Sequence[ServedRun],
    live: Live | None = None,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The explorer over ``runs`` (``attrib.serve.served.open_served``) and ``live`` (a
    loaded model, or ``None``)."""
    explorer = Explorer(runs, live)
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is None and host in LOOPBACK:
        allowed_hosts = list(LOOPBACK)
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(
        routes=make_routes(explorer),
        middleware=middleware,
        exception_handlers={
            NotFoundError: _not_found,
            HTTPException: _http_error,
            UploadError: _upload_error,
            AttribError: _bad_setting,
            Exception: _unexpected,
        },
        lifespan=_lifespan(live),
    )
    app.state.explorer = explorer
    return app

"""Live explanations: uploaded images, and jobs that explain them (or a run's sample) with a
loaded model, one method after another, with progress and cancellation.

Uploads are decoded by Pillow from the request's bytes (never unpickled, never written to
disk): a body over ``MAX_UPLOAD_BYTES``, more than ``MAX_PIXELS`` pixels, or bytes that do not
decode whole as an image are refused with an ``UploadError`` (the app answers 413 or 400).

Jobs, and the forward pass that gives an upload's top classes, run on one worker thread:
the model is never run by two threads at once (a job's hooks would see the other's passes);
the event loop never waits on it. A job's progress is the methods done and the forward
passes of the current one; cancelling sets a flag that a forward pre-hook on the model
checks (``attrib.core.hooks``, removed when the job ends), so even a method of thousands
of passes (occlusion, Shapley) stops at its next forward.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attrib.core.errors import AttribError
from attrib.core.hooks import hooked
from attrib.methods import catalogue
from attrib.methods.recipes import ImageContext, build_for_image
from attrib.runs.images import prepare, preset

__all__ = [
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "Job",
    "Live",
    "Upload",
    "UploadError",
    "decode_image",
]

MAX_UPLOAD_BYTES = 8 << 20
"""The largest upload (8 MiB); a longer body is refused with 413 before it is decoded."""
MAX_PIXELS = 40_000_000
"""The most pixels an upload may decode to (a small file can claim a huge image)."""
KEPT = 32  # uploads and finished jobs kept in memory (the oldest are dropped)
IMAGE_INPUTS: tuple[catalogue.InputKind, ...] = ("tensor", "image")


class UploadError(ValueError):
    """An upload that is not an image this server takes; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class CancelledError(Exception):
    """Raised by the forward pre-hook of a cancelled job."""


def decode_image(data: bytes) -> np.ndarray:
    """The RGB pixels ``(H, W, 3)`` uint8 of an uploaded image (see the module)."""
    from attrib.viz._deps import pil_image  # pictures are read through viz (tests/test_layers)

    image = pil_image()
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the upload is larger than {MAX_UPLOAD_BYTES >> 20} MiB", 413)
    if not data:
        raise UploadError("the upload is empty: send the bytes of an image file")
    try:
        with image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise UploadError(
                    f"the image has {width} x {height} pixels; at most {MAX_PIXELS:,} are taken",
                    413,
                )
            opened.load()  # a truncated file fails here, not later
            return np.asarray(opened.convert("RGB"))
    except UploadError:
        raise
    except image.DecompressionBombError:
        raise UploadError(f"the image has more than {MAX_PIXELS:,} pixels", 413) from None
    except image.UnidentifiedImageError:
        raise UploadError(
            "the upload is not an image Pillow can read (PNG, JPEG, WebP, ...)"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UploadError(f"the image could not be decoded ({error}); is it truncated?") from None


@dataclass
class Upload:
    id: str
    pixels: np.ndarray  # as drawn, (H, W, 3) in [0, 1]
    input: torch.Tensor  # the model input (C, H, W)
    top: list[dict[str, Any]]


@dataclass
class Job:
    """One request to explain an input with some methods."""

    id: str
    methods: list[str]
    target: int | str
    input: torch.Tensor
    pixels: np.ndarray | None
    state: str = "queued"  # queued, running, done, cancelled, failed
    done: list[str] = field(default_factory=list)
    current: str | None = None
    passes: int = 0
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # text models
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    explained: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def finished(self) -> bool:
        return self.state not in ("queued", "running")

    def wait_change(self, seconds: float) -> None:
        """Return when the job ends or a method is done, or after ``seconds`` (a long poll:
        the page learns of a map as soon as it is there, without polling fast)."""
        done = len(self.done)
        deadline = time.monotonic() + seconds
        while not self.finished() and len(self.done) == done and time.monotonic() < deadline:
            time.sleep(0.002)

    def describe(self, class_name: Any) -> dict[str, Any]:
        return {
            "job": self.id,
            "state": self.state,
            "methods": self.methods,
            "done": list(self.done),
            "current": self.current,
            "passes": self.passes,
            "progress": len(self.done) / max(1, len(self.methods)),
            "errors": dict(self.errors),
            "seconds": dict(self.seconds),
            "target": self.explained,
            "target_name": class_name(self.explained),
            "signed": {m: signed_method(m) for m in self.maps},
            "tokens": self.tokens,
        }


class Live:
    """A loaded model (``attrib.runs.models.LoadedModel``), its uploads and jobs."""

    kind = "images"

    def __init__(self, loaded: Any, settings: dict[str, Any] | None = None) -> None:
        self.loaded = loaded
        self.model: torch.nn.Module = loaded.model
        self.preset = preset(loaded.preset)
        self.settings = dict(settings or {})
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="attrib-live")
        self._device = next(iter(self.model.parameters()), torch.zeros(0)).device

    def close(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel.set()
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- what the page shows -------------------------------------------------------------

    def class_name(self, cls: int | None) -> str | None:
        if cls is None:
            return None
        names = self.loaded.class_names
        return names[cls] if names and 0 <= cls < len(names) else str(cls)

    def describe(self) -> dict[str, Any]:
        # a TorchScript model cannot take the hooks some methods need (the catalogue says)
        scripted = isinstance(self.model, torch.jit.ScriptModule)
        methods = [
            {"name": info.name, "signed": info.signed, "family": info.family}
            for info in catalogue.entries(inputs=IMAGE_INPUTS)
            if not info.wrapper and not (scripted and info.python_module)
        ]
        return {
            "kind": self.kind,
            "label": self.loaded.label,
            "classes": list(self.loaded.class_names or []),
            "methods": methods,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "max_pixels": MAX_PIXELS,
        }

    # -- uploads ---------------------------------------------------------------------------

    def upload(self, data: bytes) -> Upload:
        array = decode_image(data)
        loaded = prepare(array, self.preset, name="upload")
        pixels = np.asarray(loaded.pixels, dtype=np.float32)
        # on the jobs' thread: the model is never run by two threads at once (a job's hooks
        # would see this forward, and a cancelled job's hook would stop it)
        top = self._worker.submit(self.top, loaded.tensor).result()
        upload = Upload(secrets.token_hex(8), pixels, loaded.tensor, top)
        with self._lock:
            self.uploads[upload.id] = upload
            while len(self.uploads) > KEPT:
                self.uploads.popitem(last=False)
        return upload

    def top(self, tensor: torch.Tensor, k: int = 5) -> list[dict[str, Any]]:
        with torch.no_grad():
            logits = self.model(tensor[None].to(self._device))
        probabilities = torch.softmax(logits.float(), dim=1)[0]
        values, classes = probabilities.topk(min(k, probabilities.numel()))
        return [
            {"class": int(c), "name": self.class_name(int(c)), "probability": float(p)}
            for c, p in zip(classes.tolist(), values.tolist(), strict=True)
        ]

    def find_upload(self, upload_id: str) -> Upload:
        with self._lock:
            found = self.uploads.get(upload_id)
        if found is None:
            raise LookupError("no such upload")
        return found

    # -- jobs ------------------------------------------------------------------------------

    def check_methods(self, names: list[str]) -> list[str]:
        if not names or not all(isinstance(n, str) for n in names) or len(names) > 32:
            raise AttribError("methods", "a list of method names", names, "")
        return self.method_names(names)

    def method_names(self, names: list[str]) -> list[str]:
        """The catalogue names of ``names`` (an image model's methods)."""
        return catalogue.resolve_names(",".join(names), IMAGE_INPUTS, argument="methods")

    def class_count(self) -> int:
        """How many classes the loaded model names (0: unknown)."""
        return len(self.loaded.class_names or [])

    def check_target(self, target: Any) -> int | str:
        if target in (None, "", "predicted"):
            return "predicted"
        count = self.class_count()
        try:
            value = int(target)
        except (TypeError, ValueError):
            raise AttribError("target", "'predicted' or a class index", target, "") from None
        if value < 0 or (count and value >= count):
            raise AttribError("target", f"a class index below {count}", target, "")
        return value

    def submit_text(self, text: Any, methods: list[str], target: Any) -> Job:
        raise UploadError("the loaded model explains images: upload an image", 409)

    def submit(
        self, tensor: Any, pixels: np.ndarray | None, methods: list[str], target: Any
    ) -> Job:
        job = Job(
            secrets.token_hex(8),
            self.check_methods(methods),
            self.check_target(target),
            tensor,
            pixels,
        )
        with self._lock:
            self.jobs[job.id] = job
            finished = [k for k, j in self.jobs.items() if j.state not in ("queued", "running")]
            for key in finished[: max(0, len(self.jobs) - KEPT)]:
                del self.jobs[key]
        self._worker.submit(self._run, job)
        return job

    def find_job(self, job_id: str) -> Job:
        with self._lock:
            found = self.jobs.get(job_id)
        if found is None:
            raise LookupError("no such job")
        return found

    def cancel(self, job_id: str) -> Job:
        job = self.find_job(job_id)
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"
        return job

    def explain_now(self, job: Job) -> None:
        """Run ``job`` in this thread (the benchmark's and the tests' direct path)."""
        self._run(job)

    def _run(self, job: Job) -> None:
        x = job.input[None].to(self._device)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        context = ImageContext(self.model, size, layer=self.loaded.layer, settings=self.settings)

        def predict() -> int:
            with torch.no_grad():
                return int(self.model(x).argmax(dim=1)[0])

        def explain(name: str, target: int) -> None:
            method = build_for_image(name, context)
            job.maps[name] = two_d_map(method(x, target=target))

        run_job(job, self.model, predict, explain)


def run_job(
    job: Job,
    model: Any,
    predict: Callable[[], int],
    explain: Callable[[str, int], None],
) -> None:
    """Run ``job``'s methods one after the other on ``model`` (images and texts alike).

    The target is ``predict()`` for ``"predicted"``; ``explain(name, target)`` stores one
    method's result on the job. A forward pre-hook counts the passes and raises
    ``CancelledError`` at the next forward once the job is cancelled (the hook goes with
    ``hooked``'s ``finally``). One method that fails records its error and leaves the others.
    """
    if job.cancel.is_set():
        job.state = "cancelled"
        return
    job.state = "running"

    def check(module: Any, args: Any) -> None:
        if job.cancel.is_set():
            raise CancelledError()
        job.passes += 1

    try:
        with hooked(model, forward_pre=check):
            target = predict() if job.target == "predicted" else int(job.target)
            job.explained = target
            for name in job.methods:
                job.current, job.passes = name, 0
                start = time.perf_counter()
                try:
                    explain(name, target)
                except CancelledError:
                    raise
                except AttribError as error:
                    job.errors[name] = " ".join(str(error).split())
                except Exception as error:  # one method failing leaves the others
                    job.errors[name] = f"{type(error).__name__}: {error}".splitlines()[0]
                job.seconds[name] = time.perf_counter() - start
                job.done.append(name)
        job.state = "done"
    except CancelledError:
        job.state = "cancelled"
    except Exception as error:
        job.errors["job"] = f"{type(error).__name__}: {error}".splitlines()[0]
        job.state = "failed"
    finally:
        job.current = None


def two_d_map(attribution: Any) -> np.ndarray:
    """The first sample's 2-D map, as a run stores it (``attrib.viz.maps.default_reduction``
    over channels; CAM maps as they are)."""
    from attrib.viz.maps import default_reduction, saliency_maps

    reduce = default_reduction(attribution.method) if attribution.channel_dim is not None else None
    return np.asarray(saliency_maps(attribution, reduce=reduce)[0], dtype=np.float32)


def signed_method(method: str) -> bool:
    """Whether the catalogue says ``method``'s maps are signed (drawn diverging)."""
    info = catalogue.get(method)
    return bool(info.signed) if info is not None else False

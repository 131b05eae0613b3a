"""Runs and servers the explorer's tests share: a synthetic image run (through the store's
writer), a synthetic text run, and a real run of the shipped ground-truth CNN with a
loaded model (so that live explanations compute real maps)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("pyarrow")

from tests.serve.synthetic import CLASS_NAMES, write_image_run, write_text_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts" / "serve"


@pytest.fixture(scope="session")
def image_run(tmp_path_factory) -> Path:
    # one sample in seven fails (6, 13, 20): error rows, without maps or scores
    return write_image_run(
        tmp_path_factory.mktemp("serve-images"), n=24, shard_size=8, error_every=7
    )


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    return write_text_run(tmp_path_factory.mktemp("serve-text"))


@pytest.fixture(scope="session")
def model_run(tmp_path_factory) -> Path:
    """A real run: the ground-truth CNN on 16 images, Saliency and GradCAM, deletion."""
    from attrib.data.gt_cnn import load_ground_truth_cnn
    from attrib.runs import run
    from attrib.runs.ground_truth import write_ground_truth_folder

    root = tmp_path_factory.mktemp("serve-model")
    data = write_ground_truth_folder(root / "data", n=16, seed=3)
    run(
        load_ground_truth_cnn(),
        data,
        methods="saliency,gradcam",
        metrics="deletion,sanity",
        layer="features.9",
        out=root / "run",
        shard_size=8,
        sanity_samples=4,
        sanity_checkpoints=2,
        steps=8,
        progress=False,
        workers=0,
        preset="none",
        label_names=CLASS_NAMES,
    )
    return root / "run"


@pytest.fixture(scope="session")
def live_model() -> Any:
    from attrib.runs.models import load_model

    return load_model("gt_cnn")


def make_app(paths: list[Path], names: list[str], loaded: Any = None) -> Any:
    from attrib.serve.app import LOOPBACK, create_app
    from attrib.serve.live import Live
    from attrib.serve.served import open_served

    runs = [open_served(p, n) for p, n in zip(paths, names, strict=True)]
    # Starlette's test client calls itself "testserver"; a real server answers only the
    # loopback names (attrib.serve.app.LOOPBACK)
    hosts = [*LOOPBACK, "testserver"]
    return create_app(runs, Live(loaded) if loaded is not None else None, allowed_hosts=hosts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(image_run, text_run, model_run, live_model) -> Iterator[str]:
    """A real uvicorn server in a thread over the three runs, with the model loaded."""
    import uvicorn

    app = make_app([image_run, model_run, text_run], ["images", "model", "texts"], live_model)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer's test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)

"""Fixtures for the command-line tests: small image files, weights files, a runner.

Each ``attrib`` run is a subprocess (so exit codes and stderr are the real ones); starting
Python with torch costs ~2 s, so tests start independent runs together (``run_all``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Done:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the factory SPEC names tests.cli.toy_models; keep subprocesses to one thread each
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def run_all(commands: Sequence[Sequence[str]], timeout: float = 300) -> list[Done]:
    """Run ``attrib`` command lines concurrently; results in the same order."""
    started = [
        (
            list(args),
            subprocess.Popen(
                [sys.executable, "-m", "attrib.cli", *args],
                cwd=REPO,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    done = []
    for args, process in started:
        out, err = process.communicate(timeout=timeout)
        done.append(Done(args, process.returncode, out, err))
    return done


def run(*args: str, timeout: float = 300) -> Done:
    return run_all([args], timeout)[0]


def assert_one_line_error(done: Done, *fragments: str) -> None:
    """Non-zero exit, one line on stderr, no traceback, the fragments in it."""
    assert done.returncode != 0, (done.args, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("attrib: warning:")]
    assert len(errors) == 1, (done.args, done.stderr)
    assert errors[0].startswith("attrib: error: "), (done.args, done.stderr)
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in errors[0], (done.args, errors[0], fragment)


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """Two small images, a non-image, weights and TorchScript files for the toy model."""
    from PIL import Image

    from tests.cli.toy_models import TinyCNN, tiny_cnn

    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    paths = {}
    for name, fmt in (("one.png", "PNG"), ("two.jpg", "JPEG")):
        array = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        array[6:14, 8:20] = 255  # a bright patch: something to see
        paths[name] = root / name
        Image.fromarray(array).save(paths[name], format=fmt)
    paths["text.png"] = root / "text.png"
    paths["text.png"].write_text("this is not an image\n")
    model = tiny_cnn()
    paths["tiny.pt"] = root / "tiny_state.pt"
    torch.save(model.state_dict(), paths["tiny.pt"])
    paths["wrong.pt"] = root / "wrong_state.pt"
    torch.save(TinyCNN(classes=5).state_dict(), paths["wrong.pt"])
    paths["pickled.pt"] = root / "pickled_model.pt"
    torch.save(model, paths["pickled.pt"])  # a whole module: refused by weights_only
    paths["scripted.pt"] = root / "scripted.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated, and still a SPEC form
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model), paths["scripted.pt"])
    return paths


FACTORY = "tests.cli.toy_models:tiny_cnn"

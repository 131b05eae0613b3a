"""The facade loads on first use: ``import attrib`` and the ``attrib`` command's parsing do not
import torch, every public name is still reachable, and every consumer of the catalogue still
sees every method (the text methods register when ``attrib.text`` is imported).

Each check runs in a fresh interpreter: in this one, torch and every layer are long imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import attrib

SRC = Path(__file__).resolve().parents[1] / "src"


def python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def imported_modules(importtime_stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reports, one per line ``...| name``."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_the_reader_of_importtime_sees_torch_when_it_is_imported():
    """The check below is not vacuous: the same reader finds torch where it is imported."""
    done = python("import torch", "-X", "importtime")
    assert done.returncode == 0, done.stderr
    assert "torch" in imported_modules(done.stderr)


def test_attrib_help_does_not_import_torch():
    done = python(
        "import runpy, sys; sys.argv = ['attrib', '--help']; "
        "runpy.run_module('attrib.cli', run_name='__main__')",
        "-X",
        "importtime",
    )
    assert done.returncode == 0, done.stderr
    assert "explain" in done.stdout and "methods" in done.stdout
    modules = imported_modules(done.stderr)
    assert "attrib.cli.main" in modules
    assert not {m for m in modules if m.split(".")[0] in ("torch", "numpy")}, "torch imported"


# a command line of every command, and one that does not parse
COMMAND_LINES = [
    ["methods"],
    ["methods", "integrated_gradients"],
    ["explain", "a.png", "--model", "demo", "--method", "saliency,gradcam", "--layer", "x"],
    ["explain-text", "a fine film", "--method", "integrated_gradients"],
    ["erasure", "--sentences", "3"],
    ["evaluate", "a.png", "--model", "demo", "--method", "saliency"],
    ["report", "a.png", "--model", "demo", "--method", "all", "--sanity", "gradcam"],
    ["demo", "--no-text"],
]


def test_parsing_any_command_line_does_not_import_torch():
    done = python(
        f"""
        import sys
        from attrib.cli import build_parser
        parser = build_parser()
        for argv in {COMMAND_LINES!r}:
            assert parser.parse_args(argv).module
        try:
            parser.parse_args(["explain", "--nonsense"])
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError("a bad command line parsed")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_import_attrib_imports_no_layer_until_a_name_is_used():
    done = python(
        """
        import sys
        import attrib
        before = sorted(m for m in sys.modules if m.startswith(("torch", "attrib.")))
        from attrib import Saliency, explain
        print(before, Saliency.__module__, explain.__module__, "torch" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "attrib.methods.gradient", "attrib.api", "True"]


def test_every_public_name_is_reachable_and_listed():
    import attrib.methods

    assert set(attrib.methods.__all__) <= set(attrib.__all__)
    assert len(attrib.__all__) == len(set(attrib.__all__))
    for name in attrib.__all__:
        assert getattr(attrib, name) is not None, name
    assert set(attrib.__all__) <= set(dir(attrib))
    namespace: dict[str, object] = {}
    exec("from attrib import *", namespace)
    assert set(attrib.__all__) <= set(namespace)
    from attrib.core.result import Attribution

    assert attrib.Attribution is Attribution
    assert attrib.__version__
    from attrib.core.version import VERSION

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert attrib.__version__ == VERSION
    assert f'version = "{VERSION}"' in pyproject
    for package in ("core", "methods", "text", "viz", "metrics", "report"):
        assert getattr(attrib, package).__name__ == f"attrib.{package}"
    with pytest.raises(AttributeError, match="Saliancy"):
        attrib.Saliancy  # noqa: B018


def test_every_catalogued_image_method_is_a_public_name():
    from attrib.methods import catalogue

    public = set(attrib.__all__)
    for info in catalogue.entries(inputs=("tensor", "image")):
        assert info.name in public, info.name
        assert getattr(attrib, info.name) is info.cls


def test_each_consumer_of_the_catalogue_sees_the_text_methods_in_a_fresh_interpreter():
    """viz (signed maps), the report (through viz), explain() and ``attrib methods`` import
    what registers the text methods themselves, since ``import attrib`` no longer imports
    every layer."""
    done = python(
        """
        import contextlib, io
        from attrib.viz import SIGNED_METHODS
        print("LeaveOneOut" in SIGNED_METHODS, "TokenKernelSHAP" in SIGNED_METHODS)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
    done = python(
        """
        from attrib.api import available_methods, method_class
        print("leaveoneout" in available_methods(), method_class("TokenKernelSHAP").__name__)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "TokenKernelSHAP"]
    done = python(
        """
        from attrib.report import note_for
        from attrib.report.notes import families
        print(note_for("TokenKernelSHAP").paper.split()[0], families(["LeaveOneOut"])[0][0])
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Lundberg", "Text", "methods"]
    done = python(
        """
        import contextlib, io
        from attrib.cli import listing
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            listing.run(None)
        names = {line.split()[0] for line in out.getvalue().splitlines() if line.startswith("  ")}
        print(sorted(names & {"LeaveOneOut", "TokenKernelSHAP", "AnchorsText", "FullGrad"}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['AnchorsText', 'FullGrad', 'LeaveOneOut', 'TokenKernelSHAP']"

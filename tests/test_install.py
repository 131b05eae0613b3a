"""What ``pip install`` brings is what the README's examples use: the extras of
``pyproject.toml`` against the imports of the quick start and the packages of the demo
models (checked from the files, no installation)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attrib.text.minilm import ENCODER_PACKAGE

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
README = (ROOT / "README.md").read_text()


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, normalised (PEP 503)."""
    names = (re.match(r"[A-Za-z0-9._-]+", r.strip()) for r in requirements)
    return {re.sub(r"[-_.]+", "-", m.group()).lower() for m in names if m}


def test_the_text_extra_installs_the_minilm_encoder():
    text = requirement_names(PROJECT["optional-dependencies"]["text"])
    assert {"transformers", ENCODER_PACKAGE} <= text
    # the same package the development setup pins (installed there without its dependencies)
    pinned = (ROOT / "requirements" / "nodeps.txt").read_text().splitlines()
    assert ENCODER_PACKAGE in requirement_names([p for p in pinned if not p.startswith("#")])


def test_the_quick_start_says_how_to_get_what_it_imports():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))
    imported = set()
    for line in code.splitlines():
        found = re.match(r"\s*(?:import|from)\s+([\w., ]+?)(?:\s+import\b|$)", line)
        if found:
            imported |= {m.strip().split(".")[0] for m in found.group(1).split(",")}
    installed = requirement_names(PROJECT["dependencies"]) | {"attrib"}
    missing = sorted(imported - installed)
    told = set(re.findall(r"pip install ([\w-]+)", section))
    assert set(missing) <= told, f"the quick start imports {missing} without saying pip install"

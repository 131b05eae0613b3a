"""A run's manifest: everything that decides its results, written once, checked on resume.

A run directory answers one question (this model, these methods with these settings, these
metrics, this data, this seed). Resuming it with a different model, weights, method setting,
metric, data, seed or attrib version would mix two answers in one store: the comparison
refuses it and names what differs (``--force-new`` starts over). The torch version and the
device are recorded, not compared: they change float rounding, not the question.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from attrib.core.errors import AttribError

__all__ = ["Manifest", "RunMismatchError", "model_fingerprint", "settings_record"]

COMPARED = (
    "attrib_version",
    "model",
    "methods",
    "metrics",
    "metric_settings",
    "source",
    "seed",
    "shard_size",
    "target",
    "maps",
    "sanity",
)


class RunMismatchError(AttribError):
    """The run directory holds a run of something else."""


@dataclass
class Manifest:
    """What a run is. ``methods`` maps each method's name to its recorded settings."""

    attrib_version: str
    torch_version: str
    model: dict[str, Any]
    methods: dict[str, Any]
    metrics: list[str]
    source: dict[str, Any]
    seed: int
    shard_size: int
    target: str
    maps: dict[str, Any]
    sanity: dict[str, Any]
    device: str
    engine: str = "local"
    metric_settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=repr)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def differences(self, other: Manifest) -> list[str]:
        """What differs between two runs in what decides their results, one line each."""
        mine, theirs = _plain(asdict(self)), _plain(asdict(other))
        out = []
        for name in COMPARED:
            out.extend(_diff(name, mine.get(name), theirs.get(name)))
        return out


def _plain(value: Any) -> Any:
    """JSON values, with object addresses taken out of reprs (they change every process)."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return json.loads(re.sub(r" at 0x[0-9a-fA-F]+", "", text))


def _diff(path: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in b:
                out.append(f"{path}.{key}: {_short(a[key])} in the run, absent now")
            elif key not in a:
                out.append(f"{path}.{key}: absent in the run, {_short(b[key])} now")
            else:
                out.extend(_diff(f"{path}.{key}", a[key], b[key]))
        return out
    if a != b:
        return [f"{path}: {_short(a)} in the run, {_short(b)} now"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def settings_record(method: Any) -> dict[str, Any]:
    """A method's settings as JSON values (what the manifest compares)."""
    settings = method.settings() if hasattr(method, "settings") else {}
    return {"class": type(method).__name__, "settings": _plain(settings)}


def model_fingerprint(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes and values): two
    models with the same weights have the same fingerprint, whatever object holds them."""
    digest = hashlib.sha256()
    module = model if isinstance(model, nn.Module) else getattr(model, "module", None)
    if not isinstance(module, nn.Module):
        digest.update(repr(type(model)).encode())
        return digest.hexdigest()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()

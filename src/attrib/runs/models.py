"""Model SPECs of the command line: what ``--model`` (and ``--weights``) can name.

- a demo model name: ``efficientnet_lite0`` (alias ``demo``), installed with ``attrib[demo]``;
  ``gt_cnn``, the small CNN of the ground-truth shapes (32 x 32 images, shipped);
- a TorchScript file (``torch.jit.save``), e.g. ``model.pt``;
- a torchvision classification architecture, ``resnet18``, with ``--weights FILE``;
- ``package.module:factory``, a function (or class) called with no arguments that returns
  the ``nn.Module``, with an optional ``--weights FILE``.

Weights files are read with ``torch.load(..., weights_only=True)``: tensors and plain
containers only, never pickled Python objects (unpickling a stranger's file runs its code).
A checkpoint dict that holds the state dict under ``"state_dict"`` or ``"model"`` is
unwrapped, and a ``module.`` prefix (``DataParallel``) is dropped. Nothing is downloaded.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pickle
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attrib.core.errors import SettingError

__all__ = ["DEMO_MODELS", "LoadedModel", "load_model", "load_state_dict", "read_labels"]


@dataclass
class LoadedModel:
    """A model ready to explain, and what the command line knows about it."""

    model: nn.Module
    label: str
    preset: str
    class_names: list[str] | None = None
    layer: str | None = None


def _demo_lite0() -> LoadedModel:
    from attrib.data.imagenet_demo import (
        CAM_LAYER,
        imagenet_class_names,
        load_efficientnet_lite0,
    )

    return LoadedModel(
        load_efficientnet_lite0(),
        "EfficientNet-Lite0 (ImageNet, demo)",
        "crop224",
        imagenet_class_names(),
        CAM_LAYER,
    )


def _ground_truth_cnn() -> LoadedModel:
    from attrib.data.ground_truth import CLASSES
    from attrib.data.gt_cnn import load_ground_truth_cnn

    return LoadedModel(
        load_ground_truth_cnn(),
        "the ground-truth shapes CNN (32 x 32, shipped)",
        "none",
        list(CLASSES),
        "features.9",
    )


DEMO_MODELS: dict[str, Callable[[], LoadedModel]] = {
    "gt_cnn": _ground_truth_cnn,
    "gt-cnn": _ground_truth_cnn,
    "efficientnet_lite0": _demo_lite0,
    "efficientnet-lite0": _demo_lite0,
    "demo": _demo_lite0,
}


def load_model(
    spec: str,
    weights: str | None = None,
    *,
    device: str | torch.device = "cpu",
    labels: str | None = None,
) -> LoadedModel:
    """Build the model a SPEC names (see the module docstring), in eval mode on ``device``."""
    device = _device(device)
    if spec in DEMO_MODELS:
        if weights is not None:
            raise SettingError(
                "--weights", "no weights file for a demo model (it ships its own)", weights, ""
            )
        loaded = DEMO_MODELS[spec]()
    elif os.path.isfile(spec):
        if weights is not None:
            raise SettingError(
                "--weights",
                "no weights file with a TorchScript model (it holds its own)",
                weights,
                "",
            )
        loaded = LoadedModel(_torchscript(spec), f"TorchScript {Path(spec).name}", "imagenet")
    elif ":" in spec and not _looks_like_path(spec):
        model = _from_factory(spec)
        if weights is not None:
            _apply(model, load_state_dict(weights), weights, spec)
        loaded = LoadedModel(model, spec, "imagenet")
    elif spec in _torchvision_names():
        loaded = _torchvision(spec, weights)
    else:
        raise _unknown(spec)
    loaded.model = loaded.model.to(device).eval()
    if loaded.class_names is None:
        loaded.class_names = _imagenet_names_if_1000(loaded.model)
    if labels is not None:
        loaded.class_names = read_labels(labels)
    return loaded


def _device(device: str | torch.device) -> torch.device:
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SettingError(
            "--device", "a torch device (cpu, cuda, cuda:1, mps)", device, ""
        ) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SettingError(
            "--device", "a device this machine has", str(device), "Use --device cpu."
        )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise SettingError(
            "--device", "a device this machine has", str(device), "Use --device cpu."
        )
    return chosen


def _looks_like_path(spec: str) -> bool:
    # "C:\\models\\net.pt" or "./dir:x" are paths, not package.module:factory
    return os.sep in spec.split(":", 1)[0] or spec.endswith((".pt", ".pth", ".ts"))


def _unknown(spec: str) -> SettingError:
    if _looks_like_path(spec) or spec.endswith((".pt", ".pth", ".ts", ".bin")):
        return SettingError("--model", "a TorchScript file", spec, "No such file.")
    known = [*DEMO_MODELS, *_torchvision_names()]
    close = difflib.get_close_matches(spec, known, n=3, cutoff=0.6)
    hint = f"Did you mean {', '.join(close)}?" if close else "See attrib explain --help."
    return SettingError(
        "--model",
        "a demo model (efficientnet_lite0), a TorchScript file, a torchvision architecture "
        "with --weights, or package.module:factory",
        spec,
        hint,
    )


_AS_WEIGHTS = (
    "Name the architecture and pass the file as weights: --model resnet18 --weights FILE, "
    "or --model package.module:factory --weights FILE."
)


def _torchscript(path: str) -> nn.Module:
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as error:  # torch raises RuntimeError or ValueError, by version
        kind = _file_kind(path)
        if _is_state_dict_file(path) or kind == "pickle":
            raise SettingError(
                "--model", "a TorchScript file", f"{path} (a weights file)", _AS_WEIGHTS
            ) from None
        if kind == "other":
            raise SettingError(
                "--model",
                "a TorchScript file (torch.jit.save writes a zip archive)",
                path,
                "It is not a zip archive. Pass a model saved with torch.jit.save, or a "
                "weights file with its architecture: --model resnet18 --weights FILE.",
            ) from None
        raise SettingError(
            "--model", "a TorchScript file", path, f"torch.jit.load failed: {_reason(error)}."
        ) from None


def _file_kind(path: str | os.PathLike) -> str:
    """``"zip"`` (torch.save and torch.jit.save since torch 1.6), ``"pickle"`` (the older
    torch.save format) or ``"other"``, from the file's first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return "other"
    if head.startswith(b"PK"):
        return "zip"
    return "pickle" if head[:1] == b"\x80" else "other"


def _reason(error: BaseException) -> str:
    """The first sentence of an exception's message (torch appends paragraphs of advice
    about its internals), or its type's name."""
    lines = str(error).strip().splitlines()
    first = lines[0].strip() if lines else ""
    first = first.split(". ")[0].rstrip(".")
    return first if first and len(first) > 3 else type(error).__name__


def _is_state_dict_file(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return not any("/code/" in n for n in names) and any(n.endswith("data.pkl") for n in names)


def _is_torchscript_file(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in n for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _from_factory(spec: str) -> nn.Module:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SettingError("--model", "package.module:factory", spec, "")
    # a console script does not put the working directory on sys.path; `python -m` does
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SettingError(
            "--model", "package.module:factory with an importable module", spec, str(error)
        ) from None
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise SettingError(
                "--model", f"a factory that {module_name} defines", spec, f"No {part!r} there."
            )
        factory = getattr(factory, part)
    if not callable(factory):
        raise SettingError("--model", "a callable factory", spec, "")
    try:
        model = factory()
    except Exception as error:
        raise SettingError(
            "--model",
            "a factory that builds the model with no arguments",
            spec,
            f"It raised {type(error).__name__}: {error}",
        ) from None
    if not isinstance(model, nn.Module):
        raise SettingError("--model", "a factory that returns an nn.Module", spec, "")
    return model


def _torchvision_names() -> list[str]:
    try:
        import torchvision.models as models
    except ImportError:
        return []
    return list(models.list_models(module=models))


def _torchvision(name: str, weights: str | None) -> LoadedModel:
    if weights is None:
        raise SettingError(
            "--weights",
            f"a weights file for the torchvision architecture {name}",
            None,
            "attrib never downloads weights, and a random network explains nothing: "
            "save model.state_dict() with torch.save and pass it with --weights FILE.",
        )
    import torchvision.models as models

    model = models.get_model(name, weights=None)
    _apply(model, load_state_dict(weights), weights, name)
    return LoadedModel(model, f"torchvision {name}", "imagenet")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a file, read with ``torch.load(weights_only=True)``."""
    file = Path(path)
    if not file.is_file():
        raise SettingError("--weights", "a weights file", str(path), "No such file.")
    if _is_torchscript_file(str(file)):
        # checked first: torch.load hands TorchScript archives to torch.jit.load
        raise SettingError(
            "--weights",
            "a state dict",
            f"{file} (a TorchScript model)",
            "Pass a TorchScript file as --model FILE, without --weights.",
        )
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SettingError(
            "--weights",
            "a file of tensors (a state dict)",
            f"{file} (it holds pickled Python objects)",
            "attrib reads weights with torch.load(weights_only=True) and never unpickles code: "
            "save model.state_dict() instead of the model.",
        ) from None
    except Exception as error:
        if _file_kind(file) == "other":
            raise SettingError(
                "--weights",
                "a state dict saved with torch.save",
                str(file),
                "It is not a file torch.save writes (neither a zip archive nor a pickle): "
                "save the weights with torch.save(model.state_dict(), FILE).",
            ) from None
        raise SettingError(
            "--weights",
            "a state dict saved with torch.save",
            str(file),
            f"torch.load could not read it ({_reason(error)}); save the weights again with "
            "torch.save(model.state_dict(), FILE).",
        ) from None
    return _state_dict_of(loaded, file)


def _state_dict_of(loaded: Any, file: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = loaded.get(key)
            if isinstance(inner, dict) and inner and _all_tensors(inner):
                loaded = inner
                break
    if not isinstance(loaded, dict) or not loaded or not _all_tensors(loaded):
        raise SettingError(
            "--weights",
            "a state dict (parameter name -> tensor)",
            f"{file} (a {type(loaded).__name__})",
            "Save it with torch.save(model.state_dict(), FILE).",
        )
    if all(k.startswith("module.") for k in loaded):
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def _all_tensors(d: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _apply(model: nn.Module, state: dict[str, torch.Tensor], path: Any, name: str) -> None:
    """Load ``state`` into ``model`` exactly, or say in one line why it does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                shown = ", ".join(keys[:3]) + (
                    f", ... ({len(keys)} in all)" if len(keys) > 3 else ""
                )
                parts.append(f"{label}: {shown}")
        raise SettingError(
            "--weights",
            f"a state dict that fits {name}",
            f"{path} ({'; '.join(parts)})",
            "Check that the weights were saved from this architecture.",
        )
    model.load_state_dict(state, strict=True)


def _imagenet_names_if_1000(model: nn.Module) -> list[str] | None:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None or last.out_features != 1000:
        return None
    from attrib.data.imagenet_demo import imagenet_class_names

    return imagenet_class_names()


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names, one per line."""
    file = Path(path)
    if not file.is_file():
        raise SettingError("--labels", "a text file with one class name per line", str(path), "")
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]

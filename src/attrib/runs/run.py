"""``run(model, data, methods=..., metrics=..., out=...)``: explain and evaluate a dataset.

The run directory (``attrib.runs.store``) is created, or resumed when it holds the same run
(its shards already done are skipped: a resumed run ends with the same store as one that was
never interrupted), or refused when it holds another (``force_new`` starts over). The shards
left are explained by an engine (``local`` or ``ray``); then the model-randomization check
runs once on a subsample (``"sanity"`` among the metrics), and the verdict is written to the
run (``summary.md``, ``summary.json``) and returned with the ``Run``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from attrib.core.errors import AttribError, SettingError, did_you_mean
from attrib.core.version import VERSION
from attrib.methods import catalogue
from attrib.methods.recipes import ImageContext, build_for_image, check_settings, settings_for
from attrib.runs import maps as map_files
from attrib.runs.engines.shards import ShardReader, shard_count, shard_range
from attrib.runs.manifest import Manifest, model_fingerprint, settings_record
from attrib.runs.progress import RunProgress
from attrib.runs.samples import Sample, Source
from attrib.runs.sanity import pick, sanity_rows
from attrib.runs.sources import open_source
from attrib.runs.store import RunStore, ShardResult
from attrib.runs.summary import RunSummary, summarize
from attrib.runs.work import IMAGE_METRICS, LOCALIZATION, Job, at_input, outcome_of

__all__ = ["ENGINES", "Run", "RunFailedError", "open_run", "run"]

ENGINES = ("local", "ray")
SANITY = "sanity"
IMAGE_INPUTS: tuple[catalogue.InputKind, ...] = ("tensor", "image")


class RunFailedError(AttribError):
    """The whole run cannot go on (every sample fails the same way, the disk is full)."""


class Run:
    """A run directory, read: its tables (pyarrow), maps and verdict.

    Attributes:
        path: the folder.
        manifest: what the run is (``attrib.runs.manifest.Manifest``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = RunStore(path)
        self.path = self.store.root
        self.manifest = self.store.manifest()
        self._shard_of: dict[str, int] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, methods={self.methods})"

    @property
    def methods(self) -> list[str]:
        return list(self.manifest.methods)

    @property
    def samples(self) -> Any:
        """One row per sample (``attrib.runs.schema.samples_schema``), in source order."""
        return self.store.samples()

    @property
    def scores(self) -> Any:
        """One row per sample, method and metric (``scores_schema``)."""
        return self.store.scores()

    @property
    def sanity(self) -> Any:
        """The model-randomization check's rows (``sanity_schema``)."""
        return self.store.sanity()

    @property
    def notes(self) -> list[str]:
        """Metrics or checks that could not be computed, and why."""
        return self.store.notes()

    def maps(
        self,
        method: str,
        ids: Sequence[str] | None = None,
        *,
        size: tuple[int, int] | None = None,
    ) -> tuple[list[str], Any]:
        """``(ids, maps)``: the 2-D maps ``(N, h, w)`` (float16) of ``method`` for ``ids``
        (default: every explained sample, in source order).

        A CAM's maps are kept at its layer's resolution (Grad-CAM on resnet18: 7 x 7), other
        maps at the input's. ``size=(H, W)`` gives them upsampled bilinearly as the CAM
        upsamples (and min-max scaled after, where it normalises), in float32: the maps the
        metrics scored.
        """
        found, maps = self._maps(method, ids, full=False)
        if size is None or tuple(maps.shape[-2:]) == tuple(size):
            return found, maps
        settings = self.manifest.methods[method].get("settings", {})
        normalize = settings.get("normalize") if isinstance(settings, dict) else None
        values = torch.from_numpy(maps.astype("float32"))
        return found, at_input(values, tuple(size), normalize).numpy()

    def attributions(self, method: str, ids: Sequence[str] | None = None) -> tuple[list[str], Any]:
        """The full attributions (runs with ``maps="full"``), as ``maps``."""
        return self._maps(method, ids, full=True)

    def tokens(self, method: str) -> Any:
        """A text run's token scores of ``method``: a table (id, tokens, scores)."""
        self._check_method(method)
        return self.store.tokens(method)

    def summary(self, by_class: bool | str = False) -> RunSummary:
        """The verdict: which method to trust on this model and data
        (``attrib.runs.summary``)."""
        names = self.manifest.source.get("class_names") or self.manifest.extra.get("class_names")
        result = summarize(
            self.samples, self.scores, self.sanity, by_class=by_class, class_names=names
        )
        extra = tuple(n for n in self.notes if n not in result.notes)
        return replace(result, notes=result.notes + extra) if extra else result

    def _check_method(self, method: str) -> None:
        if method not in self.manifest.methods:
            hint = did_you_mean(method, list(self.manifest.methods))
            raise SettingError("method", f"one of {self.methods}", method, hint or "")

    def source(self) -> Source | None:
        """The run's source opened again (to draw its inputs), or ``None`` where it cannot
        be (a torch or Hugging Face dataset, a moved or deleted file)."""
        described = self.manifest.source
        location = described.get("location")
        if described.get("source") not in ("ImageFolder", "Manifest", "TextFile"):
            return None
        if not isinstance(location, str) or not os.path.exists(location):
            return None
        columns = described.get("columns") or {}
        options: dict[str, Any] = {}
        if described.get("source") == "TextFile":
            options["text_column"] = columns.get("text") or "text"
        elif described.get("source") == "Manifest":
            options["path_column"] = columns.get("path") or "path"
        for key in ("label", "mask", "id"):
            if columns.get(key):
                options[f"{key}_column"] = columns[key]
        try:
            return open_source(
                location,
                preset=described.get("preset") or "none",
                class_names=described.get("class_names"),
                **options,
            )
        except AttribError:
            return None

    def _shards_of(self, ids: Sequence[str]) -> set[int] | None:
        """The shards that hold ``ids`` (``None`` when one is unknown: read every shard)."""
        if self._shard_of is None:
            table = self.samples
            self._shard_of = dict(
                zip(table["id"].to_pylist(), table["shard"].to_pylist(), strict=True)
            )
        found = {self._shard_of.get(i) for i in ids}
        return None if None in found else {int(k) for k in found if k is not None}

    def _maps(self, method: str, ids: Sequence[str] | None, full: bool) -> tuple[list[str], Any]:
        import numpy as np

        self._check_method(method)
        files = self.store.map_files(
            method, full=full, shards=self._shards_of(ids) if ids is not None else None
        )
        if not files:
            what = "full attributions (run with maps='full')" if full else "maps"
            raise SettingError("method", f"a method with {what}", method, "")
        found_ids: list[str] = []
        arrays = []
        for path in files:
            file_ids, array = self._read_maps(path, ids)
            found_ids.extend(file_ids)
            arrays.append(np.asarray(array))
        every = np.concatenate(arrays) if arrays else np.zeros((0,))
        if ids is None:
            return found_ids, every
        where = {k: i for i, k in enumerate(found_ids)}
        missing = [i for i in ids if i not in where]
        if missing:
            raise SettingError(
                "ids",
                "ids of explained samples (Run.samples, status 'ok')",
                missing[:3],
                "",
            )
        return list(ids), every[[where[i] for i in ids]]

    def _read_maps(self, path: Any, ids: Sequence[str] | None) -> tuple[list[str], Any]:
        """The maps of ``path`` (a shard's file) among ``ids``: only the chunks that hold
        them are decoded, when the samples table says which ids the shard holds."""
        if ids is None or self._shard_of is None:
            return map_files.read_maps(path)
        shard = int(path.parent.parent.name)
        here = [i for i in dict.fromkeys(ids) if self._shard_of.get(i) == shard]
        try:
            return map_files.read_maps(path, here)
        except AttribError:  # an id of the shard without a map (an error row): read them all
            return map_files.read_maps(path)


def open_run(path: str | os.PathLike[str]) -> Run:
    """The run in ``path`` (``SettingError`` when it holds none)."""
    return Run(path)


@dataclass
class _Plan:
    source: Source
    job: Job
    manifest: Manifest
    sanity: bool
    notes: list[str]


def run(
    model: Any,
    data: Any,
    *,
    methods: str | Sequence[Any] | Mapping[str, Any],
    out: str | os.PathLike[str],
    metrics: str | Sequence[str] = (),
    engine: str = "local",
    target: str = "predicted",
    settings: Mapping[str, Any] | None = None,
    layer: str | None = None,
    preset: str = "imagenet",
    class_names: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    shard_size: int = 64,
    seed: int = 0,
    batch_size: int | None = None,
    maps: str = "2d",
    map_format: str | None = None,
    steps: int | None = 20,
    sanity_samples: int = 32,
    sanity_checkpoints: int = 6,
    workers: int = 2,
    address: str | None = None,
    device: str | torch.device | None = None,
    model_spec: str | None = None,
    force_new: bool = False,
    progress: bool | Callable[[int, int], None] = True,
    verdict: bool = True,
    say: Callable[[str], None] | None = None,
    source_options: Mapping[str, Any] | None = None,
) -> Run:
    """Explain every sample of ``data`` with ``methods``, score ``metrics``, into ``out``.

    Args:
        model: an ``nn.Module`` of images (in eval mode), or a ``TextClassifier`` for texts.
        data: a folder, a manifest or text file (CSV, Parquet, JSON Lines), a torch or
            Hugging Face dataset, or a ``Source`` (``attrib.runs.sources.open_source``).
        methods: names (``"gradcam,saliency"``, ``"all"``), methods built on ``model``, or
            a dict of name -> method.
        out: the run directory.
        metrics: per-sample metrics (``deletion``, ``insertion``, ``road_morf``,
            ``pointing_game``, ... of ``attrib.metrics.METRICS``), ``"sanity"`` for the
            model-randomization check, or ``"all"``. Localization metrics need masks.
        engine: ``"local"`` or ``"ray"`` (``address``: a cluster to join).
        target: ``"predicted"`` (the model's class) or ``"label"``.
        settings: method settings for methods given by name (``{"steps": 32,
            "GradCAM.layer": "layer4"}``), as ``attrib explain --set``.
        layer: the layer of the CAM methods (default: the last convolution).
        class_names: the classes of the source's string labels, in the model's order (a
            folder's sub-folders then must be among them).
        label_names: the model's class names, shown in the summary's per-class table
            (default: ``class_names``, or the source's).
        preset: how images become inputs (``imagenet``, ``crop224``, ``none``).
        shard_size: samples per shard (the unit of commit and resume).
        seed: seeds random methods (per sample), random maps and the sanity check.
        batch_size: most rows per forward (``None``: each method's choice).
        maps: ``"2d"`` (one float16 map per sample and method) or ``"full"`` (also the whole
            attribution).
        steps: points of the deletion, insertion and pixel-flipping curves (``None``: each
            metric's own default, one per 1% of the features).
        map_format: the maps' file format (``attrib.runs.maps``; default the measured best).
        sanity_samples: how many samples the sanity check explains.
        workers: ``DataLoader`` decoding processes (local) or Ray actors (ray).
        device: where the model runs (default: where its parameters are).
        model_spec: how the model was named (recorded; the command line's ``--model``).
        force_new: start over in a folder that holds another run.
        progress: a progress line on stderr (``True``), none, or ``callback(done, total)``.
        verdict: say the verdict at the end (with ``progress``); it is written to the run
            either way (``summary.md``, ``summary.json``).
        say: where messages go (default: stderr when ``progress``).

    Returns:
        the ``Run`` (its tables, maps and ``summary()``).
    """
    if engine not in ENGINES:
        raise SettingError("engine", f"one of {ENGINES}", engine, "")
    if say is None:
        say = _stderr if progress else (lambda text: None)
    plan = _plan(
        model,
        data,
        methods=methods,
        metrics=metrics,
        target=target,
        settings=dict(settings or {}),
        layer=layer,
        preset=preset,
        class_names=class_names,
        label_names=label_names,
        shard_size=shard_size,
        seed=seed,
        batch_size=batch_size,
        maps=maps,
        map_format=map_format,
        steps=steps,
        sanity_samples=sanity_samples,
        sanity_checkpoints=sanity_checkpoints,
        device=device,
        model_spec=model_spec,
        engine=engine,
        source_options=dict(source_options or {}),
    )
    store = RunStore.open(out, plan.manifest, force_new=force_new)
    source, job = plan.source, plan.job
    n = len(source)
    done = store.done_shards()
    todo = [k for k in range(shard_count(n, shard_size)) if k not in done]
    already = sum(len(shard_range(k, n, shard_size)) for k in done if k * shard_size < n)
    if done:
        say(f"Resuming {store.root}: {len(done)} shards done, {len(todo)} to do.")
    bar = _progress(progress, n, already)
    guard = _Guard(bar)
    reader = ShardReader(source, todo, shard_size)
    fmt = plan.manifest.maps.get("format")
    try:
        if engine == "local":
            from attrib.runs.engines.local import run_local

            run_local(
                store,
                reader,
                job,
                workers=workers,
                map_format=fmt,
                on_commit=guard.committed,
                say=say,
            )
        else:
            from attrib.runs.engines.ray import run_ray

            run_ray(
                store,
                reader,
                job,
                workers=workers,
                address=address,
                map_format=fmt,
                on_shard=guard.outcome,
            )
    except OSError as error:  # a full disk, a folder gone: the done shards stay whole
        if bar is not None:
            bar.close()
        raise RunFailedError(
            "out",
            "a run directory that can be written",
            str(store.root),
            f"An I/O error stopped the run: {error}. The {len(store.done_shards())} shards "
            "done are kept; fix the cause and run the same command again to finish.",
        ) from error
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        say(
            f"Interrupted: {len(store.done_shards())} shards are done and kept; "
            "run the same command again to finish."
        )
        raise
    if bar is not None:
        bar.close()
    notes = list(plan.notes)
    if plan.sanity and not (store.root / "sanity.parquet").exists():
        _sanity(store, source, job, plan, notes, say)
    store.discard_incoming()
    result = Run(store.root)
    summary = result.summary()
    summary.write(store.root)
    if progress and verdict:
        say(summary.text())
    return result


# -- planning ----------------------------------------------------------------------------


def _plan(
    model: Any,
    data: Any,
    *,
    methods: Any,
    metrics: Any,
    target: str,
    settings: dict[str, Any],
    layer: str | None,
    preset: str,
    class_names: Sequence[str] | None,
    label_names: Sequence[str] | None,
    shard_size: int,
    seed: int,
    batch_size: int | None,
    maps: str,
    map_format: str | None,
    steps: int | None,
    sanity_samples: int,
    sanity_checkpoints: int,
    device: Any,
    model_spec: str | None,
    engine: str,
    source_options: dict[str, Any],
) -> _Plan:
    _positive("shard_size", shard_size)
    _positive("sanity_samples", sanity_samples)
    if batch_size is not None:
        _positive("batch_size", batch_size)
    if steps is not None:
        _positive("steps", steps)
    if target not in ("predicted", "label"):
        raise SettingError("target", "'predicted' or 'label'", target, "")
    if maps not in ("2d", "full"):
        raise SettingError("maps", "'2d' or 'full'", maps, "")
    fmt = map_files.check_format(map_format)
    from attrib.text.models import TextClassifier

    text = isinstance(model, TextClassifier)
    source = open_source(
        data,
        preset=preset,
        class_names=class_names,
        **({"text_column": source_options.pop("text_column", "text")} if text else {}),
        **source_options,
    )
    if source.kind == "text" and not text:
        raise SettingError(
            "model",
            "a TextClassifier for a source of texts",
            model,
            "Wrap the model: attrib.text.TextClassifier(model, tokenizer).",
        )
    if source.kind == "images" and text:
        raise SettingError("data", "texts for a TextClassifier", source.describe(), "")
    if not len(source):
        raise SettingError("data", "at least one sample", source.describe().get("location"), "")
    names = _metric_names(metrics, text)
    sanity = SANITY in names
    per_sample = tuple(m for m in names if m != SANITY)
    notes: list[str] = []
    device = _device(model, device, text)
    if text:
        built = _text_methods(methods, settings)
        shape = None
    else:
        if not isinstance(model, torch.nn.Module):
            raise SettingError("model", "an nn.Module (or a TextClassifier)", model, "")
        if model.training:
            raise SettingError(
                "model",
                "a model in eval mode (dropout and batch statistics would change every map)",
                "a model in training mode",
                "Call model.eval() first.",
            )
        first = _first_sample(source)
        shape = tuple(first.input.shape)
        built = _image_methods(
            methods, model, shape, layer, batch_size, settings, lambda: _references(source)
        )
        masked = first.mask is not None
        if not masked and any(m in LOCALIZATION for m in per_sample):
            dropped = [m for m in per_sample if m in LOCALIZATION]
            if metrics != "all":
                raise SettingError(
                    "metrics",
                    "localization metrics only for a source with masks",
                    dropped,
                    "Give a manifest with a mask column, or leave them out.",
                )
            per_sample = tuple(m for m in per_sample if m not in LOCALIZATION)
    job = Job(
        kind=source.kind,
        model=model,
        methods=built,
        metrics=per_sample,
        target=target,
        seed=seed,
        batch_size=batch_size,
        full=maps == "full",
        input_shape=shape,
        device=str(device),
        steps=steps,
        class_names=source.class_names,
    )
    fingerprint = model_fingerprint(model.model if text else model)
    manifest = Manifest(
        attrib_version=VERSION,
        torch_version=torch.__version__,
        model={
            "spec": model_spec or type(model.model if text else model).__qualname__,
            "sha256": fingerprint,
        },
        methods={
            name: (settings_record(m) if not text else {"method": m[0], "settings": m[1]})
            for name, m in built.items()
        },
        metrics=[*per_sample, *([SANITY] if sanity else [])],
        source=source.describe(),
        seed=seed,
        shard_size=shard_size,
        target=target,
        maps={"keep": maps, "format": fmt, "dtype": "float16"},
        sanity=(
            {
                "samples": sanity_samples,
                "checkpoints": sanity_checkpoints,
                "measure": "spearman_abs",
            }
            if sanity
            else {}
        ),
        device=str(device),
        engine=engine,
        metric_settings={"steps": steps} if per_sample else {},
        extra={
            "input_shape": list(shape) if shape else None,
            "class_names": _class_names(model, source, label_names or class_names, text),
        },
    )
    return _Plan(source, job, manifest, sanity, notes)


def _class_names(
    model: Any, source: Source, given: Sequence[str] | None, text: bool
) -> list[str] | None:
    """The model's class names where known (for the summary's per-class table)."""
    if given is not None:
        return list(given)
    if text and getattr(model, "labels", None):
        return list(model.labels)
    return source.class_names


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError(name, "a positive int", value, "")


def _metric_names(metrics: str | Sequence[str], text: bool) -> list[str]:
    if isinstance(metrics, str):
        names = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = list(metrics)
    if names == ["all"]:
        if text:
            raise SettingError(
                "metrics",
                "no metrics for a text run (its maps and predictions are stored; "
                "attrib erasure tests attention)",
                "all",
                "",
            )
        return [*IMAGE_METRICS, SANITY]
    if text and names:
        raise SettingError("metrics", "no metrics for a text run", names, "")
    known = [*IMAGE_METRICS, SANITY, "all"]
    for name in names:
        if name not in known:
            hint = did_you_mean(str(name), known)
            raise SettingError("metrics", f"names from {known}", name, hint or "")
    return list(dict.fromkeys(names))


def _device(model: Any, device: Any, text: bool) -> torch.device:
    if device is not None:
        chosen = torch.device(device)
    else:
        module = model.model if text else model
        parameter = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        chosen = parameter.device if parameter is not None else torch.device("cpu")
    return chosen


def _first_sample(source: Source) -> Sample:
    """The first readable sample among the first hundred: every input of the run must have
    its shape, and localization metrics need it to have a mask."""
    errors = []
    for i in range(min(len(source), 100)):
        sample = source[i]
        if sample.error is None and isinstance(sample.input, torch.Tensor):
            return sample
        errors.append(sample.error)
    raise RunFailedError(
        "data",
        "samples that can be read",
        source.describe().get("location"),
        f"None of the first {len(errors)} could: {errors[0] if errors else ''}",
    )


def _image_methods(
    methods: Any,
    model: torch.nn.Module,
    shape: tuple[int, ...],
    layer: str | None,
    batch_size: int | None,
    settings: dict[str, Any],
    references: Callable[[], torch.Tensor],
) -> dict[str, Any]:
    if isinstance(methods, Mapping):
        return {str(k): _check_built(k, v, model) for k, v in methods.items()}
    if isinstance(methods, str):
        names: list[Any] = catalogue.resolve_names(methods, IMAGE_INPUTS, argument="methods")
    else:
        names = list(methods)
    if not names:
        raise SettingError("methods", "at least one method", methods, "")
    strings = [n for n in names if isinstance(n, str)]
    if strings:
        strings = catalogue.resolve_names(",".join(strings), IMAGE_INPUTS, argument="methods")
        check_settings(strings, settings)
    size = (int(shape[-2]), int(shape[-1])) if len(shape) >= 2 else (1, 1)
    takes_references = any(
        catalogue.find(n).takes("references") for n in strings if catalogue.get(n) is not None
    )
    context = ImageContext(
        model,
        size,
        layer=layer,
        references=references() if takes_references else None,
        batch_size=batch_size,
        settings=settings,
    )
    out: dict[str, Any] = {}
    for item in names:
        if isinstance(item, str):
            for name in catalogue.resolve_names(item, IMAGE_INPUTS, argument="methods"):
                built = build_for_image(name, context)
                out[name] = _at_layer_resolution(built, settings_for(name, settings))
        else:
            name = getattr(item, "name", type(item).__name__)
            if name in out:
                raise SettingError("methods", "methods with different names (use a dict)", name, "")
            out[name] = _check_built(name, item, model)
    return out


def _at_layer_resolution(method: Any, given: Mapping[str, Any]) -> Any:
    """A CAM of one layer as the run keeps it: its map at the layer's resolution
    (``upsample=False``), unless the user set ``upsample``.

    Bilinear upsampling is linear and ends a CAM's computation (after the ReLU; a min-max
    normalisation after it is undone and redone by ``work.at_input``), so the stored
    ``h x w`` map upsampled gives the input-resolution map exactly, and the metrics and the
    sanity check score that. A Grad-CAM map of resnet18 is then 7 x 7 float16 (98 bytes)
    instead of 224 x 224 (27.5 kB compressed), and writing it costs the run 0.1 ms per
    sample instead of 2.4 ms. Several layers' maps are fused at the input's resolution:
    those CAMs keep it."""
    if "upsample" in given or "upsample" not in _setting_names(method):
        return method
    layers = method.layer if isinstance(method.layer, tuple) else (method.layer,)
    if method.upsample is not True or len(layers) != 1:
        return method
    return method.replace(upsample=False)


def _setting_names(method: Any) -> tuple[str, ...]:
    names = getattr(type(method), "setting_names", None)
    return tuple(names()) if callable(names) else ()


REFERENCES = 16
"""Samples of the data (the first readable ones) that, with a black image, make the
reference distribution of Expected Gradients in a run."""


def _references(source: Source) -> torch.Tensor:
    found = []
    for i in range(min(len(source), 10 * REFERENCES)):
        sample = source[i]
        if sample.error is None and isinstance(sample.input, torch.Tensor):
            found.append(sample.input)
        if len(found) == REFERENCES:
            break
    stacked = torch.stack(found)
    return torch.cat([stacked, torch.zeros_like(stacked[:1])])


def _check_built(name: Any, method: Any, model: torch.nn.Module) -> Any:
    if not callable(method):
        raise SettingError("methods", "methods (called as method(x, target))", method, "")
    own = getattr(method, "model", None)
    if own is not None and own is not model and getattr(own, "module", None) is not model:
        raise SettingError(
            "methods",
            f"methods built on the run's model ({name} explains another model)",
            method,
            "",
        )
    return method


def _text_methods(methods: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """name -> (catalogue name, its settings) for ``attrib.text.explain_tokens``."""
    from attrib.text.explain import find_text_method

    if isinstance(methods, Mapping) or not isinstance(methods, (str, Sequence)):
        raise SettingError("methods", "method names for a text run", methods, "")
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else methods
    infos = []
    for name in names:
        if not isinstance(name, str):
            raise SettingError("methods", "method names for a text run", name, "")
        infos.append(find_text_method(name))
    check_settings([i.name for i in infos], settings)
    return {i.name: (i.name, settings_for(i.name, settings)) for i in infos}


# -- running -----------------------------------------------------------------------------


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(progress: Any, total: int, done: int) -> Any:
    if progress is True:
        return RunProgress(total, done)
    if callable(progress):
        return _Callback(progress, total, done)
    return None


class _Callback:
    def __init__(self, callback: Callable[[int, int], None], total: int, done: int) -> None:
        self.callback, self.total, self.done = callback, total, done

    def update(self, samples: int, errors: int = 0) -> None:
        self.done += samples
        self.callback(self.done, self.total)

    def close(self) -> None:
        pass


class _Guard:
    """Counts committed shards; stops the run when the first shards fail entirely."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.ok = 0

    def committed(self, result: ShardResult) -> None:
        self.outcome(outcome_of(result))

    def outcome(self, outcome: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(outcome["ok"] + outcome["errors"], outcome["errors"])
        if outcome["failed"] and self.ok == 0:
            raise RunFailedError(
                "run",
                "a model and methods that can explain these samples",
                f"every readable sample of the first shard failing (the first: {outcome['first']})",
                "The shard is stored with its errors; fix the cause and start over with "
                "--force-new (force_new=True).",
            )
        self.ok += outcome["ok"]


def _sanity(
    store: RunStore, source: Source, job: Job, plan: _Plan, notes: list[str], say: Any
) -> None:
    settings = plan.manifest.sanity
    if job.kind != "images":
        return
    samples_table = store.samples().to_pylist()
    ok = {row["index"]: row for row in samples_table if row["status"] == "ok"}
    chosen = pick(list(ok), int(settings["samples"]))
    if not chosen:
        notes.append("sanity check: no sample was explained")
        return
    say(f"Sanity check (model randomization) on {len(chosen)} samples ...")
    samples: list[Sample] = [source[i] for i in chosen]
    kept = [s for s in samples if s.error is None]
    if job.target == "label":
        targets = torch.tensor([int(ok[s.index]["label"]) for s in kept])
    else:
        targets = torch.tensor([int(ok[s.index]["prediction"]) for s in kept])
    rows = sanity_rows(job, kept, targets, checkpoints=int(settings["checkpoints"]), notes=notes)
    store.write_notes(notes)  # first: a resume skips the check once sanity.parquet exists
    store.write_sanity(rows)
    for note in notes:
        say(note)

"""One shard of a run: explain its samples with every method, score every metric.

Both engines call ``ShardWorker.explain(shard, samples)`` and commit what it returns; the
store never sees half a shard. For each shard:

1. samples that could not be read, or whose input has another shape than the run's, become
   error rows (``status="error"`` and the reason);
2. one forward gives each sample's prediction and top-k probabilities; the target is the
   predicted class (or the label, ``target="label"``). Explaining the predicted class, the
   first deterministic method's own forward is that forward (``Attribution.output``);
3. every method explains the batch. Methods that draw random numbers (those with a ``seed``
   setting) explain one sample at a time with the seed ``mix_seed(run seed, sample
   index)``: a sample's map is the same in any shard, any process and any resume;
4. each map is kept as one 2-D map per sample (``Attribution.saliency`` by the method's
   drawing rule: signed for attributions that add up to the score, else the largest
   magnitude over channels), in float16, at its own resolution (the input's, or a layer's
   for a method explained at a layer, which the metrics upsample bilinearly); optionally
   the full attribution too;
5. each metric scores each method's map and a random map of the same sample (seeded by its
   index), the baseline of the verdict (``attrib.metrics.verdict``).

A failure of the model or of a method on the batch is retried sample by sample, so that only
the samples that fail become error rows (with the method's name and the message); a metric
that fails for every sample of a method is recorded once in the shard's notes (scores are
then missing, not wrong). Out of memory halves the rows per forward (``RowBudget``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from attrib.core.errors import AttribError, SettingError
from attrib.core.result import Attribution
from attrib.core.seeding import mix_seed
from attrib.core.target import select_output
from attrib.methods import catalogue
from attrib.metrics.compare import METRICS, Evaluation
from attrib.runs.engines.shards import stack_rows
from attrib.runs.memory import RowBudget, is_out_of_memory
from attrib.runs.samples import Sample, SourceKind
from attrib.runs.schema import RANDOM_MAP
from attrib.runs.store import ShardResult

__all__ = [
    "IMAGE_METRICS",
    "LOCALIZATION",
    "NEEDS_METHOD",
    "Job",
    "ShardWorker",
    "at_input",
    "one_line",
    "outcome_of",
]

LOCALIZATION = ("pointing_game", "relevance_mass", "relevance_rank")
"""Metrics that need an object mask per sample (scored where the source has one)."""
NEEDS_METHOD = ("max_sensitivity", "completeness_gap", "random_logit", "randomization")
"""Metrics that explain again: no random-map baseline."""
IMAGE_METRICS = tuple(m for m in METRICS if m != "randomization")
"""Per-sample metrics of image runs (the randomization test runs once, at the end)."""


def outcome_of(result: ShardResult) -> dict[str, Any]:
    """What the driver learns of a committed shard: ``shard``, ``ok``, ``errors``, ``failed``
    (every readable sample failed in the model or a method) and ``first`` (that message)."""
    unreadable = set(result.unreadable)
    ok = sum(1 for row in result.samples if row["status"] == "ok")
    computed = [
        row["error"]
        for row in result.samples
        if row["status"] == "error" and row["index"] not in unreadable
    ]
    readable = len(result.samples) - len(unreadable)
    return {
        "shard": result.shard,
        "ok": ok,
        "errors": len(result.samples) - ok,
        "failed": readable > 0 and len(computed) == readable,
        "first": computed[0] if computed else "",
    }


def one_line(error: BaseException) -> str:
    """An exception as one line a table can hold: ``Type: first line``."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text}" if not isinstance(error, AttribError) else text


@dataclass
class Job:
    """What every shard of a run does (picklable: Ray sends it to its workers).

    Attributes:
        kind: ``"images"`` or ``"text"``.
        model: the ``nn.Module`` (images) or ``TextClassifier`` (text).
        methods: name -> method built on ``model`` (images), or name -> ``(method name,
            settings)`` for ``attrib.text.explain_tokens`` (text).
        metrics: per-sample metrics (``IMAGE_METRICS``).
        target: ``"predicted"`` or ``"label"``.
        seed: the run's seed (random methods, random maps, metrics).
        top_k: classes kept per sample in the samples table.
        batch_size: most rows per forward (``None``: the methods' own choice).
        full: keep each method's full attribution too, not only its 2-D map.
        input_shape: the shape every input must have (``None``: the first sample's).
        device: where the model runs.
        steps: points of the deletion, insertion and pixel-flipping curves (``None``: the
            metrics' own default, one point per 1% of the features).
    """

    kind: SourceKind
    model: Any
    methods: dict[str, Any]
    metrics: tuple[str, ...] = ()
    target: str = "predicted"
    seed: int = 0
    top_k: int = 5
    batch_size: int | None = None
    full: bool = False
    input_shape: tuple[int, ...] | None = None
    device: str = "cpu"
    steps: int | None = 20
    class_names: list[str] | None = field(default=None, repr=False)


class ShardWorker:
    """Explains shards of one ``Job`` (one per process; holds the model on its device)."""

    def __init__(self, job: Job, say: Callable[[str], None] | None = None) -> None:
        self.job = job
        self.budget = RowBudget(job.batch_size, say)
        self._random = {name: _takes_seed(method) for name, method in job.methods.items()}

    # -- the shard ---------------------------------------------------------------------

    def explain(self, shard: int, samples: Sequence[Sample]) -> ShardResult:
        rows = {s.index: _row(s, shard) for s in samples}
        result = ShardResult(shard=shard, samples=[])
        good = [s for s in samples if s.error is None and self._fits(s, rows)]
        if good and self.job.kind == "images":
            self._images(good, rows, result)
        elif good:
            self._texts(good, rows, result)
        result.samples = [rows[s.index] for s in samples]
        kept = {s.index for s in good}
        result.unreadable = [s.index for s in samples if s.index not in kept]
        return result

    def _fits(self, sample: Sample, rows: dict[int, dict[str, Any]]) -> bool:
        if self.job.kind == "text":
            if not isinstance(sample.input, str):
                _fail(rows[sample.index], f"expected a text, got {type(sample.input).__name__}")
                return False
            return True
        if not isinstance(sample.input, torch.Tensor):
            _fail(rows[sample.index], f"expected a tensor, got {type(sample.input).__name__}")
            return False
        if self.job.input_shape is None:
            self.job.input_shape = tuple(sample.input.shape)
        if tuple(sample.input.shape) != self.job.input_shape:
            _fail(
                rows[sample.index],
                f"input of shape {tuple(sample.input.shape)}, but this run's inputs are "
                f"{self.job.input_shape} (choose a preprocessing that gives every image "
                "one size, e.g. --preprocess imagenet)",
            )
            return False
        return True

    # -- images ------------------------------------------------------------------------

    def _images(
        self, samples: list[Sample], rows: dict[int, dict[str, Any]], result: ShardResult
    ) -> None:
        job = self.job
        device = torch.device(job.device)
        x = stack_rows([s.input for s in samples]).to(device)
        attributions: dict[str, dict[int, Attribution]] = {}
        whole: dict[str, tuple[list[int], Attribution]] = {}  # a method's batch, unsplit
        first = self._shared_forward(x)
        if first is not None:  # the first method's forward gave the predictions
            name, joined, logits = first
            alive = list(range(len(samples)))
            attributions[name] = {i: _row_of(joined, i) for i in alive}
            whole[name] = (list(alive), joined)
        else:
            logits = self._each(samples, rows, "model", lambda idx: self._logits(x[idx]))
            alive = [i for i, s in enumerate(samples) if rows[s.index]["status"] == "ok"]
            if not alive:
                return
        targets = self._targets(samples, logits, rows, alive)
        alive = [i for i in alive if rows[samples[i].index]["status"] == "ok"]
        for name, method in job.methods.items():
            if not alive:
                break
            if name in attributions:
                continue
            attributions[name] = self._explain(name, method, samples, x, targets, alive, rows)
            alive = [i for i in alive if i in attributions[name]]
        if not alive:
            return
        full: dict[str, Attribution] = {}
        maps: dict[str, torch.Tensor] = {}
        for name in job.methods:
            kept = whole.get(name)
            full[name] = (
                kept[1]
                if kept is not None and kept[0] == alive
                else _join([attributions[name][i] for i in alive])
            )
            maps[name] = _map(full[name]).float()
            # float16 holds magnitudes up to 65504
            largest = _largest_per_row(maps[name], full[name] if job.full else None)
            for k, i in enumerate(alive):
                value = float(largest[k])
                if value != value:
                    _fail(rows[samples[i].index], f"{name}: NaN in the attributions")
                elif value > _FLOAT16_MAX:
                    _fail(
                        rows[samples[i].index],
                        f"{name}: attributions up to {value:.3g}, beyond what float16 maps "
                        "hold (65504); explain a score of smaller scale (probabilities, "
                        "output=...)",
                    )
        keep = [k for k, i in enumerate(alive) if rows[samples[i].index]["status"] == "ok"]
        if not keep:
            return
        if len(keep) < len(alive):
            kept_rows = torch.tensor(keep, dtype=torch.long)
            full = {name: _rows(a, kept_rows) for name, a in full.items()}
            maps = {name: m[kept_rows.to(m.device)] for name, m in maps.items()}
            alive = [alive[k] for k in keep]
        ids = [samples[i].id for i in alive]
        for name in job.methods:
            result.maps[name] = (ids, maps[name].cpu().numpy().astype(np.float16))
            if job.full and not isinstance(full[name].values, dict):
                values = full[name].values.detach().cpu().numpy().astype(np.float16)
                result.full[name] = (ids, values)
        if job.metrics:
            index = torch.tensor(alive, dtype=torch.long)
            # the inputs of the samples explained: the whole batch, uncopied, where none failed
            xs = x if alive == list(range(len(x))) else x[index.to(x.device)]
            target = targets[index.to(targets.device)]
            masks = _masks([samples[i] for i in alive], xs.shape[-2:], device)
            self._score(samples, alive, xs, target, maps, full, masks, result)

    def _shared_forward(self, x: torch.Tensor) -> tuple[str, Attribution, torch.Tensor] | None:
        """``(name, attribution, logits)`` of the first deterministic method explaining the
        predicted class of every sample, whose own forward gives the predictions: a run of
        Saliency then costs what Saliency costs, not a forward more. ``None`` (the run then
        takes one forward of its own) where the target is the label, every method draws at
        random, the method fails on the batch, or its output is not one row of scores per
        sample."""
        if self.job.target != "predicted":
            return None
        name = next((n for n in self.job.methods if not self._random[n]), None)
        if name is None:
            return None
        from attrib.core.batching import default_batch_size

        method = self.job.methods[name]

        def call(rows_per_forward: int | None) -> Attribution:
            return method(x, "predicted", **_rows_setting(method, rows_per_forward))

        try:
            joined = self.budget.run(call, default_batch_size(x[:1], 10**9))
            logits = select_output(joined.output).detach().float()
        except Exception as error:
            if isinstance(error, KeyboardInterrupt) or is_out_of_memory(error):
                raise
            return None  # the usual path retries sample by sample and names the failures
        target = joined.target
        if (
            logits.dim() < 2
            or len(logits) != len(x)
            or _length(joined) != len(x)
            or not isinstance(target, torch.Tensor)
            or not torch.equal(target.cpu(), logits.flatten(1).argmax(dim=-1).cpu())
        ):
            return None
        return name, joined, logits

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        from attrib.core.batching import default_batch_size

        def forward(rows: int | None) -> torch.Tensor:
            step = rows or len(x)
            out = []
            with torch.no_grad():
                for start in range(0, len(x), step):
                    out.append(select_output(self.job.model(x[start : start + step])).float())
            return torch.cat(out)

        return self.budget.run(forward, default_batch_size(x, len(x)))

    def _targets(
        self,
        samples: list[Sample],
        logits: torch.Tensor,
        rows: dict[int, dict[str, Any]],
        alive: list[int],
    ) -> torch.Tensor:
        k = min(self.job.top_k, logits.shape[-1])
        probabilities = torch.softmax(logits.flatten(1), dim=-1)
        top = probabilities.topk(k, dim=-1)
        targets = logits.flatten(1).argmax(dim=-1)
        for i in alive:
            row = rows[samples[i].index]
            row["prediction"] = int(targets[i])
            row["top_classes"] = [int(c) for c in top.indices[i]]
            row["top_probabilities"] = [float(p) for p in top.values[i]]
            if self.job.target == "label":
                if samples[i].label is None:
                    _fail(row, "no label to explain (target='label' needs a labelled source)")
                else:
                    targets[i] = int(samples[i].label)  # type: ignore[arg-type]
        return targets

    def _explain(
        self,
        name: str,
        method: Any,
        samples: list[Sample],
        x: torch.Tensor,
        targets: torch.Tensor,
        alive: list[int],
        rows: dict[int, dict[str, Any]],
    ) -> dict[int, Attribution]:
        from attrib.core.batching import default_batch_size

        natural = default_batch_size(x[:1], 10**9)

        def call(idx: list[int], rows_per_forward: int | None) -> Attribution:
            settings = _rows_setting(method, rows_per_forward)
            if self._random[name]:
                settings["seed"] = mix_seed(self.job.seed, samples[idx[0]].index)
            index = torch.tensor(idx, dtype=torch.long, device=x.device)
            return method(x[index], targets[index.to(targets.device)], **settings)

        def run(idx: list[int]) -> Attribution:
            return self.budget.run(lambda r: call(idx, r), natural)

        out: dict[int, Attribution] = {}
        if self._random[name]:  # one sample per call: its seed is its own
            for i in alive:
                attribution = self._one(samples[i], rows, name, partial(run, [i]))
                if attribution is not None:
                    out[i] = attribution
            return out
        try:
            joined = run(alive)
        except Exception as error:
            if isinstance(error, KeyboardInterrupt) or is_out_of_memory(error):
                raise
            for i in alive:
                attribution = self._one(samples[i], rows, name, partial(run, [i]))
                if attribution is not None:
                    out[i] = attribution
            return out
        for k, i in enumerate(alive):
            out[i] = _row_of(joined, k)
        return out

    def _one(
        self,
        sample: Sample,
        rows: dict[int, dict[str, Any]],
        what: str,
        work: Callable[[], Attribution],
    ) -> Attribution | None:
        try:
            return work()
        except Exception as error:
            if is_out_of_memory(error):
                raise
            _fail(rows[sample.index], f"{what}: {one_line(error)}")
            return None

    def _each(
        self,
        samples: list[Sample],
        rows: dict[int, dict[str, Any]],
        what: str,
        work: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """``work`` on every sample at once, else one by one (failures become errors)."""
        everyone = torch.arange(len(samples))
        try:
            return work(everyone)
        except Exception as error:
            if is_out_of_memory(error):
                raise
        parts: list[torch.Tensor | None] = []
        for i, sample in enumerate(samples):
            try:
                parts.append(work(everyone[i : i + 1]))
            except Exception as error:
                if is_out_of_memory(error):
                    raise
                _fail(rows[sample.index], f"{what}: {one_line(error)}")
                parts.append(None)
        shape = next((p.shape[1:] for p in parts if p is not None), (1,))
        filler = torch.full((1, *shape), float("nan"))
        return torch.cat([p.cpu() if p is not None else filler for p in parts])

    def _score(
        self,
        samples: list[Sample],
        alive: list[int],
        x: torch.Tensor,
        target: torch.Tensor,
        maps: dict[str, torch.Tensor],
        full: dict[str, Attribution],
        masks: tuple[torch.Tensor, torch.Tensor] | None,
        result: ShardResult,
    ) -> None:
        job = self.job
        indices = [samples[i].index for i in alive]
        ids = [samples[i].id for i in alive]
        pool: dict[str, tuple[torch.Tensor, Attribution, Any]] = {}
        for name, method in job.methods.items():
            scored = at_input(maps[name], x.shape[-2:], getattr(method, "normalize", None))
            attribution = full[name]
            if scored is not maps[name] and attribution.channel_dim is None:
                # a layer's map: the metrics that read the attribution (infidelity, ...)
                # read the map they score, at the input's resolution
                attribution = replace(attribution, values=scored)
            pool[name] = (scored, attribution, method)
        random = random_maps(x.shape[0], x.shape[-2:], job.seed, indices).to(x.device)
        pool[RANDOM_MAP] = (
            random,
            Attribution(values=random, method=RANDOM_MAP, channel_dim=None),
            None,
        )
        seed = mix_seed(job.seed, result.shard)
        for metric in job.metrics:
            function, _ = METRICS[metric]
            localization = metric in LOCALIZATION
            if localization and masks is None:
                continue
            for name, (map_values, attribution, method) in pool.items():
                if name == RANDOM_MAP and metric in NEEDS_METHOD:
                    continue
                keep = masks[0] if localization and masks is not None else None
                select = keep if keep is not None else torch.arange(len(alive))
                if len(select) == 0:
                    continue
                on = select.to(x.device)
                evaluation = _RunEvaluation(
                    model=job.model,
                    x=x[on],
                    target=target[on.to(target.device)],
                    method=method,
                    attribution=_rows(attribution, on),
                    masks=masks[1] if localization and masks is not None else None,
                    batch_size=self.budget.rows,
                    seed=seed,
                    steps=job.steps,
                    map_values=map_values[on],
                )
                try:
                    values = self.budget.run(partial(_metric, function, evaluation), len(on))
                except Exception as error:
                    if is_out_of_memory(error):
                        raise
                    result.notes.append(f"{metric} of {name}: {one_line(error)}")
                    continue
                for k, value in zip(select.tolist(), values.tolist(), strict=True):
                    result.scores.append(
                        {
                            "id": ids[k],
                            "index": indices[k],
                            "method": name,
                            "metric": metric,
                            "value": float(value),
                        }
                    )

    # -- text --------------------------------------------------------------------------

    def _texts(
        self, samples: list[Sample], rows: dict[int, dict[str, Any]], result: ShardResult
    ) -> None:
        from attrib.text.explain import explain_tokens

        job = self.job
        classifier = job.model
        texts = [s.input for s in samples]

        def logits_of(idx: torch.Tensor) -> torch.Tensor:
            return classifier.logits([texts[int(i)] for i in idx], truncate=True).float()

        logits = self._each(samples, rows, "model", logits_of)
        alive = [i for i, s in enumerate(samples) if rows[s.index]["status"] == "ok"]
        if not alive:
            return
        targets = self._targets(samples, logits, rows, alive)
        alive = [i for i in alive if rows[samples[i].index]["status"] == "ok"]
        found: dict[str, dict[int, list[tuple[str, float]]]] = {}
        for name, (spec, settings) in job.methods.items():
            found[name] = {}
            random = "seed" in _text_settings(spec)

            def run(
                idx: list[int], spec: Any = spec, settings: Any = settings, random: bool = random
            ) -> Any:
                chosen = dict(settings)
                if random:
                    chosen["seed"] = mix_seed(job.seed, samples[idx[0]].index)
                if self.budget.rows is not None and "batch_size" in _text_settings(spec):
                    chosen["batch_size"] = self.budget.rows
                return explain_tokens(
                    classifier,
                    [texts[i] for i in idx],
                    spec,
                    target=[int(targets[i]) for i in idx],
                    truncate=True,
                    **chosen,
                ).scores()

            groups = [[i] for i in alive] if random else [alive]
            for group in groups:
                try:
                    scores = run(group)
                except Exception as error:
                    if is_out_of_memory(error):
                        raise
                    if len(group) == 1:
                        _fail(rows[samples[group[0]].index], f"{name}: {one_line(error)}")
                        continue
                    groups.extend([i] for i in group)
                    continue
                for k, i in enumerate(group):
                    found[name][i] = scores.tokens_and_scores(k)
            alive = [i for i in alive if i in found[name]]
        for name in job.methods:
            result.tokens[name] = [
                {
                    "id": samples[i].id,
                    "tokens": [t for t, _ in found[name][i]],
                    "scores": [float(v) for _, v in found[name][i]],
                }
                for i in alive
            ]


@dataclass(frozen=True)
class _RunEvaluation(Evaluation):
    """An ``Evaluation`` whose map per location is the run's stored map (before float16)."""

    map_values: torch.Tensor | None = None

    def location_maps(self) -> torch.Tensor:
        assert self.map_values is not None
        return self.map_values.detach()


def _metric(function: Callable[[Evaluation], Any], ev: Evaluation, rows: int | None) -> Any:
    return torch.as_tensor(function(replace(ev, batch_size=rows))).detach().float().cpu()


def random_maps(n: int, size: Sequence[int], seed: int, indices: Sequence[int]) -> torch.Tensor:
    """Uniform random maps in [0, 1), one per sample, seeded by the sample's index (as
    ``attrib.metrics.random_maps`` seeds by position): the same map in any shard."""
    h, w = int(size[0]), int(size[1])
    maps = torch.empty(n, h, w)
    for k, index in enumerate(indices):
        g = torch.Generator().manual_seed(mix_seed(seed, int(index)) >> 1)
        maps[k] = torch.rand(h, w, generator=g)
    return maps


_FLOAT16_MAX = 65504.0


def at_input(maps: torch.Tensor, size: Any, normalize: str | None = None) -> torch.Tensor:
    """Maps at a layer's resolution (a CAM kept at its layer's, a layer's conductance)
    upsampled bilinearly to the input's, as CAMs upsample, for the metrics that remove
    pixels; the stored maps keep theirs. A CAM that normalises its maps (its setting
    ``normalize="minmax"``) normalises after upsampling: min-max scaling is invariant to
    the positive affine map that scaled the stored map, so this gives the CAM's own
    upsampled map."""
    if maps.dim() != 3 or tuple(maps.shape[-2:]) == tuple(size):
        return maps
    upsampled = torch.nn.functional.interpolate(
        maps[:, None], size=tuple(size), mode="bilinear", align_corners=False
    )[:, 0]
    if normalize == "minmax":
        from attrib.methods.cam.maps import min_max

        upsampled = min_max(upsampled)
    return upsampled


def _largest_per_row(maps: torch.Tensor, full: Attribution | None) -> torch.Tensor:
    """The largest magnitude each sample's stored map (and full attribution) will hold
    (NaN where one holds a NaN)."""
    biggest = maps.flatten(1).abs().amax(dim=1).cpu()
    if full is not None and isinstance(full.values, torch.Tensor):
        values = full.values.detach().flatten(1).abs().amax(dim=1).float().cpu()
        biggest = torch.maximum(biggest, values)  # NaN wins, as it should
    return biggest


def _map(attribution: Attribution) -> torch.Tensor:
    """One 2-D map per sample, as drawn (``attrib.viz.maps.default_reduction``)."""
    if isinstance(attribution.values, dict):
        raise SettingError("inputs", "one image tensor per sample", "a dict of inputs", "")
    if attribution.channel_dim is None:
        values = attribution.values.detach()
        return values if values.dim() == 3 else values.flatten(2).sum(-1)
    from attrib.viz.maps import default_reduction

    return attribution.saliency(default_reduction(attribution.method)).detach()


def _row(sample: Sample, shard: int) -> dict[str, Any]:
    return {
        "index": sample.index,
        "id": sample.id,
        "source": sample.source,
        "label": sample.label,
        "prediction": None,
        "top_classes": None,
        "top_probabilities": None,
        "status": "ok" if sample.error is None else "error",
        "error": sample.error,
        "shard": shard,
    }


def _fail(row: dict[str, Any], message: str) -> None:
    row["status"] = "error"
    row["error"] = message
    row["prediction"] = None
    row["top_classes"] = None
    row["top_probabilities"] = None


def _masks(
    samples: list[Sample], size: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(positions with a mask, their masks)`` or ``None`` when no sample has one."""
    where = [k for k, s in enumerate(samples) if s.mask is not None]
    if not where:
        return None
    masks = []
    for k in where:
        mask = samples[k].mask
        assert mask is not None
        if tuple(mask.shape[-2:]) != tuple(size):
            return None
        masks.append(mask.bool())
    return torch.tensor(where, dtype=torch.long), torch.stack(masks).to(device)


_PER_SAMPLE = ("values", "target", "delta", "output")
"""The fields of an ``Attribution`` with one row per sample (where they are tensors)."""


def _rows(attribution: Attribution, index: torch.Tensor) -> Attribution:
    """The attribution of the samples ``index`` (the same object when that is all of them)."""
    n = _length(attribution)
    if len(index) == n and bool((index.cpu() == torch.arange(n)).all()):
        return attribution
    changes: dict[str, Any] = {}
    for name in _PER_SAMPLE:
        value = getattr(attribution, name)
        if isinstance(value, dict):
            changes[name] = {k: v[index.to(v.device)] for k, v in value.items()}
        elif isinstance(value, torch.Tensor) and value.dim() > 0 and len(value) == n:
            changes[name] = value[index.to(value.device)]
    return replace(attribution, **changes)


def _length(attribution: Attribution) -> int:
    values = attribution.values
    if isinstance(values, dict):
        return len(next(iter(values.values())))
    return len(values)


def _row_of(attribution: Attribution, k: int) -> Attribution:
    return _rows(attribution, torch.tensor([k]))


def _join(parts: list[Attribution]) -> Attribution:
    """One attribution from per-sample ones, rows in order (a field that is not one tensor
    per sample in every part is kept from the first)."""
    if len(parts) == 1:
        return parts[0]
    changes: dict[str, Any] = {}
    for name in _PER_SAMPLE:
        values = [getattr(p, name) for p in parts]
        if all(isinstance(v, torch.Tensor) and v.dim() > 0 for v in values):
            changes[name] = torch.cat(values)
        elif all(isinstance(v, dict) for v in values):
            changes[name] = {k: torch.cat([v[k] for v in values]) for k in values[0]}
        elif name == "delta":
            changes[name] = None
    return replace(parts[0], **changes)


def _rows_setting(method: Any, rows: int | None) -> dict[str, Any]:
    """The call settings that cap ``method`` at ``rows`` per forward (none when unlimited,
    or when the method has no ``batch_size``)."""
    return {"batch_size": rows} if rows is not None and _takes(method, "batch_size") else {}


def _takes(method: Any, setting: str) -> bool:
    try:
        return setting in method.settings()
    except (AttributeError, TypeError):
        return False


def _takes_seed(method: Any) -> bool:
    """Whether ``method`` draws at random (then it explains one sample per call, seeded by
    the sample)."""
    if isinstance(method, tuple):  # text: (name, settings)
        return "seed" in _text_settings(method[0])
    return bool(getattr(method, "draws_at_random", _takes(method, "seed")))


def _text_settings(spec: Any) -> set[str]:
    if not isinstance(spec, str):
        return set()
    info = catalogue.get(spec)
    return {s.name for s in info.settings} if info is not None else set()


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """The per-sample metrics ``names``, checked (``SettingError`` naming the known ones)."""
    from attrib.core.errors import did_you_mean

    out = []
    for name in names:
        if name not in IMAGE_METRICS:
            hint = did_you_mean(name, IMAGE_METRICS)
            raise SettingError(
                "metrics", f"names from {list(IMAGE_METRICS)} or 'sanity'", name, hint or ""
            )
        out.append(name)
    return tuple(out)

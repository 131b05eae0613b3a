"""The runs an explorer serves: each run's tables read once through ``attrib.runs`` and held
as columns, so that a page of samples is a numpy mask, sort and slice.

A page of 10,000 samples filtered by class and correctness and sorted by a score costs a few
array operations over 10,000 values (well under a millisecond); the tables are never read
again per request. Maps and inputs are read per request, through ``Run.maps`` (which decodes
only the chunks that hold the asked ids) and ``Run.source``.

Nothing here takes a path from a request: runs are found by their served name, samples by an
id of the run's samples table, methods by the run's manifest; anything else is ``NotFoundError``.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from attrib.methods import catalogue
from attrib.runs import Run, open_run

__all__ = ["NotFoundError", "Page", "ServedRun", "open_served", "score_key"]

UNKNOWN = -1  # a null label or prediction in the int columns
HISTOGRAM_BINS = 20


class NotFoundError(LookupError):
    """A run, sample, method or file the explorer does not serve (the app answers 404)."""


def score_key(method: str, metric: str) -> str:
    """The name of a score column: ``"GradCAM:deletion"``."""
    return f"{method}:{metric}"


@dataclass
class Page:
    total: int
    offset: int
    rows: list[dict[str, Any]]


@dataclass
class ServedRun:
    """One run, its tables as columns (see the module)."""

    name: str
    run: Run
    kind: str
    class_names: list[str] | None
    ids: list[str]
    index_of: dict[str, int]
    labels: np.ndarray
    predictions: np.ndarray
    statuses: np.ndarray
    errors: list[str | None]
    sources: list[str]
    top_classes: list[list[int] | None]
    top_probabilities: list[list[float] | None]
    scores: dict[str, np.ndarray]
    methods: list[str]
    metrics: list[str]
    _source: Any = None
    _source_opened: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _summary: dict[str, Any] | None = None

    # -- the tables ----------------------------------------------------------------------

    @cached_property
    def correct(self) -> np.ndarray:
        """1 where the prediction is the label, 0 where it is not, -1 where unknown."""
        known = (self.labels != UNKNOWN) & (self.predictions != UNKNOWN)
        return np.where(known, (self.labels == self.predictions).astype(np.int64), -1)

    def class_name(self, cls: int | None) -> str | None:
        if cls is None or cls == UNKNOWN:
            return None
        names = self.class_names
        return names[cls] if names is not None and 0 <= cls < len(names) else str(cls)

    def describe(self) -> dict[str, Any]:
        """What the overview needs to know about the run."""
        ok = int((self.statuses == "ok").sum())
        return {
            "name": self.name,
            "kind": self.kind,
            "samples": len(self.ids),
            "ok": ok,
            "errors": len(self.ids) - ok,
            "methods": [
                {"name": m, "signed": _signed(m), "maps": self.kind == "images"}
                for m in self.methods
            ],
            "metrics": self.metrics,
            "score_columns": [
                {"key": key, "method": key.split(":")[0], "metric": key.split(":", 1)[1]}
                for key in self.scores
            ],
            # position k names class k (the class filter sends k)
            "classes": self.class_names
            or [str(c) for c in range(int(self.labels.max(initial=UNKNOWN)) + 1)],
            "model": self.run.manifest.model.get("spec"),
            "target": self.run.manifest.target,
        }

    def page(
        self,
        *,
        cls: int | None = None,
        correct: bool | None = None,
        status: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        """The samples that pass the filters, sorted by a score column (samples without
        that score last), ``limit`` of them from ``offset``."""
        keep = np.ones(len(self.ids), dtype=bool)
        if cls is not None:
            keep &= self.labels == cls
        if correct is not None:
            keep &= self.correct == int(correct)
        if status is not None:
            keep &= self.statuses == status
        chosen = np.flatnonzero(keep)
        values = None
        if sort is not None:
            if sort not in self.scores:
                raise NotFoundError(f"no score column {sort!r}")
            values = self.scores[sort][chosen]
            order = np.argsort(-values if descending else values, kind="stable")
            missing = np.isnan(values[order])
            chosen = np.concatenate([chosen[order[~missing]], chosen[order[missing]]])
        page = chosen[offset : offset + limit]
        rows = [self.row(int(i)) for i in page]
        if sort is not None:
            for row, i in zip(rows, page, strict=True):
                row["sort_value"] = _number(self.scores[sort][i])
        return Page(len(chosen), offset, rows)

    def row(self, i: int) -> dict[str, Any]:
        label, prediction = int(self.labels[i]), int(self.predictions[i])
        correct = int(self.correct[i])
        text = self.kind == "text"
        out = {
            "id": self.ids[i],
            "index": i,
            "name": self.ids[i] if text else os.path.basename(self.sources[i]) or self.ids[i],
            "label": None if label == UNKNOWN else label,
            "label_name": self.class_name(label),
            "prediction": None if prediction == UNKNOWN else prediction,
            "prediction_name": self.class_name(prediction),
            "correct": None if correct < 0 else bool(correct),
            "status": str(self.statuses[i]),
            "error": self.errors[i],
        }
        if text:
            snippet = self._text(i) or ""
            out["text"] = snippet if len(snippet) <= 160 else snippet[:159] + "…"
        return out

    def position(self, sample_id: str) -> int:
        if not isinstance(sample_id, str) or sample_id not in self.index_of:
            raise NotFoundError("no such sample")
        return self.index_of[sample_id]

    def sample(self, sample_id: str) -> dict[str, Any]:
        """One sample: its row, top classes, scores per method and metric, tokens (texts)."""
        i = self.position(sample_id)
        out = self.row(i)
        top = self.top_classes[i] or []
        probabilities = self.top_probabilities[i] or []
        out["top"] = [
            {"class": int(c), "name": self.class_name(int(c)), "probability": _number(p)}
            for c, p in zip(top, probabilities, strict=False)
        ]
        scores: dict[str, dict[str, float | None]] = {}
        for key, column in self.scores.items():
            method, metric = key.split(":", 1)
            scores.setdefault(method, {})[metric] = _number(column[i])
        out["scores"] = scores
        out["methods"] = [{"name": m, "signed": _signed(m)} for m in self.methods]
        if self.kind == "text":
            out["text"] = self._text(i)
            out["tokens"] = self.tokens(sample_id)
        return out

    # -- maps, inputs, tokens --------------------------------------------------------------

    def check_method(self, method: str) -> str:
        if not isinstance(method, str) or method not in self.methods:
            raise NotFoundError("no such method in this run")
        return method

    def map(self, sample_id: str, method: str) -> np.ndarray:
        """The stored 2-D map (float32) of one sample and method."""
        i = self.position(sample_id)
        self.check_method(method)
        if self.kind != "images" or self.statuses[i] != "ok":
            raise NotFoundError("no map for this sample")
        _, maps = self.run.maps(method, [self.ids[i]])
        return np.asarray(maps[0], dtype=np.float32)

    def source(self) -> Any:
        with self._lock:
            if not self._source_opened:
                self._source = self.run.source()
                self._source_opened = True
        return self._source

    def pixels(self, sample_id: str) -> np.ndarray | None:
        """The input as drawn ``(H, W, 3)`` in [0, 1], or ``None`` where the source cannot be
        read again (a dataset object, a moved folder)."""
        i = self.position(sample_id)
        source = self.source()
        if source is None or self.kind != "images" or i >= len(source):
            return None
        sample = source[i]
        if sample.error is not None or sample.id != self.ids[i]:
            return None
        if sample.pixels is not None:
            return np.asarray(sample.pixels, dtype=np.float32)
        tensor = sample.input
        if tensor is None or tensor.dim() != 3:
            return None
        picture = tensor.permute(1, 2, 0).numpy()
        if picture.shape[-1] == 1:
            picture = np.repeat(picture, 3, axis=-1)
        return np.clip(picture, 0.0, 1.0).astype(np.float32)

    def tokens(self, sample_id: str) -> dict[str, Any]:
        """A text run's tokens and their scores per method."""
        out: dict[str, Any] = {}
        for method in self.methods:
            table = self.run.tokens(method)
            where = [k for k, v in enumerate(table["id"].to_pylist()) if v == sample_id]
            if where:
                row = table.slice(where[0], 1).to_pylist()[0]
                words, word_scores = _words(row["tokens"], row["scores"])
                out[method] = {
                    "tokens": row["tokens"],
                    "scores": [_number(v) for v in row["scores"]],
                    "words": words,
                    "word_scores": [_number(v) for v in word_scores],
                    "signed": _signed(method),
                }
        return out

    def _text(self, i: int) -> str | None:
        source = self.source()
        if source is None or i >= len(source):
            return None
        sample = source[i]
        return sample.input if isinstance(sample.input, str) else None

    # -- the methods page ------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The verdict (``RunSummary.to_json`` with per-class numbers), the sanity check's
        similarity per randomization step, and each score column's histogram."""
        with self._lock:
            if self._summary is None:
                self._summary = self._make_summary()
        return self._summary

    def _make_summary(self) -> dict[str, Any]:
        verdict = self.run.summary(by_class=True).to_json()
        if verdict.get("by_class"):
            for entry in verdict["by_class"]["classes"]:
                entry["name"] = self.class_name(entry["class"])
        return {
            "run": self.name,
            "verdict": _clean(verdict),
            "sanity": self._sanity_curves(),
            "histograms": self._histograms(),
        }

    def _sanity_curves(self) -> list[dict[str, Any]]:
        table = self.run.sanity
        if not table.num_rows:
            return []
        rows = table.select(["method", "step", "layer", "similarity"]).to_pylist()
        curves: dict[str, dict[int, list[float]]] = {}
        layers: dict[int, str] = {}
        for row in rows:
            curves.setdefault(row["method"], {}).setdefault(row["step"], []).append(
                row["similarity"]
            )
            layers[row["step"]] = row["layer"]
        return [
            {
                "method": method,
                "steps": [
                    {
                        "step": step,
                        "layer": layers.get(step, ""),
                        "mean": _number(float(np.nanmean(values))),
                    }
                    for step, values in sorted(steps.items())
                ],
            }
            for method, steps in curves.items()
        ]

    def _histograms(self) -> list[dict[str, Any]]:
        """Per metric one range, so that the methods' histograms can be compared."""
        out = []
        for metric in self.metrics:
            keys = [k for k in self.scores if k.split(":", 1)[1] == metric]
            every = np.concatenate([self.scores[k] for k in keys]) if keys else np.zeros(0)
            finite = every[np.isfinite(every)]
            if not finite.size:
                continue
            low, high = float(finite.min()), float(finite.max())
            if high <= low:
                high = low + 1.0
            edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
            for key in keys:
                values = self.scores[key]
                values = values[np.isfinite(values)]
                counts, _ = np.histogram(values, bins=edges)
                out.append(
                    {
                        "key": key,
                        "method": key.split(":")[0],
                        "metric": metric,
                        "low": low,
                        "high": high,
                        "counts": counts.tolist(),
                        "mean": _number(float(values.mean())) if values.size else None,
                    }
                )
        return out


def open_served(path: str | os.PathLike[str], name: str) -> ServedRun:
    """Read a run directory's tables once (``attrib.runs.open_run``)."""
    import pyarrow.compute as pc

    run = open_run(path)
    samples = run.samples
    n = samples.num_rows
    ids = [str(i) for i in samples["id"].to_pylist()]
    manifest = run.manifest
    names = manifest.extra.get("class_names") or manifest.source.get("class_names")
    scores: dict[str, np.ndarray] = {}
    table = run.scores
    index_of = {k: i for i, k in enumerate(ids)}
    metrics = [m for m in manifest.metrics if m != "sanity"]
    if table.num_rows:
        positions = np.array([index_of.get(i, -1) for i in table["id"].to_pylist()])
        method_column = table["method"]
        metric_column = table["metric"]
        values = table["value"].to_numpy(zero_copy_only=False).astype(np.float64)
        for method in manifest.methods:
            for metric in metrics:
                picked = pc.and_(pc.equal(method_column, method), pc.equal(metric_column, metric))
                where = np.asarray(picked.to_numpy(zero_copy_only=False), dtype=bool)
                where &= positions >= 0
                if where.any():
                    column = np.full(n, np.nan)
                    column[positions[where]] = values[where]
                    scores[score_key(method, metric)] = column
    return ServedRun(
        name=name,
        run=run,
        kind=str(manifest.source.get("kind") or "images"),
        class_names=[str(c) for c in names] if names else None,
        ids=ids,
        index_of=index_of,
        labels=_ints(samples["label"]),
        predictions=_ints(samples["prediction"]),
        statuses=np.asarray(samples["status"].to_pylist(), dtype=object),
        errors=samples["error"].to_pylist(),
        sources=[str(s or "") for s in samples["source"].to_pylist()],
        top_classes=samples["top_classes"].to_pylist(),
        top_probabilities=samples["top_probabilities"].to_pylist(),
        scores=scores,
        methods=list(manifest.methods),
        metrics=metrics,
    )


def served_names(paths: list[str]) -> list[str]:
    """A short name per run (its folder's name; ``-2``, ``-3`` for repeated names)."""
    out: list[str] = []
    for path in paths:
        base = os.path.basename(os.path.normpath(path)) or "run"
        name, k = base, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        out.append(name)
    return out


SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>", "<cls>", "<sep>"})


def _words(tokens: list[str], scores: list[float]) -> tuple[list[str], list[float]]:
    """A text's words and their scores from its stored tokens: ``attrib.text.aggregate``'s
    word merge (the sum of a word's pieces), with the word of each piece read from its
    spelling (a run stores the tokens, not the tokenizer's word ids): a WordPiece ``##``
    piece, or a piece without SentencePiece's ``▁`` where the text has them, continues the
    word before it; special tokens belong to no word."""
    import torch

    from attrib.text.aggregate import merge_words

    sentencepiece = any(t.startswith("▁") for t in tokens)
    word_ids: list[int | None] = []
    words: list[str] = []
    for k, token in enumerate(tokens):
        if token in SPECIAL_TOKENS:
            word_ids.append(None)
            continue
        continues = token.startswith("##") or (
            sentencepiece and not token.startswith("▁") and k > 0 and word_ids[-1] is not None
        )
        if continues and words:
            words[-1] += token.removeprefix("##")
        else:
            words.append(token.removeprefix("▁"))
        word_ids.append(len(words) - 1)
    values = torch.tensor([float("nan") if v is None else v for v in scores], dtype=torch.float64)
    merged = merge_words(values, word_ids, "sum")
    return words, merged.tolist()


def _ints(column: Any) -> np.ndarray:
    return np.array([UNKNOWN if v is None else int(v) for v in column.to_pylist()], np.int64)


def _signed(method: str) -> bool:
    info = catalogue.get(method)
    return bool(info.signed) if info is not None else False


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _clean(value: Any) -> Any:
    """JSON values without NaN or infinities (``null`` instead)."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value

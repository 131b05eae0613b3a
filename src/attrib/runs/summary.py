"""The summary of a run: which method to trust on this model and data.

``summarize(samples, scores, sanity)`` reads the tables of a run directory (``runs.schema``)
and reduces them, with no model, to what ``attrib summarize`` prints and writes:

- per method and metric, the mean, standard error (sample standard deviation / sqrt(n)) and
  number of the per-sample values, over the samples whose ``status`` is ``"ok"`` (error rows
  are counted, and their most common messages listed, but never enter a number);
- each method against the random map (``method == "random map"`` in ``scores``), paired by
  sample ``id``, and the model-randomization check from the ``sanity`` table (per method a
  ``(steps, N)`` table of similarities, step 0 first), both judged by
  ``attrib.metrics.verdict`` with its rules and words: trust, do not trust, undecided. A metric
  is compared only where the scores hold random-map rows for it (localization metrics such as
  ``pointing_game`` usually do not) and where it is known which way is better
  (``attrib.metrics.METRICS``, or ``metrics_directions``);
- a ranking of the methods (``RANKING``), and on request the same numbers per class.

``RunSummary.text()`` / ``.markdown()`` / ``.to_json()`` show it; ``.write(run_dir)`` writes
``summary.md`` and ``summary.json`` atomically.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.core.errors import SettingError
from attrib.metrics.verdict import Comparison, MethodVerdict, SanityOutcome, Verdict, verdict
from attrib.runs.schema import RANDOM_MAP, _pa

__all__ = ["RANKING", "RunSummary", "Stat", "summarize"]

RANKING = (
    "Methods are ranked by: (1) the verdict, trusted first, then undecided, then those not to "
    "trust; (2) the number of metrics on which the method beat the random map, most first; "
    "(3) the mean standardized advantage over the random map, highest first: per compared "
    "metric the mean paired difference divided by its standard deviation (an effect size, "
    "which does not grow with the number of samples), capped at ±10, averaged over the "
    "metrics; a method compared on no metric comes after those that were. Ties keep the "
    "order in which the methods appear in the scores."
)
"""The ranking rule, in the words the summary prints."""

EFFECT_CAP = 10.0
TOP_ERRORS = 5
_ARROWS = {"higher": "↑", "lower": "↓"}
_TRUST = {"trust": "trust", "distrust": "do not trust", "undecided": "undecided"}
_OUTCOMES = {"better": "better", "worse": "worse", "tie": "no clear difference"}
_TIER = {"trust": 0, "undecided": 1, "distrust": 2}


@dataclass(frozen=True)
class Stat:
    """The mean, standard error and number of the (non-missing) values of one cell; ``mean``
    and ``se`` are NaN where there are too few values (none; one for ``se``)."""

    mean: float
    se: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": _finite(self.mean), "se": _finite(self.se), "n": self.n}


@dataclass(frozen=True)
class RunSummary:
    """What a run says about its methods (``summarize``).

    Attributes:
        ok, errors: the numbers of samples explained and of samples that failed.
        top_errors: the most common error messages, ``(message, count)``, most common first.
        methods: the methods judged, in the order of the scores (``ranking`` orders them).
        metrics: the metrics of the scores; ``directions`` says which way is better for each
            one whose direction is known.
        stats: method -> metric -> ``Stat``, the random map (``"random map"``) included.
        verdict: ``attrib.metrics.Verdict`` of every method.
        ranking: the methods, best first (``RANKING``).
        by_class: class -> method -> metric -> ``Stat`` (``None`` unless asked for);
            ``class_column`` says which column of ``samples`` the class is (``label`` or
            ``prediction``); a sample without one is under class ``None``.
        measure: the similarity measure of the sanity check.
        notes: what could not be done, in words (no sanity table, no random-map rows, ...).
    """

    ok: int
    errors: int
    top_errors: tuple[tuple[str, int], ...]
    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    directions: dict[str, str]
    stats: dict[str, dict[str, Stat]]
    verdict: Verdict
    ranking: tuple[str, ...]
    by_class: dict[int | None, dict[str, dict[str, Stat]]] | None = None
    class_column: str | None = None
    measure: str = "spearman_abs"
    notes: tuple[str, ...] = field(default=())
    class_names: tuple[str, ...] | None = None

    # ---- queries

    def judged(self, method: str) -> MethodVerdict:
        """The verdict on ``method`` and its evidence."""
        for judged in self.verdict.methods:
            if judged.method == method:
                return judged
        raise SettingError("method", f"a method of the run ({', '.join(self.methods)})", method)

    def comparison(self, method: str, metric: str) -> Comparison | None:
        """``method`` against the random map on ``metric`` (``None``: not compared)."""
        for c in self.judged(method).comparisons:
            if c.metric == metric:
                return c
        return None

    def interval(self, method: str, metric: str) -> tuple[float, float] | None:
        """The interval of the mean paired advantage over the random map, ``mean d ± margin *
        se`` (margin 2 by default: a rough 95% interval, the one the verdict's rule uses, so
        that "better" is exactly "the interval lies above 0")."""
        c = self.comparison(method, metric)
        return None if c is None else _interval(c)

    @property
    def compared_metrics(self) -> tuple[str, ...]:
        """The metrics on which some method was compared with the random map."""
        found = {c.metric for m in self.verdict.methods for c in m.comparisons}
        return tuple(m for m in self.metrics if m in found)

    def sentences(self) -> list[str]:
        """Which methods to trust, which failed the sanity check, which did no better than the
        random map, and what was not checked: plain sentences that name them."""
        if self.ok == 0:
            return [
                f"No sample was explained ({self.errors} error{_s(self.errors)}): "
                "there is nothing to judge."
            ]
        if not self.methods:
            return ["The scores hold no method: there is nothing to judge."]
        order = {name: i for i, name in enumerate(self.ranking)}
        # in the table's order (best first), not the order of the scores
        judged = sorted(self.verdict.methods, key=lambda m: order.get(m.method, len(order)))
        on = f"{self.ok} sample{_s(self.ok)}"
        trusted = [m.method for m in judged if m.trust == "trust"]
        out = [
            f"Trust on this model and data ({on}): {_names(trusted)}."
            if trusted
            else f"No method earned trust on this model and data ({on})."
        ]
        distrusted = [f"{m.method} ({m.reason})" for m in judged if m.trust == "distrust"]
        if distrusted:
            out.append(f"Do not trust: {'; '.join(distrusted)}.")
        failed = [m.method for m in judged if m.sanity is not None and m.sanity.passed is False]
        if failed:
            out.append(
                f"Failed the sanity check (the map survives randomizing the model): "
                f"{_names(failed)}."
            )
        unsure = [m.method for m in judged if m.sanity is not None and m.sanity.passed is None]
        if unsure:
            out.append(
                "Sanity check inconclusive (the method does not reproduce its own map on the "
                f"unchanged model, or no layer was randomized): {_names(unsure)}."
            )
        unchecked = [m.method for m in judged if m.sanity is None]
        if unchecked and len(unchecked) == len(judged):
            out.append("Not sanity-checked: the run has no sanity check of any method.")
        elif unchecked:
            out.append(f"Not sanity-checked: {_names(unchecked)}.")
        no_better = []
        for m in judged:
            if not m.comparisons or any(c.outcome == "better" for c in m.comparisons):
                continue
            worse = [c.metric for c in m.comparisons if c.outcome == "worse"]
            tied = [c.metric for c in m.comparisons if c.outcome == "tie"]
            why = []
            if worse:
                why.append(f"worse on {', '.join(worse)}")
            if tied:
                why.append(f"no clear difference on {', '.join(tied)}")
            no_better.append(f"{m.method} ({'; '.join(why)})")
        if no_better:
            out.append(f"No better than a random map: {'; '.join(no_better)}.")
        uncompared = [m.method for m in judged if not m.comparisons]
        if uncompared and len(uncompared) == len(judged):
            out.append(
                "Not compared with a random map: the scores hold no random-map values of a "
                "metric whose direction is known, so no method could be."
            )
        elif uncompared:
            out.append(f"Not compared with a random map: {_names(uncompared)}.")
        return out

    # ---- output

    def to_json(self) -> dict[str, Any]:
        """The summary as plain JSON values (NaN and infinities as ``null``)."""
        rank = {name: i + 1 for i, name in enumerate(self.ranking)}
        methods = []
        for name in self.ranking:
            judged = self.judged(name)
            methods.append(
                {
                    "rank": rank[name],
                    "method": name,
                    "trust": judged.trust,
                    "reason": judged.reason,
                    "stats": {k: s.to_json() for k, s in self.stats.get(name, {}).items()},
                    "sanity": _sanity_json(judged.sanity),
                    "comparisons": {c.metric: _comparison_json(c) for c in judged.comparisons},
                }
            )
        by_class = None
        if self.by_class is not None:
            by_class = {
                "column": self.class_column,
                "classes": [
                    {
                        "class": cls,
                        "methods": {
                            method: {k: s.to_json() for k, s in cells.items()}
                            for method, cells in per_method.items()
                        },
                    }
                    for cls, per_method in self.by_class.items()
                ],
            }
        return {
            "samples": {
                "ok": self.ok,
                "errors": self.errors,
                "top_errors": [{"message": m, "count": c} for m, c in self.top_errors],
            },
            "metrics": [
                {
                    "name": m,
                    "direction": self.directions.get(m),
                    "compared_with_random_map": m in self.compared_metrics,
                }
                for m in self.metrics
            ],
            "measure": self.measure,
            "ranking_rule": RANKING,
            "methods": methods,
            "random_map": {k: s.to_json() for k, s in self.stats.get(RANDOM_MAP, {}).items()},
            "by_class": by_class,
            "sentences": self.sentences(),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        """A plain-text table and the sentences that say which methods to trust."""
        return self._render(markdown=False)

    def markdown(self) -> str:
        """The same as ``text()``, as Markdown (pipe tables)."""
        return self._render(markdown=True)

    def __str__(self) -> str:
        return self.text()

    def write(self, run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``summary.md`` and ``summary.json`` into ``run_dir``, each under a temporary
        name first and then renamed (``os.replace``), so that a reader never sees half a file.
        Returns their paths."""
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        md = _write_atomic(folder / "summary.md", self.markdown() + "\n")
        js = _write_atomic(
            folder / "summary.json", json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        )
        return md, js

    def _render(self, markdown: bool) -> str:
        table = _markdown_table if markdown else _text_table
        head = "## " if markdown else ""
        errors = f", {self.errors} error{_s(self.errors)}" if self.errors else ""
        lines = [f"{head}Run summary: {self.ok} sample{_s(self.ok)} explained{errors}", ""]
        if self.ok and self.methods:
            lines += self._main_table(table)
            compared = self.compared_metrics
            if compared:
                lines += [
                    "",
                    f"{head}Against the random map",
                    "",
                    *self._comparison_table(table, compared),
                    "",
                    "Mean paired advantage over the random map, per sample (positive: better "
                    "than random, by the metric's direction) and its interval mean ± 2 standard "
                    "errors (about 95%): better or worse when the interval excludes 0.",
                ]
            lines.append("")
        lines.append(" ".join(self.sentences()))
        if self.ok and self.methods:
            lines += ["", RANKING]
        if self.by_class is not None and self.ok:
            lines += ["", f"{head}By class ({self.class_column})", ""]
            lines += self._class_table(table)
        if self.top_errors:
            lines += ["", f"{head}Most common errors", ""]
            lines += table(
                ["count", "error"],
                [[str(c), _one_line(m)] for m, c in self.top_errors],
            )
        if self.notes:
            lines += ["", f"{head}Notes", ""]
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip()

    def _metric_header(self, metric: str) -> str:
        arrow = _ARROWS.get(self.directions.get(metric, ""), "")
        return f"{metric} {arrow}".strip()

    def _main_table(self, table: Any) -> list[str]:
        columns = ["rank", "method", *map(self._metric_header, self.metrics), "sanity", "verdict"]
        rows = []
        for i, name in enumerate(self.ranking):
            judged = self.judged(name)
            cells = [self._cell(name, metric) for metric in self.metrics]
            rows.append(
                [str(i + 1), name, *cells, _sanity_cell(judged.sanity), _TRUST[judged.trust]]
            )
        if RANDOM_MAP in self.stats:
            cells = [self._cell(RANDOM_MAP, metric) for metric in self.metrics]
            rows.append(["", f"{RANDOM_MAP} (baseline)", *cells, "", ""])
        lines = table(columns, rows)
        lines += [
            "",
            f"Mean ± standard error over the samples (n where fewer than {self.ok}); "
            "↑ higher is better, ↓ lower is better.",
        ]
        return lines

    def _cell(self, method: str, metric: str) -> str:
        stat = self.stats.get(method, {}).get(metric)
        if stat is None or stat.n == 0:
            return ""
        # the error with as many decimals as the mean (0.086 ± 0.001, not ± 0.000842)
        plain = abs(stat.mean) < 1e4 and (stat.mean == 0 or abs(stat.mean) >= 1e-3)
        se = f"{stat.se:.3f}" if plain and math.isfinite(stat.se) else _num(stat.se)
        text = _num(stat.mean) if math.isnan(stat.se) else f"{_num(stat.mean)} ± {se}"
        return text + (f" (n={stat.n})" if stat.n != self.ok else "")

    def _comparison_table(self, table: Any, compared: Sequence[str]) -> list[str]:
        rows = []
        for name in self.ranking:
            row = [name]
            for metric in compared:
                c = self.comparison(name, metric)
                if c is None:
                    row.append("")
                    continue
                low, high = _interval(c)
                row.append(
                    f"{_num(c.advantage, sign=True)} [{_num(low, sign=True)}, "
                    f"{_num(high, sign=True)}] {_OUTCOMES[c.outcome]}"
                )
            rows.append(row)
        return table(["method", *map(self._metric_header, compared)], rows)

    def _class_name(self, cls: int | None) -> str:
        if cls is None:
            return "none"
        names = self.class_names
        if names is not None and 0 <= cls < len(names):
            return f"{cls} {names[cls]}"
        return str(cls)

    def _class_table(self, table: Any) -> list[str]:
        assert self.by_class is not None
        rows = []
        for cls, per_method in self.by_class.items():
            for name in [*self.ranking, RANDOM_MAP]:
                cells = per_method.get(name)
                if not cells:
                    continue
                row = [self._class_name(cls), name]
                for metric in self.metrics:
                    s = cells.get(metric)
                    row.append("" if s is None or s.n == 0 else f"{_num(s.mean)} (n={s.n})")
                rows.append(row)
        return table(["class", "method", *map(self._metric_header, self.metrics)], rows)


# ---- summarize


def summarize(
    samples: Any,
    scores: Any,
    sanity: Any = None,
    *,
    by_class: bool | str = False,
    metrics_directions: Mapping[str, str] | None = None,
    measure: str = "spearman_abs",
    class_names: Sequence[str] | None = None,
) -> RunSummary:
    """The summary of a run from its tables (``attrib.runs.schema``): Arrow tables, or anything
    ``pyarrow.table()`` accepts (a dict of columns, a pandas DataFrame).

    Args:
        samples: the ``samples`` table; only its ``"ok"`` samples count, the others are counted
            as errors.
        scores: the ``scores`` table; values of the same sample, method and metric given twice
            (a shard written again) are averaged; NaN is a missing value.
        sanity: the ``sanity`` table, or ``None`` (no method is then sanity-checked).
        by_class: also break the numbers down per class: ``"label"``, ``"prediction"``, or
            ``True`` (the label where the samples have any, else the prediction).
        metrics_directions: metric -> ``"higher"`` or ``"lower"`` (which is better), for
            metrics ``attrib.metrics.METRICS`` does not know, or to override it. A metric
            whose direction is unknown is summarized but not compared with the random map.
        measure: the similarity of the sanity table to judge by (``verdict``'s default).
        class_names: names of the classes, shown beside their indices per class.
    """
    pa = _pa()
    import pyarrow.compute as pc

    directions = _directions(metrics_directions)
    samples_t = _table(pa, samples, "samples", {"id": pa.string(), "status": pa.string()})
    notes: list[str] = []

    status = samples_t["status"]
    is_ok = pc.fill_null(pc.equal(status, "ok"), False)
    ok_ids = pc.unique(samples_t.filter(is_ok)["id"].combine_chunks().drop_null())
    ok = int(pc.sum(is_ok).as_py() or 0) if samples_t.num_rows else 0
    errors = samples_t.num_rows - ok
    top_errors = _top_errors(samples_t.filter(pc.invert(is_ok)), pc)

    score_types = {"id": pa.string(), "method": pa.string(), "metric": pa.string()}
    score_types["value"] = pa.float64()
    scores_t = _table(pa, scores, "scores", score_types)
    scores_t = _scores(scores_t.filter(pc.is_in(scores_t["id"], value_set=ok_ids)), pa, pc)

    methods = [
        m for m in _unique(scores_t["method"], pc) if m != RANDOM_MAP
    ]  # in the order of the scores
    metrics = _unique(scores_t["metric"], pc)
    stats = _stats(scores_t, ["method", "metric"], pc)
    per_method: dict[str, dict[str, Stat]] = {}
    for (method, metric), stat in stats.items():
        per_method.setdefault(method, {})[metric] = stat
    ordered = {
        m: {k: per_method[m][k] for k in metrics if k in per_method[m]}
        for m in [*methods, RANDOM_MAP]
        if m in per_method
    }

    sanity_tables: dict[str, torch.Tensor] = {}
    if sanity is None:
        notes.append("The run has no sanity table: no method was sanity-checked.")
    else:
        sanity_types = {"method": pa.string(), "step": pa.int64(), "id": pa.string()}
        sanity_types.update(measure=pa.string(), similarity=pa.float64())
        sanity_t = _table(pa, sanity, "sanity", sanity_types)
        sanity_t = sanity_t.filter(pc.is_in(sanity_t["id"], value_set=ok_ids))
        sanity_tables = _sanity(sanity_t, measure, pa, pc, notes)
        checked = _unique(sanity_t["method"], pc)  # judged even where not of ``measure``
        methods.extend(m for m in checked if m not in methods and m != RANDOM_MAP)

    random_metrics = set(
        _unique(scores_t.filter(_is(scores_t, "method", RANDOM_MAP, pc))["metric"], pc)
    )
    compared = [m for m in metrics if m in random_metrics and m in directions]
    unknown = sorted(m for m in random_metrics if m not in directions)
    if unknown:
        notes.append(
            f"Not compared with the random map: {', '.join(unknown)} (which way is better is "
            "not known; pass metrics_directions)."
        )
    if metrics and not random_metrics:
        notes.append(
            "The scores hold no random-map rows: no method was compared with a random map."
        )
    pairs = _paired(scores_t, compared, pa, pc)

    judged = []
    for method in methods:
        faithfulness = {m: {method: pairs[m][method][0]} for m in compared if method in pairs[m]}
        random = {m: pairs[m][method][1] for m in compared if method in pairs[m]}
        checks = {method: sanity_tables[method]} if method in sanity_tables else None
        one = verdict(faithfulness, directions, random, checks, methods=[method], measure=measure)
        judged.append(one.methods[0])
    the_verdict = Verdict(tuple(judged), ok)

    classes = None
    column = None
    if by_class:
        column = _class_column(samples_t, by_class)
        classes = _by_class(samples_t, scores_t, column, [*methods, RANDOM_MAP], metrics, pa, pc)

    return RunSummary(
        ok=ok,
        errors=errors,
        top_errors=top_errors,
        methods=tuple(methods),
        metrics=tuple(metrics),
        directions={m: directions[m] for m in metrics if m in directions},
        stats=ordered,
        verdict=the_verdict,
        ranking=_rank(the_verdict),
        by_class=classes,
        class_column=column,
        measure=measure,
        notes=tuple(notes),
        class_names=tuple(class_names) if class_names is not None else None,
    )


def _rank(judged: Verdict) -> tuple[str, ...]:
    """The methods of ``judged``, best first, by the rule ``RANKING``."""

    def key(item: tuple[int, MethodVerdict]) -> tuple[float, ...]:
        position, m = item
        beaten = sum(c.outcome == "better" for c in m.comparisons)
        effects = [_effect(c) for c in m.comparisons]
        mean_effect = sum(effects) / len(effects) if effects else 0.0
        return (_TIER[m.trust], -beaten, 0 if effects else 1, -mean_effect, position)

    return tuple(m.method for _, m in sorted(enumerate(judged.methods), key=key))


def _effect(c: Comparison) -> float:
    """The mean paired advantage in standard deviations of the differences, capped."""
    sd = c.sem * math.sqrt(c.n)
    if sd == 0 or not math.isfinite(sd):
        return math.copysign(EFFECT_CAP, c.advantage) if c.advantage else 0.0
    return max(-EFFECT_CAP, min(EFFECT_CAP, c.advantage / sd))


def _interval(c: Comparison) -> tuple[float, float]:
    return c.advantage - c.margin * c.sem, c.advantage + c.margin * c.sem


# ---- reading the tables


def _directions(given: Mapping[str, str] | None) -> dict[str, str]:
    from attrib.metrics.compare import METRICS

    out = {name: direction for name, (_, direction) in METRICS.items()}
    for name, direction in (given or {}).items():
        if direction not in ("higher", "lower"):
            raise SettingError(
                f"metrics_directions[{name!r}]",
                '"higher" or "lower" (which values are better)',
                direction,
            )
        out[name] = direction
    return out


def _table(pa: Any, data: Any, name: str, columns: Mapping[str, Any]) -> Any:
    """``data`` as an Arrow table of ``columns`` (cast to their types); a table with no rows
    may lack them."""
    table = data if isinstance(data, pa.Table) else pa.table(data)
    missing = [c for c in columns if c not in table.column_names]
    if missing and table.num_rows == 0:
        return pa.table({c: pa.array([], type=t) for c, t in columns.items()})
    if missing:
        raise SettingError(
            name,
            f"the {name} table of a run (columns {', '.join(columns)})",
            f"columns {table.column_names}",
            f"It lacks {', '.join(missing)}; see attrib.runs.schema.",
        )
    try:
        return pa.table(
            {c: table[c].cast(t) for c, t in columns.items()}
            | {c: table[c] for c in table.column_names if c not in columns}
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise SettingError(
            name, f"the column types of attrib.runs.schema ({error})", table.schema.types
        ) from None


def _is(table: Any, column: str, value: str, pc: Any) -> Any:
    return pc.fill_null(pc.equal(table[column], value), False)


def _unique(column: Any, pc: Any) -> list[str]:
    """The distinct non-null values, in the order they first appear."""
    return [v for v in pc.unique(column).to_pylist() if v is not None]


def _scores(table: Any, pa: Any, pc: Any) -> Any:
    """One value per (id, method, metric): duplicates averaged, NaN as missing."""
    value = table["value"]
    value = pc.if_else(pc.is_nan(value), pa.scalar(None, pa.float64()), value)
    table = pa.table(
        {"id": table["id"], "method": table["method"], "metric": table["metric"], "value": value}
    )
    table = table.filter(
        pc.invert(pc.or_(pc.is_null(table["method"]), pc.is_null(table["metric"])))
    )
    grouped = table.group_by(["id", "method", "metric"], use_threads=False).aggregate(
        [("value", "mean")]
    )
    return grouped.rename_columns(
        ["value" if c == "value_mean" else c for c in grouped.column_names]
    )


def _stats(table: Any, keys: list[str], pc: Any) -> dict[tuple[Any, ...], Stat]:
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [
            ("value", "mean"),
            ("value", "stddev", pc.VarianceOptions(ddof=1)),
            ("value", "count"),
        ]
    )
    out = {}
    for row in grouped.to_pylist():
        n = int(row["value_count"])
        mean = _float(row["value_mean"])
        sd = _float(row["value_stddev"])
        out[tuple(row[k] for k in keys)] = Stat(mean, sd / math.sqrt(n) if n > 1 else math.nan, n)
    return out


def _paired(
    scores: Any, metrics: Sequence[str], pa: Any, pc: Any
) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """metric -> method -> (the method's values, the random map's), paired by sample id."""
    out: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {m: {} for m in metrics}
    if not metrics:
        return out
    random = scores.filter(_is(scores, "method", RANDOM_MAP, pc))
    random = random.select(["id", "metric", "value"]).rename_columns(["id", "metric", "random"])
    others = scores.filter(pc.invert(_is(scores, "method", RANDOM_MAP, pc)))
    others = others.filter(pc.is_in(others["metric"], value_set=pa.array(list(metrics))))
    joined = others.join(random, keys=["id", "metric"], join_type="inner", use_threads=False)
    for metric in metrics:
        of_metric = joined.filter(_is(joined, "metric", metric, pc))
        for method in _unique(of_metric["method"], pc):
            pair = of_metric.filter(_is(of_metric, "method", method, pc))
            out[metric][method] = (_tensor(pair["value"], pc), _tensor(pair["random"], pc))
    return out


def _tensor(column: Any, pc: Any) -> torch.Tensor:
    values = pc.fill_null(column, math.nan).to_numpy()
    return torch.from_numpy(np.asarray(values, dtype=np.float64).copy())


def _sanity(
    table: Any, measure: str, pa: Any, pc: Any, notes: list[str]
) -> dict[str, torch.Tensor]:
    """method -> the ``(steps, N)`` similarities of ``measure`` (step 0 first; NaN where a
    sample lacks a step)."""
    if table.num_rows == 0:
        notes.append("The sanity table holds no row of an explained sample: no method was checked.")
        return {}
    of_measure = table.filter(_is(table, "measure", measure, pc))
    if of_measure.num_rows == 0:
        found = ", ".join(_unique(table["measure"], pc))
        notes.append(
            f"The sanity table holds no {measure!r} similarities (it has {found}): no method "
            "was sanity-checked."
        )
        return {}
    grouped = of_measure.group_by(["method", "step", "id"], use_threads=False).aggregate(
        [("similarity", "mean")]
    )
    out = {}
    for method in _unique(grouped["method"], pc):
        rows = grouped.filter(_is(grouped, "method", method, pc))
        rows = rows.filter(pc.invert(pc.is_null(rows["step"])))
        steps = [0, *sorted(s for s in set(rows["step"].to_pylist()) if s > 0)]
        ids = pc.unique(rows["id"])
        grid = np.full((len(steps), len(ids)), np.nan)
        step_at = pc.index_in(rows["step"], value_set=pa.array(steps, pa.int64())).to_numpy(
            zero_copy_only=False
        )
        id_at = pc.index_in(rows["id"], value_set=ids).to_numpy(zero_copy_only=False)
        values = pc.fill_null(rows["similarity_mean"], math.nan).to_numpy()
        keep = ~np.isnan(np.asarray(step_at, dtype=np.float64))  # negative steps: not ours
        grid[np.asarray(step_at[keep], dtype=np.int64), np.asarray(id_at[keep], dtype=np.int64)] = (
            values[keep]
        )
        out[method] = torch.from_numpy(grid)
    return out


def _top_errors(failed: Any, pc: Any) -> tuple[tuple[str, int], ...]:
    if failed.num_rows == 0:
        return ()
    column = failed["error"] if "error" in failed.column_names else None
    messages = (
        ["(no message)"] * failed.num_rows
        if column is None
        else [m if m else "(no message)" for m in column.to_pylist()]
    )
    counts: dict[str, int] = {}
    for message in messages:
        counts[message] = counts.get(message, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: -item[1])  # stable: first seen first
    return tuple(ordered[:TOP_ERRORS])


def _class_column(samples: Any, by_class: bool | str) -> str:
    if by_class is True:
        has_labels = "label" in samples.column_names and samples["label"].null_count < len(
            samples["label"]
        )
        return "label" if has_labels else "prediction"
    if by_class not in ("label", "prediction"):
        raise SettingError("by_class", 'True, "label" or "prediction"', by_class)
    return str(by_class)


def _by_class(
    samples: Any,
    scores: Any,
    column: str,
    methods: Sequence[str],
    metrics: Sequence[str],
    pa: Any,
    pc: Any,
) -> dict[int | None, dict[str, dict[str, Stat]]]:
    if column in samples.column_names:
        classes = samples.select(["id", column]).cast(
            pa.schema([("id", pa.string()), (column, pa.int64())])
        )
    else:
        classes = pa.table({"id": samples["id"], column: pa.nulls(samples.num_rows, pa.int64())})
    classes = classes.filter(pc.invert(pc.is_null(classes["id"])))
    classes = classes.group_by(["id"], use_threads=False).aggregate([(column, "first")])
    classes = classes.rename_columns(["id", "class"])
    joined = scores.join(classes, keys="id", join_type="inner", use_threads=False)
    stats = _stats(joined, ["class", "method", "metric"], pc)
    found = sorted({k[0] for k in stats}, key=lambda c: (c is None, c if c is not None else 0))
    out: dict[int | None, dict[str, dict[str, Stat]]] = {}
    for cls in found:
        out[cls] = {}
        for method in methods:
            cells = {m: stats[(cls, method, m)] for m in metrics if (cls, method, m) in stats}
            if cells:
                out[cls][method] = cells
    return out


# ---- formatting


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def _num(value: float, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:+.3g}" if sign else f"{value:.3g}"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _one_line(message: str, width: int = 160) -> str:
    lines = str(message).strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _sanity_cell(sanity: SanityOutcome | None) -> str:
    if sanity is None:
        return "not checked"
    state = {True: "passed", False: "failed", None: "inconclusive"}[sanity.passed]
    return f"{state}: kept {_num(sanity.kept)} of {_num(sanity.floor)}"


def _sanity_json(sanity: SanityOutcome | None) -> dict[str, Any] | None:
    if sanity is None:
        return None
    return {
        "passed": sanity.passed,
        "kept": _finite(sanity.kept),
        "floor": _finite(sanity.floor),
        "steps": sanity.steps,
        "measure": sanity.measure,
        "threshold": sanity.threshold,
    }


def _comparison_json(c: Comparison) -> dict[str, Any]:
    low, high = _interval(c)
    return {
        "direction": c.direction,
        "value": _finite(c.value),
        "random": _finite(c.random),
        "advantage": _finite(c.advantage),
        "se": _finite(c.sem),
        "n": c.n,
        "low": _finite(low),
        "high": _finite(high),
        "outcome": c.outcome,
    }


def _text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[j]) for r in [columns, *rows]) for j in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(columns), line(["-" * w for w in widths]), *map(line, rows)]


def _markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(columns), "|" + "---|" * len(columns), *map(line, rows)]


def _write_atomic(path: Path, text: str) -> Path:
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path

"""``attrib evaluate IMAGE... --model SPEC --method NAMES --metric deletion,insertion``.

Explains all images once per method, evaluates every method with every metric
(``attrib.metrics``), prints the table (mean ± standard error over the images) and writes
``metrics.md``, ``metrics.csv`` (one row per image, method and metric) and, for the curve
metrics, ``{metric}.png``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from attrib.cli.common import one_batch, output_folder, setup, unique_names
from attrib.cli.progress import Progress
from attrib.core.errors import SettingError
from attrib.core.grad import decide_target
from attrib.methods.recipes import ImageContext, build_for_image

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib.report.build import explain_all
    from attrib.report.evaluation import check_metrics, curve_table, metrics_available

    missing = metrics_available()
    if missing:
        raise SettingError("--metric", "attrib.metrics", missing, "")
    metrics = check_metrics([m.strip() for m in args.metric.split(",") if m.strip()], "--metric")
    s = setup(args)
    out = output_folder(args.out)
    x = one_batch(s.images).to(s.device)
    target, _ = decide_target(s.loaded.model, x, s.target, batch_size=args.batch_size)
    methods = _methods(s, x, args)
    with Progress(len(methods) * (1 + len(metrics)), "evaluating") as progress:
        explained = explain_all(
            methods,
            x,
            target,
            on_step=lambda n, t: progress.advance(n),
            on_progress=progress.within,
        )
        for name, failure in explained.failures.items():
            raise SettingError("--method", "methods that run on this model", name, failure)
        results = curve_table(
            s.loaded.model,
            x,
            explained.attributions,
            target,
            metrics,
            methods=methods,
            steps=args.steps,
            batch_size=args.batch_size,
            on_step=lambda n, t: progress.advance(n),
        )
    if results.failures:
        raise SettingError("--metric", "metrics that run on these methods", results.failures[0])
    write_results(results, unique_names(s.images), out)
    return 0


def _methods(s, x, args) -> dict:
    context = ImageContext(
        s.loaded.model,
        tuple(x.shape[-2:]),
        s.layer,
        references=_references(x),
        batch_size=args.batch_size,
        settings=s.settings,
    )
    return {name: build_for_image(name, context) for name in s.names}


def _references(x):
    import torch

    return torch.cat([x, torch.zeros_like(x[:1])])


def write_results(results, names: list[str], out: Path) -> None:
    """Print the table; write metrics.md, metrics.csv and the curves' PNGs."""
    from attrib.metrics.verdict import RANDOM_MAP
    from attrib.viz import curves_figure, save_png

    out.mkdir(parents=True, exist_ok=True)
    table = results.table()
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
        *("| " + " | ".join(row) + " |" for row in table.rows),
    ]
    text = "\n".join(lines)
    print(text)
    (out / "metrics.md").write_text(text + "\n\n" + table.caption + "\n", encoding="utf-8")
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "method", "metric", "value"])
        for metric, per_method in results.values.items():
            rows = dict(per_method)
            if metric in results.random:
                rows[RANDOM_MAP] = results.random[metric]
            for method, values in rows.items():
                for name, value in zip(names, values.flatten().tolist(), strict=False):
                    writer.writerow([name, method, metric, f"{value:.6g}"])
    for metric, curves in results.curves.items():
        if curves:
            save_png(
                curves_figure(curves, title=f"{metric} curves"), out / f"{metric}.png", close=True
            )
    print(f"written: {out / 'metrics.md'}, {out / 'metrics.csv'}")

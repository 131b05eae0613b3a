"""``attrib report IMAGE... --model SPEC --method NAMES [--metric ...] [--sanity NAMES]``.

Writes ``report.html`` (one self-contained page: inputs, predictions, every method's map,
the metrics, the sanity checks, each method's description) and the maps as PNG files in
``maps/``, then prints the report's path.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from attrib.cli import recipes
from attrib.cli.common import (
    one_batch,
    output_folder,
    runnable_methods,
    setup,
    unique_names,
)
from attrib.cli.progress import Progress
from attrib.core.grad import decide_target
from attrib.methods.recipes import ImageContext, build_for_image

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib.report import (
        add_metrics,
        add_sanity,
        add_verdict,
        explain_all,
        image_report,
        write_html,
    )
    from attrib.report.evaluation import check_metrics, metrics_available

    start = time.perf_counter()
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    if metrics and metrics_available() is None:
        check_metrics(metrics, "--metric")
    sanity_names = recipes.resolve_names(args.sanity, "--sanity") if args.sanity.strip() else []
    s = setup(args)
    sanity_names = runnable_methods(sanity_names, s.loaded.model, args.sanity, "--sanity")
    x = one_batch(s.images).to(s.device)
    target, logits = decide_target(s.loaded.model, x, s.target, batch_size=args.batch_size)
    context = ImageContext(
        s.loaded.model,
        (int(x.shape[-2]), int(x.shape[-1])),
        s.layer,
        references=_with_black(x),
        batch_size=args.batch_size,
        settings=s.settings,
    )
    methods = {name: build_for_image(name, context) for name in s.names}
    out = output_folder(args.out)
    units = len(methods) * (1 + len(metrics)) + len(sanity_names)
    with Progress(units, "report") as progress:
        step = lambda name, seconds: progress.advance(name)  # noqa: E731
        explained = explain_all(
            methods, x, target, logits=logits, on_step=step, on_progress=progress.within
        )
        names = unique_names(s.images)
        report = image_report(
            args.title or f"attrib report: {s.loaded.label}",
            names,
            [i.pixels for i in s.images],
            logits,
            explained,
            class_names=s.loaded.class_names,
            facts=[
                ("model", s.loaded.label),
                ("preprocessing", f"{s.preset.name}: {s.preset.description}"),
                ("target", str(args.target)),
                ("created", datetime.now().isoformat(timespec="seconds")),
                ("command", "attrib " + " ".join(sys.argv[1:])),
            ],
            png_dir=out / "maps",
        )
        scores = checked = None
        if metrics:
            scores = add_metrics(
                report,
                s.loaded.model,
                x,
                explained,
                target,
                metrics=metrics,
                methods=methods,
                steps=args.steps,
                batch_size=args.batch_size,
                on_step=step,
            )
        if sanity_names:
            chosen = {n: methods.get(n) or build_for_image(n, context) for n in sanity_names}
            layers = args.sanity_layers.split(",") if args.sanity_layers else None
            checked = add_sanity(
                report,
                chosen,
                x,
                target,
                model=s.loaded.model,
                layers=layers,
                batch_size=args.batch_size,
                on_step=step,
            )
        if scores is not None or checked:
            add_verdict(report, scores, checked)
    report.facts.append(("run time", f"{time.perf_counter() - start:.0f} s"))
    path = write_html(report, out / "report.html")
    print(path)
    return 0


def _with_black(x):
    import torch

    return torch.cat([x, torch.zeros_like(x[:1])])

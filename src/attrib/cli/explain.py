"""``attrib explain IMAGE... --model SPEC --method NAMES --out DIR``.

Writes, for each image and method, ``{image}_{method}.png`` (the image, the map and the
overlay, titled with the method, the explained class and its probability) and
``{image}_{method}.npz``: that image's ``Attribution`` (values, explained class, logits as its
output, settings, completeness gap) saved by ``Attribution.save`` with the model input, read
back by ``Attribution.load`` and ``Attribution.load_inputs``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial
from typing import Any

import torch

from attrib.cli.common import batches, output_folder, setup, unique_names
from attrib.cli.progress import Progress
from attrib.core.grad import decide_target
from attrib.core.progress import reporting
from attrib.core.result import Attribution
from attrib.methods.recipes import ImageContext, build_for_image

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib import viz
    from attrib.report.build import with_output

    s = setup(args)
    out = output_folder(args.out)
    stems = unique_names(s.images)
    groups = batches(s.images, args.batch_size)
    summary: dict[str, str] = {}
    with Progress(len(groups) * len(s.names), "explaining") as progress:
        for group in groups:
            x = torch.stack([s.images[i].tensor for i in group]).to(s.device)
            target, logits = decide_target(s.loaded.model, x, s.target, batch_size=args.batch_size)
            context = ImageContext(
                s.loaded.model,
                (int(x.shape[-2]), int(x.shape[-1])),
                s.layer,
                references=torch.cat([x, torch.zeros_like(x[:1])]),
                batch_size=args.batch_size,
                settings=s.settings,
            )
            for name in s.names:
                progress.advance(name, 0)
                method = build_for_image(name, context)
                with reporting(partial(progress.within, name)):
                    result = with_output(method(x, target=target), logits)
                for k, i in enumerate(group):
                    fig = viz.show(
                        result, s.images[i].pixels, index=k, class_names=s.loaded.class_names
                    )
                    viz.save_png(fig, out / f"{stems[i]}_{name}.png")
                    one_image(result, k, len(group)).save(
                        out / f"{stems[i]}_{name}.npz", inputs=x[k : k + 1]
                    )
                    label, p = viz.explained_class(result, k, s.loaded.class_names)
                    summary[stems[i]] = f"{label} ({p:.3f})" if p is not None else label
                progress.advance(name)
    for stem in stems:
        print(f"{stem}: {summary.get(stem, '')} -> {out / stem}_*.png, {out / stem}_*.npz")
    return 0


def one_image(result: Attribution, k: int, n: int) -> Attribution:
    """Sample ``k`` of a batch of ``n``: the tensors of values, target, baseline, delta and
    output that have a row per sample cut to row ``k`` (a batch of one); a shared baseline
    and the settings (``params``) as they are."""

    def row(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == n:
            return value[k : k + 1]
        if isinstance(value, dict):
            return {key: row(v) for key, v in value.items()}
        return value

    return replace(
        result,
        values=row(result.values),
        target=row(result.target),
        baseline=row(result.baseline),
        delta=row(result.delta),
        output=row(result.output),
    )

"""``attrib explain IMAGE... --model SPEC --method NAMES --out DIR``.

Writes, for each image, ``{image}_{method}.png`` (the image, the map and the overlay, titled
with the method, the explained class and its probability) and ``{image}.npz`` with the
model input, the logits, the explained class and every method's attribution.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from attrib.cli.common import batches, output_folder, setup, unique_names
from attrib.cli.progress import Progress
from attrib.core.grad import decide_target
from attrib.methods.recipes import ImageContext, build_for_image

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib import viz
    from attrib.report.build import with_output

    s = setup(args)
    out = output_folder(args.out)
    stems = unique_names(s.images)
    groups = batches(s.images, args.batch_size)
    arrays: dict[str, dict[str, np.ndarray]] = {stem: {} for stem in stems}
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
            for k, i in enumerate(group):
                arrays[stems[i]]["input"] = x[k].cpu().numpy()
                arrays[stems[i]]["logits"] = logits[k].cpu().numpy()
            for name in s.names:
                progress.advance(name, 0)
                result = with_output(build_for_image(name, context)(x, target=target), logits)
                for k, i in enumerate(group):
                    fig = viz.show(
                        result, s.images[i].pixels, index=k, class_names=s.loaded.class_names
                    )
                    viz.save_png(fig, out / f"{stems[i]}_{name}.png")
                    values = result.numpy()
                    assert isinstance(values, np.ndarray)  # images are one tensor
                    arrays[stems[i]][name] = values[k]
                    if isinstance(result.target, torch.Tensor):
                        arrays[stems[i]]["target"] = result.target[k].cpu().numpy()
                    if result.delta is not None:
                        arrays[stems[i]][f"{name}_delta"] = result.delta[k].cpu().numpy()
                    label, p = viz.explained_class(result, k, s.loaded.class_names)
                    summary[stems[i]] = f"{label} ({p:.3f})" if p is not None else label
                progress.advance(name)
    for stem, content in arrays.items():
        np.savez_compressed(out / f"{stem}.npz", **content)  # type: ignore[arg-type]
        print(f"{stem}: {summary.get(stem, '')} -> {out / stem}_*.png, {out / stem}.npz")
    return 0

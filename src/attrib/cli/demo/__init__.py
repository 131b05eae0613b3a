"""``attrib demo`` (``make demo``): every image method on a real ImageNet model, in one report.

The model is EfficientNet-Lite0 (``attrib.data.imagenet_demo``), the photos are
scikit-image's bundled ones (``attrib.data.photos``), the text model is the MiniLM sentiment
classifier of ``attrib.text``; everything installs offline and nothing is downloaded at run
time. The demo writes ``report.html`` (self-contained), one PNG per photo and method in
``maps/``, and a grid figure per method family, and returns the report's path.

The demo's pieces live here together: ``settings`` (its choices: faster settings per
method, the methods on the curves and in the sanity check, the sentences) and ``text`` (the
report's text sections).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import torch

__all__ = ["run", "run_demo"]


def run(args: argparse.Namespace) -> int:
    """The command: ``run_demo`` with the command line's choices; prints the report's path."""
    from attrib.cli.common import output_folder

    output_folder(args.out)
    images = [n.strip() for n in args.images.split(",")] if args.images else None
    path = run_demo(
        Path(args.out),
        images=images,
        methods=args.methods,
        text=not args.no_text,
        metrics=not args.no_metrics,
        threads=args.threads or None,
    )
    print(f"report: {path}")
    return 0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(
    out: Path,
    *,
    images: Sequence[str] | None = None,
    methods: str | None = None,
    text: bool = True,
    metrics: bool = True,
    threads: int | None = 1,
) -> Path:
    """Run the demo into ``out``; returns the path of ``report.html``.

    ``threads``: torch's CPU threads (``None``: torch's default). One by default: on a
    machine whose cores are busy with other work, OpenMP threads spin while they wait for
    each other, and two threads ran the demo ~10x slower than one on a shared 2-core
    machine; on an idle one, one thread costs at most ~1.6x.
    """
    from attrib.cli import recipes
    from attrib.cli.demo import settings as demo_settings
    from attrib.core.grad import decide_target
    from attrib.data.imagenet_demo import CAM_LAYER, imagenet_class_names, load_efficientnet_lite0
    from attrib.data.photos import PHOTOS, load_photos
    from attrib.methods.recipes import ImageContext, build_for_image
    from attrib.report import (
        add_metrics,
        add_sanity,
        add_verdict,
        explain_all,
        image_report,
        write_html,
    )
    from attrib.runs.images import PRESETS, prepare

    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    out = Path(out)
    model = load_efficientnet_lite0()
    class_names = imagenet_class_names()
    loaded = [
        prepare(array, PRESETS["crop224"], name)
        for name, array in load_photos(None if images is None else list(images)).items()
    ]
    x = torch.stack([image.tensor for image in loaded])
    target, logits = decide_target(model, x, "predicted")
    for image, probabilities in zip(loaded, logits.softmax(-1), strict=True):
        p, k = probabilities.max(-1)
        _log(f"{image.name:<10} {class_names[int(k)]} ({float(p):.2f})")

    names = recipes.resolve_names(methods or "all")
    per_method = demo_settings.settings()
    references = torch.cat([x, torch.zeros_like(x[:1])])
    built = {}
    for name in names:
        context = ImageContext(
            model, (224, 224), CAM_LAYER, references, settings=per_method.get(name, {})
        )
        built[name] = build_for_image(name, context)

    cpu = [time.process_time()]

    def step(label: str, seconds: float) -> None:
        # CPU time next to wall time: on a shared machine the wall time says little
        now = time.process_time()
        used, cpu[0] = now - cpu[0], now
        total = time.perf_counter() - start
        _log(f"  {label:<28} {seconds:6.1f} s  cpu {used:6.1f} s   (total {total:5.0f} s)")

    _log(f"explaining {len(loaded)} photos with {len(built)} methods")
    explained = explain_all(built, x, target, logits=logits, on_step=step)
    report = image_report(
        "attrib demo: EfficientNet-Lite0 on ImageNet",
        [image.name for image in loaded],
        [image.pixels for image in loaded],
        logits,
        explained,
        class_names=class_names,
        facts=[
            ("model", "EfficientNet-Lite0 (Tan and Le 2019), ImageNet weights"),
            (
                "photos",
                "scikit-image: "
                + ", ".join(f"{n} ({PHOTOS[n]})" for n in PHOTOS if n in {i.name for i in loaded}),
            ),
            ("target", "the predicted class of each photo"),
            ("created", datetime.now().isoformat(timespec="seconds")),
            ("CPU threads", str(torch.get_num_threads())),
        ],
        captions=[f"shows: {PHOTOS[image.name]}" for image in loaded],
        png_dir=out / "maps",
    )
    _grids(out, loaded, explained, class_names)
    report.notes.append(
        "EfficientNet-Lite0 uses ReLU6, a clipped ReLU min(relu(z), 6). Guided "
        "backpropagation and deconvolution apply the ReLU's rule there and then the clip's "
        "gradient 1[z < 6] (Captum, which hooks nn.ReLU only, would return the plain "
        "gradient on this model)."
    )
    report.notes.append(
        "Settings chosen for speed on a CPU: "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in s.items())
            for name, s in per_method.items()
            if name in built
        )
        + f". CAM methods explain the layer '{CAM_LAYER}' (the input of the global pooling)."
    )
    if metrics:
        scores = add_metrics(
            report,
            model,
            x,
            explained,
            target,
            methods=built,
            only=demo_settings.CURVE_METHODS,
            steps=demo_settings.CURVE_STEPS,
            on_step=step,
            why="the demo's CURVE_METHODS, for time",
        )
        chosen = {n: built[n] for n in demo_settings.SANITY_METHODS if n in built}
        checked = add_sanity(
            report,
            chosen,
            x[: demo_settings.SANITY_IMAGES],
            target[: demo_settings.SANITY_IMAGES],
            model=model,
            checkpoints=demo_settings.SANITY_CHECKPOINTS,
            on_step=step,
        )
        left_out = [n for n in explained.attributions if n not in chosen]
        if left_out:
            report.notes.append(
                f"The sanity check ran on {len(chosen)} methods ({', '.join(chosen)}: one or "
                "two per family, for time: each costs "
                f"{demo_settings.SANITY_CHECKPOINTS + 2} explanations of "
                f"{demo_settings.SANITY_IMAGES} photos); the verdict calls the others "
                "not sanity-checked."
            )
        add_verdict(report, scores, checked)
    if text:
        try:
            from attrib.cli.demo.text import text_sections

            report.text.extend(
                text_sections(demo_settings.TEXTS, demo_settings.TEXT_METHODS, on_step=step)
            )
        except Exception as error:  # the image part stands on its own
            report.notes.append(f"Text part skipped: {type(error).__name__}: {error}")
        try:
            from attrib.cli.demo.text import generation_section

            report.text.append(
                generation_section(
                    demo_settings.GENERATION_PROMPT,
                    demo_settings.GENERATION_TOKENS,
                    on_step=step,
                )
            )
        except Exception as error:  # the rest stands on its own
            report.notes.append(f"Generation part skipped: {type(error).__name__}: {error}")
    report.facts.append(("run time", f"{time.perf_counter() - start:.0f} s"))
    path = write_html(report, out / "report.html")
    _log(f"done in {time.perf_counter() - start:.0f} s")
    return path


def _short(value: object) -> str:
    cell = getattr(value, "cell", None)
    return f"grid({cell})" if cell is not None else repr(value)


def _grids(out: Path, loaded, explained, class_names) -> None:
    """One matplotlib grid per method family (photos x methods), as PNG files."""
    from attrib.methods.catalogue import FAMILIES, entries
    from attrib.viz import grid, save_png

    pixels = [image.pixels for image in loaded]
    for family in FAMILIES:
        members = [info.name for info in entries(family)]
        chosen = {m: explained.attributions[m] for m in members if m in explained.attributions}
        if chosen:
            fig = grid(pixels, chosen, class_names=class_names, row_labels=[i.name for i in loaded])
            save_png(fig, out / f"grid_{family}.png", dpi=80)

"""``attrib run DATA --model SPEC --method NAMES --metric NAMES --out RUN`` and
``attrib summarize RUN``.

``run`` explains and evaluates every sample of DATA (a folder of images, a CSV/Parquet/JSONL
manifest, a file of texts) into the run directory RUN (``attrib.runs``): it resumes a run
that was interrupted, refuses a folder that holds another run (``--force-new`` starts over),
and ends with the verdict, also written to ``RUN/summary.md``. ``summarize`` prints a run's
verdict again (``--by-class``, ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_arguments", "run", "summarize"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        metavar="DATA",
        help="a folder of images, a CSV/Parquet/JSONL manifest (path, label, mask columns) "
        "or a file of texts (a text column)",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="SPEC",
        help="see below; for texts minilm-sentiment (default) or a Hugging Face folder",
    )
    parser.add_argument("--weights", metavar="FILE", help="a state dict for the model")
    parser.add_argument(
        "--method",
        required=True,
        metavar="NAME[,NAME...]",
        help="methods (see `attrib methods`), or all",
    )
    parser.add_argument(
        "--metric",
        default="",
        metavar="NAME[,NAME...]",
        help="deletion, insertion, road_morf, pointing_game, relevance_mass, ... of "
        "attrib.metrics, sanity (the model-randomization check), or all",
    )
    parser.add_argument("--out", required=True, metavar="RUN", help="the run directory")
    parser.add_argument("--engine", default="local", choices=["local", "ray"])
    parser.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="a Ray cluster to join (ray://head:10001, auto); default: Ray on this machine",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="decoding processes (local) or Ray actors (ray); default 2",
    )
    parser.add_argument(
        "--shard-size", type=int, default=64, metavar="N", help="samples per shard (default 64)"
    )
    parser.add_argument(
        "--target",
        default="predicted",
        choices=["predicted", "label"],
        help="explain the predicted class (default) or the label",
    )
    parser.add_argument("--layer", metavar="NAME", help="the layer of CAM methods")
    parser.add_argument(
        "--preprocess",
        default="auto",
        choices=["auto", "imagenet", "crop224", "none"],
        help="image preprocessing (auto: the model's own; imagenet otherwise)",
    )
    parser.add_argument("--labels", metavar="FILE", help="class names, one per line")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="most rows per forward"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method setting, e.g. --set steps=16 (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        metavar="N",
        help="points per deletion/insertion curve (default 20; 0: one per 1%% of the pixels)",
    )
    parser.add_argument(
        "--full-maps", action="store_true", help="keep the full attributions, not only 2-D maps"
    )
    parser.add_argument(
        "--map-format", default=None, metavar="FORMAT", help="zarr (default), parquet or npz"
    )
    parser.add_argument(
        "--sanity-samples",
        type=int,
        default=32,
        metavar="N",
        help="samples of the sanity check (default 32)",
    )
    parser.add_argument("--force-new", action="store_true", help="start RUN over")
    parser.add_argument("--text-column", default=None, metavar="NAME")
    parser.add_argument("--path-column", default="path", metavar="NAME")
    parser.add_argument("--label-column", default=None, metavar="NAME")
    parser.add_argument("--mask-column", default=None, metavar="NAME")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", help="CPU threads (default: torch's)"
    )


def add_summarize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory of attrib run")
    parser.add_argument(
        "--by-class",
        nargs="?",
        const="auto",
        default=None,
        choices=["auto", "label", "prediction"],
        help="add the numbers per class (the label where there are labels, else the prediction)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "command", "run") == "summarize":
        return summarize(args)
    import torch

    from attrib.cli.recipes import parse_settings
    from attrib.core.errors import SettingError
    from attrib.runs import run as run_dataset

    if args.threads is not None:
        if args.threads < 1:
            raise SettingError("--threads", "a positive number", args.threads, "")
        torch.set_num_threads(args.threads)
    for name in ("workers", "shard_size", "sanity_samples"):
        value = getattr(args, name)
        if value < (0 if name == "workers" else 1):
            raise SettingError(f"--{name.replace('_', '-')}", "a positive number", value, "")
    settings = parse_settings(args.set)
    options = {
        "path_column": args.path_column,
        "label_column": args.label_column,
        "mask_column": args.mask_column,
    }
    text = _is_text(args)
    if text:
        model, spec, preset, layer, class_names = _text_model(args)
        methods, labels = args.method, None
        options["text_column"] = args.text_column or "text"
    else:
        model, spec, preset, layer, labels, methods = _image_model(args)
        # a folder's classes are its sub-folders in sorted order (torchvision's rule) unless
        # --labels says the model's names, which the folders then must use
        class_names = labels if args.labels else None
    result = run_dataset(
        model,
        args.data,
        methods=methods,
        metrics=args.metric,
        out=args.out,
        engine=args.engine,
        target=args.target,
        settings=settings,
        layer=layer,
        preset=preset,
        class_names=class_names,
        label_names=getattr(model, "labels", None) if text else labels,
        shard_size=args.shard_size,
        seed=args.seed,
        steps=args.steps or None,
        batch_size=args.batch_size,
        maps="full" if args.full_maps else "2d",
        map_format=args.map_format,
        sanity_samples=args.sanity_samples,
        workers=args.workers,
        address=args.address,
        device=args.device,
        model_spec=spec,
        force_new=args.force_new,
        progress=not args.quiet,
        verdict=False,  # printed below, on stdout
        source_options={k: v for k, v in options.items() if v is not None},
    )
    print(result.summary().text())
    print(f"written: {result.path} (summary.md, summary.json, shards/)")
    return 0


def summarize(args: argparse.Namespace) -> int:
    from attrib.runs import open_run

    by_class: Any = False
    if args.by_class is not None:
        by_class = True if args.by_class == "auto" else args.by_class
    summary = open_run(args.run_dir).summary(by_class=by_class)
    if args.json:
        json.dump(summary.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.markdown:
        print(summary.markdown())
    else:
        print(summary.text())
    return 0


def _is_text(args: argparse.Namespace) -> bool:
    # `demo` names both demo models: the data says which (a folder of images, or texts)
    if args.text_column is not None:
        return True
    if args.model is not None and _text_spec(args.model) and not _image_spec(args.model):
        return True
    from attrib.runs.sources.tables import table_columns, table_suffix

    if table_suffix(args.data) is None:
        return False
    columns = table_columns(args.data)
    return args.path_column not in columns and "text" in columns


def _image_spec(spec: str) -> bool:
    from attrib.runs.models import DEMO_MODELS

    return spec in DEMO_MODELS


def _text_spec(spec: str) -> bool:
    from attrib.text.loading import TEXT_MODELS

    return spec in TEXT_MODELS


def _text_model(args: argparse.Namespace) -> tuple[Any, str, str, None, None]:
    from attrib.core.errors import SettingError
    from attrib.text.loading import load_text_model

    for flag, value in (("--weights", args.weights), ("--layer", args.layer)):
        if value is not None:
            raise SettingError(flag, "nothing for a text model", value, "")
    spec = args.model or "minilm-sentiment"
    return load_text_model(spec, argument="--model"), spec, "none", None, None


def _image_model(args: argparse.Namespace) -> tuple[Any, str, str, str | None, Any, str]:
    from attrib.cli.common import check_layer, runnable_methods
    from attrib.cli.recipes import parse_settings, resolve_names
    from attrib.core.errors import SettingError
    from attrib.methods.recipes import check_settings
    from attrib.runs.models import load_model

    if args.model is None:
        raise SettingError(
            "--model", "the model to explain (see attrib run --help)", None, "e.g. --model gt_cnn"
        )
    names = resolve_names(args.method)
    settings = parse_settings(args.set)
    check_settings(names, settings)
    loaded = load_model(args.model, args.weights, device=args.device, labels=args.labels)
    names = runnable_methods(names, loaded.model, args.method)
    check_layer(names, settings, loaded.model, args.layer, loaded.layer)
    preset = loaded.preset if args.preprocess == "auto" else args.preprocess
    layer = args.layer or loaded.layer
    return loaded.model, args.model, preset, layer, loaded.class_names, ",".join(names)

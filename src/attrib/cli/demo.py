"""``attrib demo``: the embedded ImageNet model on scikit-image's photos (``attrib.data.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    from attrib.data.demo import run_demo

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

"""The ``attrib`` command.

``attrib methods`` lists the methods; ``attrib demo`` runs the main job on the embedded
default model. (The full ``explain``, ``evaluate`` and ``report`` commands come with the
pictures-and-report work; see the README.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attrib.core.errors import AttribError

__all__ = ["main"]


def _methods(_: argparse.Namespace) -> int:
    from attrib.api import available_methods

    for key, cls in sorted(available_methods().items()):
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{key:<20} {summary}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from attrib.data.demo import run_demo

    path = run_demo(Path(args.out))
    print(f"demo written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attrib", description="Explain PyTorch models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("methods", help="list the methods").set_defaults(run=_methods)
    demo = sub.add_parser("demo", help="run the demo on the embedded default model")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (AttribError, OSError) as err:
        if args.debug:
            raise
        print(f"attrib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

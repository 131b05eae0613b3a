"""``python -m benchmarks``: time attrib's methods against their peers and their limits.

Examples::

    python -m benchmarks --quick                 # smoke run: resnet18, batch 2, few repeats
    python -m benchmarks                         # resnet18 and resnet50, batches 2 and 8
    python -m benchmarks --models resnet50 --batches 8 --only saliency --repeats 15
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeVar

import torch

from benchmarks.runner import Config, run

DEFAULT_MODELS = ("resnet18", "resnet50")
DEFAULT_BATCHES = (2, 8)
DEFAULT_ROWS = (1, 2, 4, 8, 16, 32)
DEFAULT_REPEATS = 15
QUICK_MODELS = ("resnet18",)
QUICK_BATCHES = (2,)
QUICK_ROWS = (1, 2, 4)
QUICK_REPEATS = 3
T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,2,4; got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _positive(text: str) -> int:
    (value,) = _ints(text)
    return value


def parse_args(argv: list[str] | None = None) -> Config:
    """The run's ``Config`` from the command line (``--quick`` fills what is not given)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--models",
        type=_names,
        help="torchvision models, comma-separated (default resnet18,resnet50)",
    )
    parser.add_argument(
        "--batches", type=_ints, help="images per call, comma-separated (default 2,8)"
    )
    parser.add_argument(
        "--rows",
        type=_ints,
        help="rows per forward at which limits are timed (default 1,2,4,8,16,32)",
    )
    parser.add_argument("--size", type=_positive, default=224, help="image side (default 224)")
    parser.add_argument(
        "--repeats",
        type=_positive,
        help=f"timed runs per contender (default {DEFAULT_REPEATS}; {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="default: cuda if available, else cpu",
    )
    parser.add_argument(
        "--only",
        type=_names,
        default=(),
        help="case names or families to run, comma-separated (default: all)",
    )
    parser.add_argument(
        "--threads", type=_positive, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: resnet18, batch 2, r <= 4, 3 repeats"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="JSON results file (default benchmarks/results/latest.json)",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")

    def pick(given: T | None, default: T, quick: T) -> T:
        return given if given is not None else (quick if args.quick else default)

    return Config(
        models=pick(args.models, DEFAULT_MODELS, QUICK_MODELS),
        batches=pick(args.batches, DEFAULT_BATCHES, QUICK_BATCHES),
        rows=pick(args.rows, DEFAULT_ROWS, QUICK_ROWS),
        size=args.size,
        repeats=pick(args.repeats, DEFAULT_REPEATS, QUICK_REPEATS),
        device=torch.device(args.device),
        only=args.only,
        out=args.out,
        threads=args.threads,
    )


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()

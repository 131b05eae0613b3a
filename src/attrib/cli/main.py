"""The ``attrib`` command: argument parsing, and errors as one line each.

Commands live in their own modules and are imported only when run, so ``attrib --help``
and ``attrib methods`` start fast. Any error ends the command with exit status 1 and one line
on stderr, ``attrib: error: ...`` (the full traceback with ``--debug``); a command line that
does not parse ends with status 2; an interrupt with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["build_parser", "main"]

_EPILOG = """\
model SPEC (--model):
  efficientnet_lite0 | demo      the embedded ImageNet demo model (attrib[demo])
  gt_cnn                         the shipped CNN of the ground-truth shapes (32 x 32)
  model.pt                       a TorchScript file (torch.jit.save)
  resnet18 --weights FILE        a torchvision architecture with a state dict
  package.module:factory         a function returning the nn.Module [--weights FILE]
weights are read with torch.load(weights_only=True): tensors only, never pickled code.

exit status: 0 done, 1 error (one line on stderr; --debug shows the traceback),
2 bad command line, 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"attrib: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _common(debug_default: Any) -> argparse.ArgumentParser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--debug", action="store_true", default=debug_default, help="show tracebacks"
    )
    return parent


def _image_options(debug: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options shared by the commands that explain images."""
    parent = _Parser(add_help=False, parents=[debug])
    parent.add_argument("images", nargs="+", metavar="IMAGE", help="image files (Pillow)")
    parent.add_argument("--model", required=True, metavar="SPEC", help="see below")
    parent.add_argument("--weights", metavar="FILE", help="a state dict for the model")
    parent.add_argument(
        "--method",
        required=True,
        metavar="NAME[,NAME...]",
        help="methods (see `attrib methods`), or all",
    )
    parent.add_argument(
        "--target",
        default="predicted",
        metavar="N|predicted|NAME",
        help="the class to explain (default: the predicted one)",
    )
    parent.add_argument("--layer", metavar="NAME", help="the layer of CAM methods")
    parent.add_argument("--out", default="out/attrib", metavar="DIR", help="output folder")
    parent.add_argument(
        "--preprocess",
        default="auto",
        choices=["auto", "imagenet", "crop224", "none"],
        help="image preprocessing (auto: the model's own; imagenet otherwise)",
    )
    parent.add_argument("--labels", metavar="FILE", help="class names, one per line")
    parent.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parent.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="images per call and most rows per forward",
    )
    parent.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method setting, e.g. --set steps=16 (repeatable)",
    )
    parent.add_argument(
        "--threads", type=int, default=None, metavar="N", help="CPU threads (default: torch's)"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attrib",
        description="Explain the predictions of PyTorch models.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(False)],
    )
    debug = _common(argparse.SUPPRESS)  # in subcommands: never overwrite a global --debug
    images = _image_options(debug)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    def command(name: str, module: str, summary: str, parents: list) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=summary,
            description=summary,
            parents=parents,
            epilog=_EPILOG if parents and parents[0] is images else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(module=module)
        return p

    listing = command(
        "methods",
        "listing",
        "list the methods, one line each, with their papers (or one method in full)",
        [debug],
    )
    listing.add_argument(
        "name", nargs="?", metavar="NAME", help="one method: its idea, formula and settings"
    )

    command(
        "explain", "explain", "explain images: a PNG and an .npz per image and method", [images]
    )

    text = command("explain-text", "text", "explain a text classifier's prediction", [debug])
    text.add_argument("texts", nargs="+", metavar="TEXT")
    text.add_argument(
        "--model",
        default="minilm-sentiment",
        metavar="SPEC",
        help="minilm-sentiment (the demo) or a local Hugging Face model folder",
    )
    text.add_argument("--method", default="integrated_gradients", metavar="NAME")
    text.add_argument("--target", default="predicted", metavar="N|predicted|NAME")
    text.add_argument("--out", default="out/attrib", metavar="DIR")
    text.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    text.add_argument(
        "--reduce",
        default=None,
        metavar="NAME",
        help="a token's score from its embedding dimensions: sum, abs_sum, l2, mean or "
        "max_abs (default: the method's own, l2 for saliency, sum for the others)",
    )

    erasure = command(
        "erasure",
        "erasure",
        "attention erasure tests (Serrano and Smith 2019) on the demo text model",
        [debug],
    )
    erasure.add_argument(
        "--sentences", type=int, default=250, metavar="N", help="held-out snippets to test"
    )
    erasure.add_argument("--layer", type=int, default=-1, help="attention layer (default: last)")
    erasure.add_argument(
        "--max-tokens", type=int, default=64, metavar="N", help="skip longer snippets"
    )
    erasure.add_argument("--seed", type=int, default=0)
    erasure.add_argument(
        "--exclude-special", action="store_true", help="leave [CLS]/[SEP] out of the inputs"
    )
    erasure.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="folder for JSON and PNG plots"
    )
    erasure.add_argument(
        "--threads", type=int, default=None, metavar="N", help="CPU threads (default: torch's)"
    )
    erasure.add_argument(
        "--encoder",
        default=None,
        metavar="DIR",
        help="all-MiniLM-L6-v2 folder (default: the installed one)",
    )

    evaluate = command(
        "evaluate", "evaluate", "evaluate methods: deletion, insertion and other metrics", [images]
    )
    evaluate.add_argument(
        "--metric",
        default="deletion,insertion",
        metavar="NAME[,NAME...]",
        help="metrics of attrib.metrics (default deletion,insertion)",
    )
    evaluate.add_argument("--steps", type=int, default=20, help="points per curve (default 20)")

    report = command(
        "report", "report", "write one self-contained HTML report of images and methods", [images]
    )
    report.add_argument("--metric", default="deletion,insertion", metavar="NAME[,NAME...]")
    report.add_argument("--steps", type=int, default=20, help="points per curve (default 20)")
    report.add_argument(
        "--sanity",
        default="",
        metavar="NAME[,NAME...]",
        help="methods to run the model-randomization sanity check on",
    )
    report.add_argument(
        "--sanity-layers",
        default=None,
        metavar="NAME[,NAME...]",
        help="layers to randomize, top first (default: 6 spread over the model)",
    )
    report.add_argument("--title", default=None)

    dataset = command(
        "run",
        "run",
        "explain and evaluate a whole dataset into a run directory (resumable; local or Ray)",
        [debug],
    )
    dataset.epilog = _EPILOG
    from attrib.cli import run as run_command

    run_command.add_arguments(dataset)
    summary = command(
        "summarize", "run", "print a run's verdict: which method to trust on that data", [debug]
    )
    run_command.add_summarize_arguments(summary)

    from attrib.cli import serve as serve_command

    explorer = command(
        "serve",
        "serve",
        "the explorer: a web page over runs and live explanations (127.0.0.1 by default)",
        [debug],
    )
    explorer.epilog = _EPILOG
    serve_command.add_serve_arguments(explorer)
    explore = command(
        "explore",
        "serve",
        "write a run's explorer as static files that open from file:// (small runs)",
        [debug],
    )
    serve_command.add_explore_arguments(explore)

    demo = command("demo", "demo", "run the demo on the embedded ImageNet model", [debug])
    demo.add_argument("--out", default="out/demo", metavar="DIR", help="default out/demo")
    demo.add_argument("--images", default=None, metavar="NAME[,NAME...]", help="photos to use")
    demo.add_argument("--methods", default=None, metavar="NAME[,NAME...]", help="default all")
    demo.add_argument("--no-text", action="store_true", help="skip the text model")
    demo.add_argument("--no-metrics", action="store_true", help="skip metrics and sanity checks")
    demo.add_argument(
        "--threads", type=int, default=1, help="CPU threads (default 1; 0: torch's default)"
    )
    return parser


def _one_line_warnings() -> None:
    seen: set[str] = set()

    def show(message: Any, category: type, *_: Any, **__: Any) -> None:
        lines = str(message).strip().splitlines()
        text = f"attrib: warning: {lines[0] if lines else category.__name__}"
        if text not in seen:
            seen.add(text)
            sys.stderr.write(text + "\n")

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if not debug:
        _one_line_warnings()
        # deprecations inside torch and other libraries are not the command's user's to fix
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        module = importlib.import_module(f"attrib.cli.{args.module}")
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("\nattrib: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (attrib methods | head): nothing left to say to it
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if debug:
            raise
        sys.stderr.write(f"attrib: error: {_message(error)}\n")
        return 1


def _message(error: BaseException) -> str:
    from attrib.core.errors import AttribError

    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines) if isinstance(error, AttribError) else (lines[0] if lines else "")
    if not isinstance(error, AttribError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
        text += " (run with --debug for the traceback)"
    return text

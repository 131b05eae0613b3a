"""``attrib serve RUN [RUN ...] [--model SPEC --weights FILE] [--port 8765]`` and
``attrib explore RUN --out site/``.

``serve`` starts the explorer (``attrib.serve``) on 127.0.0.1 and prints its address;
``--host 0.0.0.0`` warns that anyone who can reach the machine can use it. ``explore``
writes the explorer's pages and a run's data as files that open from ``file://``.
"""

from __future__ import annotations

import argparse

__all__ = ["add_explore_arguments", "add_serve_arguments", "run"]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories of attrib run")
    parser.add_argument(
        "--model", default=None, metavar="SPEC", help="a model to explain uploads (see below)"
    )
    parser.add_argument("--weights", metavar="FILE", help="a state dict for the model")
    parser.add_argument("--labels", metavar="FILE", help="class names, one per line")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--port", type=int, default=8765, help="default 8765")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="default 127.0.0.1 (this machine only); another address warns",
    )
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method setting for live explanations (repeatable)",
    )


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run directory of attrib run")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder of the site")
    parser.add_argument(
        "--max-samples",
        type=int,
        default=500,
        metavar="N",
        help="the most samples a static site holds (default 500; each has its pictures)",
    )


def run(args: argparse.Namespace) -> int:
    from attrib.cli.recipes import parse_settings
    from attrib.core.errors import SettingError

    if args.command == "explore":
        from attrib.serve.export import export_site

        index = export_site(args.run_dir, args.out, max_samples=args.max_samples)
        print(f"written: {index} (open it in a browser; no server needed)")
        return 0
    if not 0 < args.port < 65536:
        raise SettingError("--port", "a port number (1-65535)", args.port, "")
    from attrib.serve.server import explorer_app, serve

    app = explorer_app(
        args.runs,
        model=args.model,
        weights=args.weights,
        labels=args.labels,
        device=args.device,
        host=args.host,
        settings=parse_settings(args.set),
    )
    serve(app, host=args.host, port=args.port, open_browser=args.open)
    return 0

"""``attrib erasure``: Serrano and Smith's (2019) attention erasure tests on the demo text model.

Both tests of ``attrib.text.erasure`` run on the first held-out Rotten Tomatoes snippets
(``attrib.text.datasets.held_out_texts``) with the MiniLM sentiment classifier; the numbers
are printed (``attrib.report.erasure_table``) and, with ``--out``, written as JSON with the
two figures as PNG (``attrib.report.write_erasure``).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

__all__ = ["command_line", "run"]


def run(args: argparse.Namespace, classifier: Any = None) -> int:
    """The command; ``classifier``: the text model to test (default: the demo's MiniLM
    sentiment classifier, loaded from ``--encoder`` or the installed encoder)."""
    from attrib.cli.common import output_folder
    from attrib.report.erasure import erasure_table, write_erasure
    from attrib.text.datasets import held_out_texts
    from attrib.text.erasure import erasure_tests
    from attrib.text.minilm import load_minilm_sentiment

    if args.out is not None:
        output_folder(args.out)  # before minutes of work
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if classifier is None:
        classifier = load_minilm_sentiment(args.encoder)
    texts = held_out_texts(classifier, args.sentences, args.max_tokens)
    report = erasure_tests(
        classifier,
        texts,
        layer=args.layer,
        include_special=not args.exclude_special,
        seed=args.seed,
    )
    print(erasure_table(report))
    if args.out is not None:
        written = write_erasure(report, args.out, command=command_line(args))
        print("written: " + ", ".join(str(path) for path in written))
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (recorded in ``erasure.json``): every choice
    that changes the numbers, whatever was left to its default."""
    line = (
        f"attrib erasure --sentences {args.sentences} --layer {args.layer} "
        f"--max-tokens {args.max_tokens} --seed {args.seed}"
    )
    return line + (" --exclude-special" if args.exclude_special else "")

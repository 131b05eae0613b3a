"""The ``attrib`` command (see ``attrib --help``); ``main`` is its entry point."""

from attrib.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

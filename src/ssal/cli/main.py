"""Entry point of the ``ssal`` command.

Each command group is a module of this package exposing ``register(subparsers)``; a command's
handler takes the parsed arguments and returns an exit code. Input problems raise
:class:`ssal.errors.SsalInputError`, printed here as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from ..errors import EXIT_INPUT_ERROR, SsalInputError
from . import data_cmd, eval_cmd, export_cmd, pretrain_cmd

COMMAND_MODULES = (data_cmd, pretrain_cmd, eval_cmd, export_cmd)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser of ``ssal``."""
    parser = argparse.ArgumentParser(
        prog="ssal",
        description="Self-supervised gait-based emotion recognition (SSAL) and baselines.",
    )
    parser.add_argument("--version", action="version", version=f"ssal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ssal`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_INPUT_ERROR
    try:
        return int(args.handler(args) or 0)
    except SsalInputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Entry point of the ``ssal`` command.

Each command group is a module of this package exposing ``register(subparsers)``; a command's
handler takes the parsed arguments and returns an exit code. Input problems raise
:class:`ssal.errors.SsalInputError`, printed here as one line with exit code 2.

:func:`main` is also the net under every command: numpy's floating-point warnings are
silenced (readers check finiteness themselves), ``MemoryError`` and ``RecursionError`` become
one line with exit code 2, and any other unexpected exception becomes one line naming its type
plus a hint to rerun with ``--debug`` (exit code 1), which shows the traceback and the
warnings instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import EXIT_INPUT_ERROR, SsalInputError, escape_text
from . import data_cmd, experiment_cmd, export_cmd, model_cmd, pretrain_cmd, protocol_cmd, video_cmd

COMMAND_MODULES = (data_cmd, pretrain_cmd, protocol_cmd, experiment_cmd, model_cmd, video_cmd, export_cmd)
#: Exit code of an unexpected failure (a bug, or an environment problem ssal did not foresee).
EXIT_INTERNAL_ERROR = 1
#: Setting this environment variable to 1 has the effect of ``--debug``.
DEBUG_ENV_VAR = "SSAL_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser of ``ssal``."""
    parser = argparse.ArgumentParser(
        prog="ssal",
        description="Self-supervised gait-based emotion recognition (SSAL) and baselines.",
    )
    parser.add_argument("--version", action="version", version=f"ssal {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and warnings of unexpected errors (also SSAL_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ssal`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    ``--debug`` may stand anywhere on the command line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV_VAR, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if debug:
        return _run(argv)
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Warnings are for developers; every input problem has its own one-line error.
        warnings.simplefilter("ignore")
        try:
            return _run(argv)
        except SystemExit:
            raise
        except MemoryError:
            print("error: not enough memory for this input (see 'Limits' in docs/data.md)", file=sys.stderr)
            return EXIT_INPUT_ERROR
        except RecursionError:
            print("error: the input is nested too deeply to process", file=sys.stderr)
            return EXIT_INPUT_ERROR
        except Exception as exc:  # noqa: BLE001 - the net under every command
            detail = escape_text(" ".join(str(exc).split()), 300)
            print(f"error: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
                  f"(rerun with --debug for the traceback)", file=sys.stderr)
            return EXIT_INTERNAL_ERROR


def _run(argv: Sequence[str] | None) -> int:
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

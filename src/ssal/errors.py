"""Error types shared by every part of ssal.

Every problem caused by the user's input (a file, a setting) is raised as
:class:`SsalInputError`. The command line turns it into one line on stderr,
``error: <where>: <problem>``, and exit code 2, without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

EXIT_INPUT_ERROR = 2


class SsalInputError(ValueError):
    """Bad user input: names the file (or setting) and the problem in one line."""

    def __init__(self, where: str | os.PathLike[str] | None, problem: str) -> None:
        self.where = str(where) if where is not None else None
        # Keep the message on one line whatever the problem text holds.
        self.problem = " ".join(str(problem).split())
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as printed by the CLI (without the ``error:`` prefix)."""
        if self.where:
            return f"{self.where}: {self.problem}"
        return self.problem


def stat_input(path: Path, where: str) -> os.stat_result:
    """``os.stat`` of a user-given path; a missing or inaccessible path is a one-line error."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise SsalInputError(where, "file not found") from None
    except (OSError, ValueError) as exc:
        raise SsalInputError(where, f"cannot access ({getattr(exc, 'strerror', None) or exc})") from None


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as shown in messages; non-UTF-8 bytes are escaped so the line stays printable."""
    text = os.fsdecode(path) if not isinstance(path, Path) else str(path)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")

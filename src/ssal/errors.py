"""Error types shared by every part of ssal.

Every problem caused by the user's input (a file, a setting) is raised as
:class:`SsalInputError`. The command line turns it into one line on stderr,
``error: <where>: <problem>``, and exit code 2, without a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

EXIT_INPUT_ERROR = 2

# C0 and C1 control characters, DEL and the Unicode line/paragraph separators: anything that
# could break a message onto a second line or act on a terminal (ESC sequences, BEL).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_text(text: object, limit: int | None = 500) -> str:
    """``text`` made safe for one terminal line.

    Control characters (newline, tab, ESC, BEL, C1 codes, U+2028/U+2029) become ``\\n``,
    ``\\t``, ``\\x1b`` ... escapes, lone surrogates (undecodable file-name bytes) become
    ``\\udcff`` escapes, and text longer than ``limit`` characters is cut with ``...``.
    """
    s = str(text).encode("utf-8", "backslashreplace").decode("utf-8")

    def one(m: re.Match[str]) -> str:
        c = m.group(0)
        named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
        return named.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    s = _CONTROL.sub(one, s)
    if limit is not None and len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


class SsalInputError(ValueError):
    """Bad user input: names the file (or setting) and the problem in one line."""

    def __init__(self, where: str | os.PathLike[str] | None, problem: str) -> None:
        self.where = escape_text(where, 300) if where is not None else None
        # One line whatever the problem text holds: runs of whitespace (a library's multi-line
        # message) become one space, other control characters are escaped.
        self.problem = escape_text(" ".join(str(problem).split()), 1000)
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
    return escape_text(text, None)

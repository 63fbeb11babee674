"""Checks on output paths, run before any work starts.

Every command that writes calls :func:`check_output_file` or :func:`check_output_dir` on its
``--out`` before it reads data or trains, so a bad output path is one line and exit code 2
at once, not a traceback after an hour of work, and nothing is left half-written:

* the folder the output goes into exists, is a directory and is writable (probed by creating
  and removing a temporary file there: permission bits alone do not tell, e.g. in ``/proc``);
* a file output is not an existing directory, FIFO or device, and no dangling symbolic link;
* a directory output is not an existing file and no dangling symbolic link, and an existing
  non-empty directory needs ``--overwrite`` (or ``--resume`` where the command continues runs).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path

from .errors import SsalInputError, display_path


def _lstat(path: Path, where: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SsalInputError(where, f"cannot access the output path ({getattr(exc, 'strerror', None) or exc})") from None


def _follow(path: Path, where: str) -> os.stat_result | None:
    """``stat`` of ``path`` following links; ``None`` when absent; a dangling link is an error."""
    st = _lstat(path, where)
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            return path.stat()
        except FileNotFoundError:
            raise SsalInputError(where, "is a dangling symbolic link (its target does not exist)") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop on some Pythons
            raise SsalInputError(where, f"is a symbolic link that cannot be followed ({getattr(exc, 'strerror', None) or exc})") from None
    return st


def probe_writable(folder: Path, where: str) -> None:
    """Refuse ``folder`` unless a file can be created in it (created and removed at once)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ssal-probe-", dir=folder)
    except (OSError, ValueError) as exc:
        raise SsalInputError(
            where, f"cannot write into {display_path(folder)} ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:  # pragma: no cover - removed by someone else
        pass


def _existing_ancestor(path: Path, where: str) -> Path:
    """The nearest ancestor of ``path`` that exists; it must be a directory."""
    parent = path.absolute().parent
    while True:
        st = _follow(parent, where)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                raise SsalInputError(where, f"{display_path(parent)} is not a directory")
            return parent
        if parent.parent == parent:  # pragma: no cover - the root always exists
            return parent
        parent = parent.parent


def check_output_file(path: str | os.PathLike[str], *, suffixes: Iterable[str] | None = None,
                      what: str = "output file", create_parents: bool = False) -> Path:
    """Check an output *file* path before work starts; returns it as a :class:`Path`.

    Args:
        path: the file to be written (replaced atomically when it exists).
        suffixes: allowed extensions (lower case, with the dot), if restricted.
        what: how messages call the file.
        create_parents: the writer creates missing folders (only the nearest existing ancestor
            must be writable); otherwise the folder must exist.

    Raises:
        SsalInputError: wrong extension, a directory / FIFO / device / dangling link at
            ``path``, a missing or unwritable folder.
    """
    p = Path(path)
    where = display_path(p)
    allowed = tuple(suffixes or ())
    if allowed and p.suffix.lower() not in allowed:
        raise SsalInputError(where, f"{what} must end in {' or '.join(allowed)}")
    if not p.name or p.name in (".", ".."):
        raise SsalInputError(where, f"{what} must name a file, not a folder")
    st = _follow(p, where)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise SsalInputError(where, f"is a directory; the {what} must be a file name")
        if not stat.S_ISREG(st.st_mode):
            raise SsalInputError(where, "exists and is not a regular file (a FIFO, socket or device?)")
    parent = p.absolute().parent
    pst = _follow(parent, where)
    if pst is None:
        if not create_parents:
            raise SsalInputError(where, "the output folder does not exist")
        parent = _existing_ancestor(p, where)
    elif not stat.S_ISDIR(pst.st_mode):
        raise SsalInputError(where, "the output folder is not a directory")
    probe_writable(parent, where)
    return p


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False,
                     leftovers: Collection[str] = (), what: str = "output directory",
                     resumable: bool = False) -> Path:
    """Check an output *directory* before work starts; returns it as a :class:`Path`.

    An existing non-empty directory is refused unless ``overwrite`` or ``resume`` is set, or
    it holds only names in ``leftovers`` (files a command writes before its first result, which
    a rerun may replace) and hidden temporary files (``.*.tmp``). ``resumable``: the command
    has ``--resume`` (the message mentions it). Nothing is created.

    Raises:
        SsalInputError: a file or dangling link at ``path``, a non-empty directory without a
            flag, a missing ancestor that is a file, an unwritable location.
    """
    p = Path(path)
    where = display_path(p)
    if str(path) == "":
        raise SsalInputError("--out", f"the {what} must not be empty")
    st = _follow(p, where)
    if st is None:
        probe_writable(_existing_ancestor(p, where), where)
        return p
    if not stat.S_ISDIR(st.st_mode):
        raise SsalInputError(where, f"exists and is not a directory; the {what} must be a directory")
    if not (overwrite or resume):
        try:
            names = [e.name for e in os.scandir(p)]
        except OSError as exc:
            raise SsalInputError(where, f"cannot list the {what} ({exc.strerror or exc})") from None
        content = [n for n in names if n not in leftovers and not (n.startswith(".") and n.endswith(".tmp"))]
        if content:
            raise SsalInputError(
                where, f"{what} is not empty; pass --overwrite to write into it"
                       + (" or --resume to continue it" if resumable else "")
            )
    probe_writable(p, where)
    return p

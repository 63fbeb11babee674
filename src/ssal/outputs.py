"""Checks on output paths, run before any work starts.

Every command that writes calls :func:`check_output_file` or :func:`check_output_dir` on its
``--out`` before it reads data or trains, so a bad output path is one line and exit code 2
at once, not a traceback after an hour of work, and nothing is left half-written:

* the folder the output goes into exists, is a directory and is writable (probed by creating
  and removing a temporary file there: permission bits alone do not tell, e.g. in ``/proc``);
* a file output is not an existing directory, FIFO or device, and no dangling symbolic link;
* a directory output is not an existing file and no dangling symbolic link, and an existing
  non-empty directory needs ``--overwrite`` (or ``--resume`` where the command continues runs);
* an existing output file is replaced only with ``--overwrite``;
* nothing is written over what the command reads (``inputs=``): an output equal to an input
  (after resolving symbolic links, or the same inode: a hard link), an output inside an input
  folder, or an output directory containing an input is refused;
* no other ssal process is writing the output (see below).

:func:`output_lock` is the one lock of an output being written: an advisory lock file
(``<dir>/.ssal.lock`` for a directory output, ``<file>.lock`` beside a file output or a
``.ssal`` corpus, which is replaced whole) created with ``O_CREAT | O_EXCL`` and holding the
holder's pid, host and start time. A second writer gets one line naming the output and the
holder; a lock left by a process that is gone (same host, pid no longer running) is removed
and taken over. Under ``torchrun`` only rank 0 takes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
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
    """Refuse ``folder`` unless a file can be created in it (created and removed at once).

    The probe is a hidden ``.tmp`` file, which the emptiness checks ignore: a process probing a
    directory that another one is checking must not make it look written.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ssal-probe-", suffix=".tmp", dir=folder)
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


#: Name of the lock file inside a directory output (never run content: the emptiness checks
#: of :func:`check_output_dir` and the run directory ignore it).
LOCK_NAME = ".ssal.lock"
#: Suffix of the lock file beside a file output (``out.csv`` -> ``out.csv.lock``).
LOCK_SUFFIX = ".lock"

InputPaths = Iterable["str | os.PathLike[str] | None"]


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _inside(child: str, parent: str) -> bool:
    """``child`` lies strictly inside ``parent`` (both resolved)."""
    if child == parent:
        return False
    prefix = parent if parent.endswith(os.sep) else parent + os.sep
    return child.startswith(prefix)


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """The same file: equal resolved paths, or one inode (a hard link) when both exist."""
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _input_paths(inputs: InputPaths) -> list[str]:
    """The inputs that name files or folders (``None``, ``""`` and ``"builtin"`` dropped)."""
    out = []
    for inp in inputs or ():
        if inp is None:
            continue
        text = os.fspath(inp)
        if text in ("", "builtin"):
            continue
        out.append(text)
    return out


def check_not_input(path: str | os.PathLike[str], inputs: InputPaths, *, what: str = "output") -> None:
    """Refuse an output that would be written over what the command reads.

    ``inputs``: the files and folders the command reads (a folder: every file in it is read).
    Refused: ``path`` is an input (after resolving symbolic links, or the same inode), lies
    inside an input folder, or contains an input (an output directory around the data).

    Raises:
        SsalInputError: naming the output and the input.
    """
    where = display_path(path)
    try:
        out = _real(path)
    except (OSError, ValueError) as exc:
        raise SsalInputError(where, f"cannot resolve the output path ({getattr(exc, 'strerror', None) or exc})") from None
    for inp in _input_paths(inputs):
        try:
            real = _real(inp)
        except (OSError, ValueError):
            continue  # a name no file can have: nothing there to protect
        shown = display_path(inp)
        if _same(path, inp):
            raise SsalInputError(where, f"the output is the input {shown}; write the {what} elsewhere "
                                        "(an output never replaces what the command reads)")
        if _inside(out, real):
            raise SsalInputError(where, f"lies inside the input folder {shown}, whose files the command reads; "
                                        f"write the {what} elsewhere")
        if _inside(real, out):
            raise SsalInputError(where, f"contains the input {shown}; write the {what} elsewhere")


def check_output_file(path: str | os.PathLike[str], *, suffixes: Iterable[str] | None = (),
                      what: str = "output file", overwrite: bool = False, inputs: InputPaths = (),
                      create_parents: bool = False) -> Path:
    """Check an output *file* path before work starts; returns it as a :class:`Path`.

    Args:
        path: the file to be written (replaced atomically when it exists).
        suffixes: allowed extensions (lower case, with the dot), if restricted.
        what: how messages call the file.
        overwrite: an existing regular file may be replaced (``--overwrite``).
        inputs: files and folders the command reads (:func:`check_not_input`).
        create_parents: the writer creates missing folders (only the nearest existing ancestor
            must be writable); otherwise the folder must exist.

    Raises:
        SsalInputError: wrong extension, an input, a directory / FIFO / socket / device /
            dangling link at ``path``, an existing file without ``overwrite``, a missing or
            unwritable folder, another ssal process writing it.
    """
    p = Path(path)
    where = display_path(p)
    allowed = tuple(suffixes or ())
    if str(path) == "":
        raise SsalInputError("--out", f"the {what} must not be empty")
    if allowed and p.suffix.lower() not in allowed:
        raise SsalInputError(where, f"{what} must end in {' or '.join(allowed)}")
    if not p.name or p.name in (".", ".."):
        raise SsalInputError(where, f"{what} must name a file, not a folder")
    check_not_input(p, inputs, what=what)
    st = _follow(p, where)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise SsalInputError(where, f"is a directory; the {what} must be a file name")
        if not stat.S_ISREG(st.st_mode):
            raise SsalInputError(where, "exists and is not a regular file (a FIFO, socket or device?); "
                                        f"the {what} must be a regular file")
        if not overwrite:
            raise SsalInputError(where, f"{what} exists; pass --overwrite to replace it")
    parent = p.absolute().parent
    pst = _follow(parent, where)
    if pst is None:
        if not create_parents:
            raise SsalInputError(where, "the output folder does not exist")
        parent = _existing_ancestor(p, where)
    elif not stat.S_ISDIR(pst.st_mode):
        raise SsalInputError(where, "the output folder is not a directory")
    probe_writable(parent, where)
    check_unlocked(p, directory=False)
    return p


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False,
                     leftovers: Collection[str] = (), what: str = "output directory",
                     resumable: bool = False, inputs: InputPaths = ()) -> Path:
    """Check an output *directory* before work starts; returns it as a :class:`Path`.

    An existing non-empty directory is refused unless ``overwrite`` or ``resume`` is set, or
    it holds only names in ``leftovers`` (files a command writes before its first result, which
    a rerun may replace), hidden temporary files (``.*.tmp``) and the lock file
    (:data:`LOCK_NAME`). ``resumable``: the command has ``--resume`` (the message mentions it).
    ``inputs``: files and folders the command reads (:func:`check_not_input`). Nothing is
    created.

    Raises:
        SsalInputError: an input, a file / special file or dangling link at ``path``, a
            non-empty directory without a flag, a missing ancestor that is a file, an
            unwritable location, another ssal process writing it.
    """
    p = Path(path)
    where = display_path(p)
    if str(path) == "":
        raise SsalInputError("--out", f"the {what} must not be empty")
    check_not_input(p, inputs, what=what)
    st = _follow(p, where)
    if st is None:
        probe_writable(_existing_ancestor(p, where), where)
        return p
    if not stat.S_ISDIR(st.st_mode):
        raise SsalInputError(where, f"exists and is not a directory; the {what} must be a directory")
    check_unlocked(p, directory=True)
    if not (overwrite or resume):
        try:
            names = [e.name for e in os.scandir(p)]
        except OSError as exc:
            raise SsalInputError(where, f"cannot list the {what} ({exc.strerror or exc})") from None
        content = [n for n in names if n not in leftovers and n != LOCK_NAME
                   and not (n.startswith(".") and n.endswith(".tmp"))]
        if content:
            raise SsalInputError(
                where, f"{what} is not empty; pass --overwrite to write into it"
                       + (" or --resume to continue it" if resumable else "")
            )
    probe_writable(p, where)
    return p


# ---------------------------------------------------------------------------------------------
# The lock of an output being written

#: Lock files this process holds: resolved lock path -> how many nested holds.
_HELD: dict[str, int] = {}


def lock_file(path: str | os.PathLike[str], *, directory: bool = False) -> Path:
    """The lock file of an output: ``<dir>/.ssal.lock`` (``directory``) or ``<file>.lock``."""
    p = Path(path)
    return p / LOCK_NAME if directory else p.with_name(p.name + LOCK_SUFFIX)


def _secondary_rank() -> bool:
    """A ``torchrun`` worker other than rank 0 (only rank 0 writes, so only it locks)."""
    return os.environ.get("RANK", "0").strip() not in ("", "0")


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError, OverflowError):
        return False
    return False


def _read_lock(lock: Path) -> tuple[dict | None, int | None]:
    """The holder record of ``lock`` and its inode; ``(None, None)`` when the file is gone,
    ``({}, inode)`` when it holds no valid record (yet: a holder between creating and writing it)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise SsalInputError(display_path(lock), f"cannot read the lock file ({exc.strerror or exc}); "
                                                 "remove it if no ssal process is writing there") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SsalInputError(display_path(lock), "the lock file is not a regular file; remove it")
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}, st.st_ino
    if not isinstance(rec, dict) or isinstance(rec.get("pid"), bool) or not isinstance(rec.get("pid"), int) \
            or not isinstance(rec.get("host"), str):
        return {}, st.st_ino
    return rec, st.st_ino


def _holder_error(path: Path, lock: Path, rec: dict) -> SsalInputError:
    pid = rec.get("pid", "unknown")
    host = rec.get("host") or "unknown host"
    return SsalInputError(
        display_path(path),
        f"is being written by another ssal process (pid {pid} on {host}); wait for it or remove "
        f"{display_path(lock)} if that process is gone")


def _live_holder(path: Path, lock: Path, *, break_stale: bool) -> dict | None:
    """The record of a live holder of ``lock`` other than this process, else ``None``.

    A stale lock (this host, pid gone) is removed when ``break_stale``; an unreadable record is
    re-read for a moment (a holder may be writing it) and then counts as held.
    """
    for attempt in range(20):
        if _real(lock) in _HELD:
            return None
        rec, inode = _read_lock(lock)
        if rec is None:
            return None
        if not rec:  # created, not yet written (or damaged)
            if attempt < 19:
                time.sleep(0.01)
                continue
            return {"pid": "unknown", "host": "unknown host"}
        if rec["host"] != socket.gethostname() or not _pid_gone(rec["pid"]):
            return rec
        if not break_stale:
            return None
        # Stale: move it aside, then make sure the moved file is the one judged stale.
        aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            continue  # someone else removed it
        except OSError as exc:
            raise SsalInputError(display_path(lock), f"cannot remove the stale lock file "
                                                     f"({exc.strerror or exc})") from None
        try:
            moved_inode = os.lstat(aside).st_ino
        except OSError:
            moved_inode = None
        if moved_inode != inode:  # a fresh lock taken in between: put it back
            with contextlib.suppress(OSError):
                os.link(aside, lock)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        if moved_inode == inode:
            return None
    return {"pid": "unknown", "host": "unknown host"}  # pragma: no cover - a lock that keeps changing


def check_unlocked(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Refuse an output another live ssal process holds the lock of (see :func:`output_lock`).

    A lock of this process, a stale lock and (under ``torchrun``) any lock on ranks other than
    0 pass. Nothing is written."""
    if _secondary_rank():
        return
    p = Path(path)
    lock = lock_file(p, directory=directory)
    rec = _live_holder(p, lock, break_stale=False)
    if rec is not None:
        raise _holder_error(p, lock, rec)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path | None]:
    """Hold the lock of an output while it is written; yields the lock file (``None`` on a
    ``torchrun`` rank other than 0, which takes no lock).

    ``directory``: the output is a directory (the lock is ``<dir>/.ssal.lock``; the directory
    is created, and removed again on release when this lock created it and it is left empty);
    otherwise the lock is ``<file>.lock`` beside the output (a file or a ``.ssal`` corpus,
    which is replaced whole). Nested holds of one output in one process are allowed. The lock
    is released however the block ends (exceptions and ``KeyboardInterrupt`` included).

    Raises:
        SsalInputError: another live ssal process holds the lock (one line naming the output,
            the holder's pid and host, and the lock file), or the lock cannot be created.
    """
    if _secondary_rank():
        yield None
        return
    p = Path(path)
    where = display_path(p)
    created: list[Path] = []
    if directory:
        missing = []
        q = p.absolute()
        while not q.exists() and not q.is_symlink() and q.parent != q:
            missing.append(q)
            q = q.parent
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SsalInputError(where, f"cannot create the output directory ({exc.strerror or exc})") from None
        created = missing  # innermost first
    lock = lock_file(p, directory=directory)
    key = _real(lock)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield lock
        finally:
            _HELD[key] -= 1
        return
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode("utf-8")
    recreated = 0
    try:
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                rec = _live_holder(p, lock, break_stale=True)
                if rec is not None:
                    raise _holder_error(p, lock, rec) from None
                continue
            except FileNotFoundError as exc:
                # A racing process that created the directory and was refused removed it again
                # between our mkdir and this open: create it again (a few times at most).
                if not directory or recreated >= 5:
                    raise SsalInputError(where, f"cannot create the lock file {display_path(lock)} "
                                                f"({exc.strerror or exc})") from None
                recreated += 1
                try:
                    p.mkdir(parents=True)
                except OSError:
                    continue  # exists again, or fails: the open says which
                if p.absolute() not in created:
                    created.insert(0, p.absolute())  # ours now: removed on release if left empty
                continue
            except OSError as exc:
                raise SsalInputError(where, f"cannot create the lock file {display_path(lock)} "
                                            f"({exc.strerror or exc})") from None
            try:
                os.write(fd, record)
            finally:
                os.close(fd)
            break
    except BaseException:
        _remove_created(created)
        raise
    _HELD[key] = 1
    try:
        yield lock
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(lock)
        _remove_created(created)


def _remove_created(created: list[Path]) -> None:
    """Remove the directories a lock created (innermost first) where nothing was written."""
    for d in created:
        try:
            d.rmdir()
        except OSError:
            return


__all__ = ["LOCK_NAME", "LOCK_SUFFIX", "check_not_input", "check_output_dir", "check_output_file",
           "check_unlocked", "lock_file", "output_lock", "probe_writable"]

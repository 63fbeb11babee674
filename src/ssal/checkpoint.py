"""Checkpoint files: atomic writes, safe loads, format version and layout checks.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, written with
:func:`torch.save` to a temporary file beside the target, flushed and fsync'ed, then renamed
over the target (``os.replace`` is atomic on POSIX), so a crash leaves either the old or the new
file, never a torn one. Loading always uses ``torch.load(weights_only=True)``: a checkpoint can
never run code.

Before ``torch.load`` the file is checked at the door: a regular file of at most
:data:`MAX_CHECKPOINT_BYTES`, in the zip layout ``torch.save`` writes, whose members are
stored uncompressed (``torch.save`` never compresses; a deflated member could expand a small
file into gigabytes), at most :data:`MAX_CHECKPOINT_BYTES` in total and at most
:data:`MAX_PICKLE_BYTES` of pickled metadata. ``torch.load`` itself refuses storages larger
than their records. What the metadata say is validated by :mod:`ssal.training.checkpoint_fields`.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import SsalInputError, display_path

#: Version of the checkpoint layout; bumped when keys change meaning.
FORMAT_VERSION = 1
#: Marks an ssal checkpoint.
KIND = "ssal-checkpoint"
#: Largest checkpoint file read, and most bytes its members may hold in total (1 GiB).
MAX_CHECKPOINT_BYTES = 2**30
#: Largest pickled metadata record (``data.pkl``) of a checkpoint (64 MiB).
MAX_PICKLE_BYTES = 64 * 2**20
#: Most members (weight records) of a checkpoint archive.
MAX_CHECKPOINT_MEMBERS = 100_000


def _check_archive(path: Path, where: str, size: int) -> None:
    """Refuse a checkpoint file that is not ``torch.save``'s plain zip layout within the limits."""
    import zipfile

    if size > MAX_CHECKPOINT_BYTES:
        raise SsalInputError(where, f"checkpoint of {size} bytes is larger than the limit of {MAX_CHECKPOINT_BYTES} "
                                    f"bytes (ssal.checkpoint.MAX_CHECKPOINT_BYTES)")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SsalInputError(where, f"cannot read checkpoint ({exc.strerror or exc})") from None
    if magic != b"PK\x03\x04":
        raise SsalInputError(where, "not a readable checkpoint (not the zip format torch.save writes)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, OverflowError, NotImplementedError,
            RuntimeError, UnicodeDecodeError) as exc:
        raise SsalInputError(where, f"not a readable checkpoint (damaged archive: {exc})") from None
    if len(infos) > MAX_CHECKPOINT_MEMBERS:
        raise SsalInputError(where, f"checkpoint archive holds {len(infos)} records, more than {MAX_CHECKPOINT_MEMBERS}")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise SsalInputError(where, f"checkpoint record {info.filename[:80]!r} is compressed; "
                                        "torch.save writes uncompressed records (refused: it could expand without bound)")
        total += info.file_size
        if info.filename.endswith("data.pkl") and info.file_size > MAX_PICKLE_BYTES:
            raise SsalInputError(where, f"checkpoint metadata of {info.file_size} bytes, more than the limit of "
                                        f"{MAX_PICKLE_BYTES} (ssal.checkpoint.MAX_PICKLE_BYTES)")
    if total > MAX_CHECKPOINT_BYTES:
        raise SsalInputError(where, f"checkpoint records hold {total} bytes, more than the limit of "
                                    f"{MAX_CHECKPOINT_BYTES} (ssal.checkpoint.MAX_CHECKPOINT_BYTES)")


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    if path.is_dir():
        raise SsalInputError(display_path(path), "is a directory where a file is to be written")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Save ``state`` (stamped with kind and format version) atomically to ``path``."""
    payload = dict(state)
    payload["kind"] = KIND
    payload["format_version"] = FORMAT_VERSION
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _unpickling_reason(message: str) -> str:
    """The informative line of torch's weights-only error (not its advice to disable safety)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln or ("global" in ln.lower() and "weights_only" not in ln):
            return ln[:200]
    for ln in lines:
        if not ln.startswith(("Weights only load failed", "Please file an issue", "Check the documentation")):
            return ln[:200]
    return "unsafe or malformed pickle data"


def load_checkpoint(path: str | Path, expect_layout: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check its kind, version and layout.

    Raises:
        SsalInputError: missing or unreadable file, a file that would need code execution to
            load, another format version, or a skeleton layout other than ``expect_layout``.
    """
    p = display_path(path)
    path = Path(path)
    try:
        st = path.stat()
    except (OSError, ValueError):
        raise SsalInputError(p, "checkpoint not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(p, "checkpoint is not a regular file")
    if st.st_size == 0:
        raise SsalInputError(p, "checkpoint file is empty")
    _check_archive(path, p, st.st_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on pickle protocols
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickling_reason(str(exc))
        if "GLOBAL" in reason or "global" in reason:
            raise SsalInputError(
                p, f"refused to load: the checkpoint references Python code, not only plain weights ({reason})"
            ) from None
        raise SsalInputError(p, f"not a readable checkpoint ({reason})") from None
    except (MemoryError, RecursionError):
        raise SsalInputError(p, "not a readable checkpoint (too large or nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - weights_only loading runs no code; any failure is a bad file
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SsalInputError(p, f"not a readable checkpoint ({msg})") from None
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise SsalInputError(p, "not an ssal checkpoint")
    if not all(isinstance(k, str) for k in state):
        raise SsalInputError(p, "not an ssal checkpoint (a key that is not text)")
    version = state.get("format_version")
    if not (isinstance(version, int) and not isinstance(version, bool) and version == FORMAT_VERSION):
        shown = version if isinstance(version, (int, str, float)) or version is None else type(version).__name__
        raise SsalInputError(
            p, f"checkpoint format version {str(shown)[:40]} is not supported (this ssal reads {FORMAT_VERSION})"
        )
    if expect_layout is not None and not (isinstance(state.get("layout"), str) and state["layout"] == expect_layout):
        raise SsalInputError(
            p, f"checkpoint was trained on layout {state.get('layout')!r}, data has {expect_layout!r}"
        )
    return state

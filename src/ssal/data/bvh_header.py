"""Capture sessions from BVH headers: which files were recorded with one rig calibration.

A BVH header (the text from ``HIERARCHY`` through ``MOTION``) holds the rest pose: bone offsets
and channels. Files of one capture session share it byte for byte; files of another session
differ, even after a release aligned the proportions (the Bandai-Namco release: bone lengths
are identical everywhere, only the rest ``OFFSET`` of ``Hips`` differs between sessions). So
the header digest is a *session* field: ``header_digest(path)`` is the first 8 hex digits of the
MD5 of the header's bytes, ``HIERARCHY`` to ``MOTION`` plus its line end, as read from disk.

``session_of(path)`` names it: a known Bandai-Namco header gets its session name from
:data:`BANDAI_SESSIONS` (the names of ``../shared/data/bandai-namco/sessions.csv``: ``d1s0`` to
``d1s4`` for dataset-1, ``d2s0`` to ``d2s2`` for dataset-2; a test checks every file against
that table), any other header ``header-<digest>``, so a folder of any rig is grouped by its
sessions all the same. Reading stops at ``MOTION``: the motion data is never read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import SsalInputError, display_path

#: The most header bytes read before ``MOTION`` must have appeared.
MAX_HEADER_BYTES = 1 << 20

#: Header digest -> session name, for the Bandai-Namco-Research-Motiondataset. Sessions differ
#: only in the rest offset of ``Hips`` (ABOUT.md of the data, "Capture sessions").
BANDAI_SESSIONS: dict[str, str] = {
    "ada1dbbc": "d1s0",  # dataset-1: angry, feminine, happy, musical, not-confident, proud, sad, normal
    "9269971a": "d1s1",  # dataset-1: active, childish, chimpira, giant, masculinity, old, tired
    "5205dc57": "d1s2",  # dataset-1: normal
    "47850f66": "d1s3",  # dataset-1: normal
    "8a697ef4": "d1s4",  # dataset-1: normal
    "ad7b1800": "d2s0",  # dataset-2: active, elderly, exhausted
    "f37998ab": "d2s1",  # dataset-2: masculine, normal
    "e3c661ae": "d2s2",  # dataset-2: feminine, youthful
}


def read_header_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes from ``HIERARCHY`` through the line end after ``MOTION`` (one-line errors)."""
    p = Path(path)
    where = display_path(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise SsalInputError(where, f"cannot read ({exc.strerror or exc})") from None
    start = head.find(b"HIERARCHY")
    end = head.find(b"MOTION", max(start, 0))
    if start < 0 or end < 0:
        raise SsalInputError(where, f"no HIERARCHY ... MOTION header in the first {MAX_HEADER_BYTES} bytes")
    stop = end + len(b"MOTION")
    if head[stop:stop + 2] == b"\r\n":
        stop += 2
    elif head[stop:stop + 1] in (b"\n", b"\r"):
        stop += 1
    return head[start:stop]


def header_digest(path: str | os.PathLike[str]) -> str:
    """First 8 hex digits of the MD5 of the file's header bytes (module docstring)."""
    return hashlib.md5(read_header_bytes(path)).hexdigest()[:8]


def session_of(path: str | os.PathLike[str]) -> str:
    """The capture session of a BVH file: a Bandai-Namco name, else ``header-<digest>``."""
    digest = header_digest(path)
    return BANDAI_SESSIONS.get(digest, f"header-{digest}")


__all__ = ["BANDAI_SESSIONS", "header_digest", "session_of", "read_header_bytes"]

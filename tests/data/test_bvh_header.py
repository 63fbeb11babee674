"""Capture sessions from BVH headers (ssal.data.bvh_header), against the release's sessions.csv."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from ssal.data.bvh import write_bvh
from ssal.data.bvh_header import BANDAI_SESSIONS, header_digest, session_of
from ssal.errors import SsalInputError


def _bvh(path, hips_y: float, frames: int = 3) -> None:
    offsets = np.array([[0.0, 0.0, 0.0], [0.0, hips_y, 0.0], [0.0, 10.0, 0.0]])
    motion = np.zeros((frames, 6 + 3 + 3))
    motion[:, 1] = np.arange(frames)
    write_bvh(path, ["Root", "Hips", "Spine"], [-1, 0, 1], offsets, motion, 1 / 30)


def test_digest_is_the_md5_of_hierarchy_through_motion(tmp_path):
    p = tmp_path / "a.bvh"
    _bvh(p, 94.0)
    lines = p.read_text().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.startswith("HIERARCHY"))
    stop = next(i for i, l in enumerate(lines) if l.startswith("MOTION"))
    header = "".join(lines[start:stop + 1]).encode()
    assert header_digest(p) == hashlib.md5(header).hexdigest()[:8]


def test_same_rig_same_session_other_offset_other_session(tmp_path):
    a, b, c = tmp_path / "a.bvh", tmp_path / "b.bvh", tmp_path / "c.bvh"
    _bvh(a, 94.0, frames=3)
    _bvh(b, 94.0, frames=7)  # other motion, same header
    _bvh(c, 93.5)
    assert session_of(a) == session_of(b) == f"header-{header_digest(a)}"
    assert session_of(c) != session_of(a)


def test_no_header_is_a_one_line_error(tmp_path):
    p = tmp_path / "bad.bvh"
    p.write_text("MOTION\nFrames: 1\n")
    with pytest.raises(SsalInputError, match="no HIERARCHY"):
        session_of(p)


def test_every_bandai_file_gets_the_session_of_sessions_csv(require_shared):
    root = require_shared("bandai-namco")
    table = {r["file"]: r for r in csv.DictReader(open(root / "sessions.csv", encoding="utf-8"))}
    files = sorted(root.glob("dataset-*/data/*.bvh"))
    assert len(files) > 1000
    for f in files:
        row = table[f.name]
        assert header_digest(f) == row["hierarchy_md5_prefix"], f.name
        assert session_of(f) == row["session"], f.name
    assert set(BANDAI_SESSIONS.values()) == {r["session"] for r in table.values()}

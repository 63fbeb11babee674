"""The memory of parsing a BVH file is bounded before its MOTION section is split.

A 127 MiB BVH of two-character lines used to reach 3.4 GB (66 million Python strings) before
"not enough memory": the line count times the per-line cost of the split is now checked against
``ssal.data.preprocess.MAX_BYTES`` first (``ssal.data.bvh._check_line_memory``), and frame lines
are split into at most ``channels + 1`` pieces.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from ssal.data import bvh
from ssal.data import preprocess as limits
from ssal.errors import SsalInputError

HEADER = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 3 Xposition Yposition Zposition
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 2
Frame Time: 0.01
"""


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_millions_of_two_character_lines_are_refused_before_the_split(tmp_path):
    p = tmp_path / "two_char_lines.bvh"
    lines = 15 * 2**20  # 30 MiB of "1\n": 15.7 million lines
    with open(p, "w", encoding="ascii") as fh:
        fh.write(HEADER)
        fh.write("1\n" * lines)
    size = p.stat().st_size

    def parse() -> None:
        with pytest.raises(SsalInputError) as info:
            bvh.parse_bvh(p)
        msg = info.value.one_line()
        assert "two_char_lines.bvh" in msg and "memory" in msg and "MAX_BYTES" in msg and "\n" not in msg

    t0 = time.monotonic()
    peak = _peak(parse)
    assert time.monotonic() - t0 < 30
    # The file's bytes, its text and the MOTION slice (about 3x its size), no line objects:
    # splitting would take 15.7 million x ~60 bytes (~1 GB).
    assert peak < 4 * size + 16 * 2**20, peak


def test_line_bound_follows_max_bytes(tmp_path, monkeypatch):
    p = tmp_path / "blank_lines.bvh"
    p.write_text(HEADER + "1 2 3\n4 5 6\n" + "\n" * 200_000, encoding="ascii")
    assert bvh.parse_bvh(p).motion.shape == (2, 3)  # 200,000 blank lines: well within the limit
    monkeypatch.setattr(limits, "MAX_BYTES", 2**20)
    with pytest.raises(SsalInputError, match="blank_lines.bvh.*MOTION section"):
        bvh.parse_bvh(p)


def test_crlf_and_other_line_breaks_are_counted_as_splitlines_does():
    text = "a\r\nb\rc\nd\x0be\x0cf\x1cg\x1dh\x1ei\x85j\u2028k\u2029l"
    n = 1 + sum(text.count(c) for c in bvh._LINE_BREAKS) - text.count("\r\n")
    assert n == len(text.splitlines())


def test_one_huge_frame_line_is_split_into_a_bounded_number_of_pieces(tmp_path):
    p = tmp_path / "wide_line.bvh"
    p.write_text(HEADER + "1 2 3\n" + "12 " * 3_000_000 + "\n", encoding="ascii")
    size = p.stat().st_size

    def parse() -> None:
        with pytest.raises(SsalInputError, match="frame 1 has more than 3 values"):
            bvh.parse_bvh(p)

    # 3 million tokens would be ~180 MB of strings; four pieces are a few copies of the line.
    assert _peak(parse) < 6 * size + 16 * 2**20


def test_wide_frames_parse_in_smaller_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(bvh, "_PARSE_BLOCK_VALUES", 6)  # two lines of 3 values per block
    rows = np.arange(21, dtype=float).reshape(7, 3)
    text = HEADER.replace("Frames: 2", "Frames: 7") + "".join(" ".join(f"{v:g}" for v in r) + "\n" for r in rows)
    p = tmp_path / "blocks.bvh"
    p.write_text(text, encoding="ascii")
    np.testing.assert_array_equal(bvh.parse_bvh(p).motion, rows)

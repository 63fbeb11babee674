"""BVH motion capture: parser, vectorised forward kinematics, layout mapping, folder reader.

ssal parses BVH itself (numpy, all frames at once) instead of using the installed ``bvhio``
package: on the CMU fixture (31 joints, 2,752 frames) ``bvhio.readAsHierarchy`` takes about
3.7 s to parse plus 0.7 s of per-frame Python FK, while this parser and batched FK take a
small fraction of a second; it also lets every malformed input (no ``HIERARCHY``, truncated
motion, wrong channel counts) become a one-line :class:`~ssal.errors.SsalInputError`. The
tests cross-check the positions against ``bvhio`` when it is installed.

Conventions: Euler channels are applied in the order listed (``Zrotation Yrotation
Xrotation`` means ``R = Rz @ Ry @ Rx`` on column vectors), in degrees; a joint's position
channels replace the matching components of its ``OFFSET`` (the root's offset is usually 0);
``End Site`` entries become joints named ``<parent>End`` (no channels). Positions are in the
file's units times ``units_to_metres`` (CMU's ASF-derived BVH files use 1/0.45 inch units:
``units_to_metres = 0.0254 / 0.45`` ~ 0.056; scale normalisation in preprocessing makes the
choice irrelevant for training).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import SsalInputError, display_path, stat_input
from ..skeleton import EGAIT16, SkeletonLayout, resolve_joint_mapping
from . import preprocess as _limits
from .dataset import UNLABELLED, GaitDataset
from .egait import resolve_label_map
from .names import NameLabels, select_and_label
from .preprocess import (
    PreprocessConfig,
    check_bytes,
    check_fps,
    check_frame_count,
    check_text_size,
    check_value_count,
    dataset_bytes,
    resample_fps,
    sequences_to_dataset,
)

#: Unit factor of the CMU BVH conversion (ASF length unit 0.45 inch... i.e. 1 unit = 1/0.45 in).
CMU_UNITS_TO_METRES = 0.0254 / 0.45

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass
class BvhMotion:
    """A parsed BVH file.

    Attributes:
        joints: joint names (``End Site`` entries named ``<parent>End``).
        parents: parent index per joint, -1 for the root; parents precede children.
        offsets: ``(J, 3)`` rest offsets from the parent.
        channels: per joint, its channel names (``Xposition``, ``Zrotation``, ...).
        frame_time: seconds per frame.
        motion: ``(F, C)`` channel values per frame, joints' channels in file order.
    """

    joints: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[list[str]]
    frame_time: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time`` snapped to the nearest integer when within
        0.01 % of it (files round the frame time: CMU's ``.0083333`` is 120 fps)."""
        fps = 1.0 / self.frame_time
        nearest = round(fps)
        return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-4 * fps else fps

    def positions(self) -> np.ndarray:
        """World positions ``(F, J, 3)`` of every joint by forward kinematics (batched)."""
        n_frames = self.motion.shape[0]
        n_joints = len(self.joints)
        rot = np.empty((n_joints, n_frames, 3, 3))
        pos = np.empty((n_joints, n_frames, 3))
        col = 0
        for j in range(n_joints):
            local_t = np.broadcast_to(self.offsets[j], (n_frames, 3)).copy()
            local_r = np.broadcast_to(np.eye(3), (n_frames, 3, 3)).copy()
            for name in self.channels[j]:
                values = self.motion[:, col]
                col += 1
                axis = _AXES[name[0].lower()]
                if name[1:].lower() == "position":
                    local_t[:, axis] = values
                else:
                    local_r = local_r @ axis_rotation(axis, np.deg2rad(values))
            p = self.parents[j]
            if p < 0:
                rot[j] = local_r
                pos[j] = local_t
            else:
                rot[j] = rot[p] @ local_r
                pos[j] = pos[p] + np.einsum("fij,fj->fi", rot[p], local_t)
        return pos.transpose(1, 0, 2)


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Right-handed rotation matrices ``(F, 3, 3)`` about ``axis`` (0 x, 1 y, 2 z) by ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _read_text(path: Path, what: str = "a .bvh file") -> str:
    """The file's text (UTF-8, undecodable bytes replaced), refusing non-regular files and
    files above :data:`ssal.data.preprocess.MAX_TEXT_BYTES` before reading them."""
    where = display_path(path)
    st = stat_input(path, where)
    if stat.S_ISDIR(st.st_mode):
        raise SsalInputError(where, f"is a directory, expected {what}")
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "not a regular file")
    check_text_size(st.st_size, where)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(st.st_size + 1)  # the size was checked; a growing file is cut
    except OSError as exc:
        raise SsalInputError(where, f"cannot read file ({exc.strerror or exc})") from None
    check_text_size(len(raw), where)
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark (Windows editors write one)
        raw = raw[3:]
    if not raw.strip():
        raise SsalInputError(where, "file is empty")
    return raw.decode("utf-8", errors="replace")


#: ``MOTION`` as a token of its own (a joint may be named ``MOTIONSensor``).
_MOTION = re.compile(r"(?<!\S)MOTION(?!\S)")
#: Largest hierarchy part of a BVH file (before ``MOTION``), in bytes: tokenising it costs
#: about 60 bytes per token, and MAX_BVH_JOINTS joints need far less than this.
MAX_BVH_HIERARCHY_BYTES = 4 * 2**20
#: Frame lines parsed per block (bounds the temporary Python strings of the parse).
_PARSE_BLOCK = 4096
#: Most values split per block (a block holds fewer lines when the frames are wide), so the
#: temporary token strings of one block stay within about 64 MiB whatever the channel count.
_PARSE_BLOCK_VALUES = 2**20
#: Bytes per line while the MOTION section is split into lines, besides the characters: a
#: Python str object's header (49 bytes for ASCII text, more for other text; 1-character lines
#: are shared objects but are counted too) and the slots of the line lists (three at most).
BVH_LINE_BYTES = 96
#: The characters ``str.splitlines`` breaks lines at (``\r\n`` counts once).
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _check_line_memory(motion_text: str, where: str) -> None:
    """Refuse a MOTION section whose split into lines would exceed
    :data:`ssal.data.preprocess.MAX_BYTES`, before it is split: a 127 MiB file of
    two-character lines is 66 million Python strings (3.4 GB). The estimate is the line count
    (counted in the text, nothing allocated) times :data:`BVH_LINE_BYTES` plus a copy of the
    characters."""
    lines = 1 + sum(motion_text.count(c) for c in _LINE_BREAKS) - motion_text.count("\r\n")
    chars = sys.getsizeof(motion_text) - sys.getsizeof("")
    check_bytes(lines * BVH_LINE_BYTES + chars, where,
                f"splitting the MOTION section ({lines} lines)")


def fk_bytes(frames: int, joints: int) -> int:
    """Working memory of :meth:`BvhMotion.positions`: per joint and frame a rotation and a
    position (12 float64) plus the local and per-channel temporaries (another ~24)."""
    return int(frames) * int(joints) * 36 * 8


def parse_bvh(
    path: str | os.PathLike[str], max_frames: int | None = None, target_fps: float | None = None
) -> BvhMotion:
    """Parse a BVH file (hierarchy and motion).

    ``max_frames`` limits the declared frame count (after resampling to ``target_fps`` when
    given); the check runs before the motion values are read.

    Raises:
        SsalInputError: no ``HIERARCHY``, malformed hierarchy, missing ``MOTION``, fewer frame
            lines than declared, a frame with the wrong number of values, non-numeric values,
            more than ``max_frames`` frames.
    """
    p = Path(path)
    where = display_path(p)
    text = _read_text(p)
    found = _MOTION.search(text)
    head, sep, motion_text = (text[: found.start()], "MOTION", text[found.end():]) if found else (text, "", "")
    del text
    if len(head) > MAX_BVH_HIERARCHY_BYTES:
        raise SsalInputError(where, f"hierarchy of {len(head)} characters, more than the limit of "
                                    f"{MAX_BVH_HIERARCHY_BYTES} (ssal.data.bvh.MAX_BVH_HIERARCHY_BYTES)")
    tokens = head.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise SsalInputError(where, "not a BVH file (does not start with HIERARCHY)")
    if not sep:
        raise SsalInputError(where, "truncated BVH: no MOTION section")

    joints, parents, offsets, channels = _parse_hierarchy(tokens, where)
    n_channels = sum(len(c) for c in channels)
    _check_line_memory(motion_text, where)
    lines = motion_text.splitlines()
    del motion_text
    n_frames, frame_time, k = _motion_header(lines, where)
    _check_motion_size(n_frames, frame_time, n_channels, len(joints), where, max_frames, target_fps)
    frame_lines = [ln for ln in itertools.islice(lines, k, None) if ln.strip()]
    del lines  # only the frame lines are kept while the values are parsed
    motion = _parse_frames(frame_lines, n_frames, n_channels, where)
    return BvhMotion(joints, np.asarray(parents), np.asarray(offsets, dtype=np.float64), channels, frame_time, motion)


def _parse_hierarchy(tokens: list[str], where: str) -> tuple[list[str], list[int], list[list[float]], list[list[str]]]:
    """``(joints, parents, offsets, channels)`` of the hierarchy's tokens (``tokens[0]`` is
    ``HIERARCHY``); ``End Site`` entries become joints named ``<parent>End``."""
    joints: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    pending: int | None = None  # joint opened by the last ROOT/JOINT/End, awaiting "{"
    i = 1
    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                name = tokens[i + 1]
                i += 2
                if len(joints) >= _limits.MAX_BVH_JOINTS:
                    raise SsalInputError(
                        where, f"more than {_limits.MAX_BVH_JOINTS} joints (ssal.data.preprocess.MAX_BVH_JOINTS)"
                    )
                if tok == "ROOT" and joints:
                    raise SsalInputError(where, "malformed hierarchy: more than one ROOT")
                pending = _add_joint(joints, parents, offsets, channels, name, stack[-1] if stack else -1)
            elif tok == "End":
                parent = stack[-1]
                i += 2  # "End Site"
                if len(joints) >= _limits.MAX_BVH_JOINTS:
                    raise SsalInputError(
                        where, f"more than {_limits.MAX_BVH_JOINTS} joints (ssal.data.preprocess.MAX_BVH_JOINTS)"
                    )
                pending = _add_joint(joints, parents, offsets, channels, f"{joints[parent]}End", parent)
            elif tok == "{":
                if pending is None:
                    raise SsalInputError(where, "malformed hierarchy: '{' without a joint")
                stack.append(pending)
                pending = None
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                values = [float(t) for t in tokens[i + 1 : i + 4]]
                if len(values) != 3 or not all(math.isfinite(v) for v in values):
                    raise SsalInputError(
                        where, f"OFFSET of joint {joints[stack[-1]]!r} must be three finite numbers"
                    )
                offsets[stack[-1]] = values
                i += 4
            elif tok == "CHANNELS":
                n = int(tokens[i + 1])
                names = tokens[i + 2 : i + 2 + n] if n >= 0 else []
                if not 0 <= n <= 64 or len(names) != n:
                    raise SsalInputError(
                        where, f"malformed hierarchy: CHANNELS {tokens[i + 1][:20]!r} in joint {joints[stack[-1]]!r}"
                    )
                for c in names:
                    if len(c) < 2 or c[0].lower() not in _AXES or c[1:].lower() not in ("position", "rotation"):
                        raise SsalInputError(where, f"unknown channel {c!r} in joint {joints[stack[-1]]!r}")
                channels[stack[-1]] = names
                i += 2 + n
            else:
                raise SsalInputError(where, f"malformed hierarchy: unexpected token {tok!r}")
    except (IndexError, ValueError):
        raise SsalInputError(where, "malformed hierarchy (truncated or non-numeric OFFSET/CHANNELS)") from None
    if not joints or stack:
        raise SsalInputError(where, "malformed hierarchy (no joints or unbalanced braces)")
    return joints, parents, offsets, channels


def _motion_header(lines: list[str], where: str) -> tuple[int, float, int]:
    """``(frames, frame time, index of the first frame line)`` of the MOTION section's lines."""
    header: dict[str, str] = {}
    k = 0
    while k < len(lines) and len(header) < 2:
        line = lines[k].strip()
        k += 1
        if not line:
            continue
        key, _, value = line.partition(":")
        header[key.strip().lower()] = value.strip()
    try:
        frames_text, time_text = header["frames"], header["frame time"]
        if len(frames_text) > 30:
            raise ValueError(frames_text)
        n_frames = int(frames_text)
        frame_time = float(time_text)
    except (KeyError, ValueError):
        raise SsalInputError(where, "malformed MOTION header (expected 'Frames:' and 'Frame Time:')") from None
    if n_frames < 0 or not (math.isfinite(frame_time) and frame_time > 0 and math.isfinite(1.0 / frame_time)):
        raise SsalInputError(where, f"invalid MOTION header: {n_frames} frames, frame time {frame_time}")
    return n_frames, frame_time, k


def _check_motion_size(n_frames: int, frame_time: float, n_channels: int, n_joints: int, where: str,
                       max_frames: int | None, target_fps: float | None) -> None:
    """Refuse a declared motion too large to read, before any frame line is parsed."""
    # Declared sizes are checked before the frame lines are parsed or anything is allocated.
    check_value_count(n_frames * n_channels, where, "the MOTION section")
    check_value_count(n_frames * n_joints * 12, where, "forward kinematics (frames x joints x 12)")
    check_bytes(n_frames * n_channels * 8 + fk_bytes(n_frames, n_joints), where,
                f"forward kinematics of {n_frames} frames x {n_joints} joints")
    if max_frames is not None:
        n_check: int | float = n_frames  # math.inf when the resampled count overflows
        if target_fps is not None and n_frames:
            span = (n_frames - 1) * float(target_fps) * frame_time
            n_check = math.floor(span + 1e-9) + 1 if span < 1e15 else math.inf
        if n_check > max_frames:
            raise SsalInputError(
                where, f"has {n_check} frames (at the working rate), more than the limit of {max_frames} (max_frames)"
            )


def _parse_frames(frame_lines: list[str], n_frames: int, n_channels: int, where: str) -> np.ndarray:
    """The ``(frames, channels)`` float64 motion of the non-empty frame lines (finite values)."""
    if len(frame_lines) < n_frames:
        raise SsalInputError(
            where, f"truncated BVH: {n_frames} frames declared, {len(frame_lines)} frame lines found"
        )
    del frame_lines[n_frames:]
    motion = np.empty((n_frames, n_channels), dtype=np.float64)
    # Parsed in blocks of lines, so the temporary token strings stay small whatever the size;
    # a line is split into at most n_channels + 1 pieces (one more shows it is too long).
    step = max(1, min(_PARSE_BLOCK, _PARSE_BLOCK_VALUES // max(1, n_channels)))
    for b in range(0, n_frames, step):
        block = frame_lines[b : b + step]
        block_tokens = [ln.split(None, n_channels) for ln in block]
        for f0, toks in enumerate(block_tokens, start=b):
            if len(toks) != n_channels:
                count = str(len(toks)) if len(toks) <= n_channels else f"more than {n_channels}"
                raise SsalInputError(
                    where, f"frame {f0} has {count} values, the hierarchy declares {n_channels} channels",
                )
        try:
            motion[b : b + len(block)] = np.array([t for toks in block_tokens for t in toks],
                                                  dtype=np.float64).reshape(len(block), n_channels)
        except ValueError:
            raise SsalInputError(where, "non-numeric value in the MOTION section") from None
        del block_tokens, block
    if not np.isfinite(motion).all():
        bad = int(np.flatnonzero(~np.isfinite(motion).all(axis=1))[0])
        raise SsalInputError(where, f"NaN or inf channel values (first: frame {bad})")
    return motion


def _add_joint(joints, parents, offsets, channels, name: str, parent: int) -> int:
    joints.append(name)
    parents.append(parent)
    offsets.append([0.0, 0.0, 0.0])
    channels.append([])
    return len(joints) - 1


#: Length units a BVH file may use, in metres per file unit (``--units``). ``cmu``: the CMU
#: ASF-derived unit of 1/0.45 inch.
UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "cmu": CMU_UNITS_TO_METRES}

#: Height proxy (:func:`ssal.data.preprocess.height_proxy`) of an adult in metres, against
#: which a file's units are guessed.
ADULT_HEIGHT_PROXY = 1.45


def units_to_metres_factor(units: str | float, where: str | None = None) -> float:
    """Metres per file unit of ``units``: a name of :data:`UNITS` or a positive number."""
    if isinstance(units, (int, float)) and not isinstance(units, bool):
        value = float(units)
    else:
        text = str(units).strip().lower()
        text = {"inch": "in", "inches": "in", "metres": "m", "meters": "m", "centimetres": "cm",
                "centimeters": "cm", "millimetres": "mm", "millimeters": "mm"}.get(text, text)
        if text in UNITS:
            return UNITS[text]
        try:
            value = float(text)
        except ValueError:
            raise SsalInputError(where or "--units", f"unknown units {units!r}; use auto, "
                                 f"{', '.join(UNITS)} or metres per unit as a number") from None
    if not (math.isfinite(value) and value > 0):
        raise SsalInputError(where or "--units", f"units must be a positive number of metres, got {units!r}")
    return value


def guess_units(height_proxy: float) -> str:
    """The unit of :data:`UNITS` under which a skeleton's height proxy (in file units) is
    nearest, on a log scale, to an adult's :data:`ADULT_HEIGHT_PROXY` metres."""
    if not (math.isfinite(height_proxy) and height_proxy > 0):
        return "m"
    return min(UNITS, key=lambda u: abs(math.log(height_proxy * UNITS[u] / ADULT_HEIGHT_PROXY)))


@dataclass
class BvhReadInfo:
    """What :func:`read_bvh_with_info` found out about a file."""

    source_fps: float
    units: str  # a key of UNITS, "auto:<key>" when guessed, or the factor given
    units_to_metres: float
    joints: dict[str, str]  # E-Gait joint -> source joint name


def read_bvh_with_info(
    path: str | os.PathLike[str],
    *,
    layout: SkeletonLayout = EGAIT16,
    fps: float = 30.0,
    units_to_metres: float | None = None,
    units: str | float | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    joint_map: Mapping[str, str] | None = None,
    config: PreprocessConfig | None = None,
    reserved_bytes: int = 0,
) -> tuple[np.ndarray, BvhReadInfo]:
    """:func:`read_bvh` that also returns the source rate, the units and the joint mapping.

    ``reserved_bytes`` is memory the caller already holds (a folder's sequences read so far):
    it counts against :data:`ssal.data.preprocess.MAX_BYTES` with this file's forward
    kinematics and resampling, checked before they run.
    """
    cfg = config or PreprocessConfig()
    where = display_path(path)
    fps = check_fps(fps, where, "the working frame rate (fps)")
    motion = parse_bvh(path, max_frames=cfg.max_frames, target_fps=fps)
    src_fps = motion.fps
    # frames after resampling, checked before FK allocates anything
    n_src = motion.motion.shape[0]
    n_out = int(np.floor((n_src - 1) * fps / src_fps + 1e-9)) + 1 if n_src else 0
    check_frame_count(n_out, where, None, cfg)
    check_bytes(int(reserved_bytes) + fk_bytes(n_src, len(motion.joints)) + resampled_bytes(n_out, layout.num_joints),
                where,
                f"forward kinematics and resampling to {n_out} frames")
    world = motion.positions()
    parents = cast(Sequence[int], motion.parents)  # a 1-D int array, indexed like a sequence
    idx = resolve_joint_mapping(motion.joints, layout, aliases, where, parents=parents, joint_map=joint_map)
    mapped = world[:, idx]
    if units_to_metres is not None:
        factor, unit_name = float(units_to_metres), f"{float(units_to_metres):g} m per unit"
    elif units is None or str(units).lower() == "auto":
        from .preprocess import height_proxy

        proxy = float(height_proxy(mapped[None, : min(len(mapped), 30)], layout)[0])
        guessed = guess_units(proxy)
        factor, unit_name = UNITS[guessed], f"auto:{guessed}"
    else:
        factor = units_to_metres_factor(units, "--units")
        unit_name = str(units)
    info = BvhReadInfo(src_fps, unit_name, factor, {t: motion.joints[i] for t, i in zip(layout.joints, idx)})
    return resample_fps(mapped * factor, src_fps, fps), info


def read_bvh(
    path: str | os.PathLike[str],
    *,
    layout: SkeletonLayout = EGAIT16,
    fps: float = 30.0,
    units_to_metres: float | None = None,
    units: str | float | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    joint_map: Mapping[str, str] | None = None,
    config: PreprocessConfig | None = None,
    reserved_bytes: int = 0,
) -> np.ndarray:
    """Read one BVH file as ``(T, V, 3)`` positions on ``layout`` at ``fps`` frames per second.

    Joints are placed by :func:`ssal.skeleton.resolve_joint_mapping` (rule-based matching of
    :mod:`ssal.jointmatch` for E-Gait-16, with the rig's hierarchy; ``joint_map`` overrides),
    positions are converted to metres (``units_to_metres``, else ``units``: ``auto`` guesses
    m/cm/mm/in/cmu from the skeleton's height) and resampled from the file's rate to ``fps``.
    """
    seq, _ = read_bvh_with_info(path, layout=layout, fps=fps, units_to_metres=units_to_metres, units=units,
                                aliases=aliases, joint_map=joint_map, config=config,
                                reserved_bytes=reserved_bytes)
    return seq


_FRAMES_RE = re.compile(r"(?<!\S)MOTION\s+Frames:\s*([0-9]{1,15})\s+Frame Time:\s*(\S{1,40})")


def declared_output_bytes(path: Path, fps: float, num_joints: int) -> int:
    """Bytes of the ``(T, V, 3)`` float64 sequence a BVH file will give at ``fps``, from its
    ``MOTION`` header alone (0 when the header cannot be read: the full parse will say why)."""
    try:
        st = path.stat()
        check_text_size(st.st_size, display_path(path))
        with open(path, "rb") as fh:
            text = fh.read(st.st_size + 1).decode("utf-8", errors="replace")
    except (OSError, SsalInputError):
        return 0
    m = _FRAMES_RE.search(text)
    if not m:
        return 0
    try:
        frames, frame_time = int(m.group(1)), float(m.group(2))
    except ValueError:
        return 0
    if not (frames > 0 and math.isfinite(frame_time) and frame_time > 0):
        return 0
    span = (frames - 1) * fps * frame_time
    n_out = math.floor(span + 1e-9) + 1 if span < 1e15 else 10**15
    return n_out * int(num_joints) * 3 * 8


def resampled_bytes(frames: int, num_joints: int) -> int:
    """Memory of one sequence resampled to ``frames`` frames: the result (float64) and the
    interpolation's two temporaries."""
    return int(frames) * int(num_joints) * 3 * 8 * 3


def read_labels_csv(
    path: str | os.PathLike[str], classes: Sequence[str]
) -> dict[str, int]:
    """Read ``file,label`` rows (optional header); a label is a class name or index, empty =
    unlabelled. Returns ``{file name: class index or -1}``."""
    p = Path(path)
    where = display_path(p)
    if not p.is_file():
        raise SsalInputError(where, "labels file not found")
    lowered = [c.lower() for c in classes]
    out: dict[str, int] = {}
    text = _read_text(p, "a labels CSV") if p.stat().st_size else ""
    if "\ufffd" in text:
        raise SsalInputError(where, "cannot read labels CSV (not UTF-8 text)")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SsalInputError(where, f"cannot read labels CSV ({exc})") from None
    for n, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise SsalInputError(where, f"line {n}: expected 'file,label', got {row}")
        name, label = row[0].strip(), row[1].strip()
        if n == 1 and name.lower() == "file" and label.lower() == "label":
            continue
        if label == "":
            value = UNLABELLED
        elif label.lower() in lowered:
            value = lowered.index(label.lower())
        elif re.fullmatch(r"-?[0-9]{1,9}", label) and -1 <= int(label) < len(classes):
            value = int(label)
        else:
            raise SsalInputError(where, f"line {n}: label {label!r} is neither a class of {list(classes)} nor an index")
        if name in out and out[name] != value:
            raise SsalInputError(where, f"line {n}: {name!r} is listed again with another label")
        out[name] = value
    return out


def cut_windows(n_frames: int, window: int, stride: int) -> list[int]:
    """Start frames of the clips of an ``n_frames`` recording: windows of ``window`` frames
    every ``stride`` frames, the last one ending at the recording's end (so no frame is
    lost); a recording shorter than ``window`` is one clip (looped to length later)."""
    if window < 1 or stride < 1:
        raise SsalInputError("--window", f"window and stride must be at least 1, got {window} and {stride}")
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return starts


def read_bvh_folder(
    folder: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    *,
    label_map: str | Sequence[str] | None = None,
    layout: SkeletonLayout = EGAIT16,
    fps: float = 30.0,
    units_to_metres: float | None = None,
    units: str | float | None = None,
    joint_map: Mapping[str, str] | None = None,
    name_labels: NameLabels | None = None,
    window: int | None = None,
    stride: int | None = None,
    preprocess: PreprocessConfig | None = None,
    only: Sequence[str] | None = None,
) -> GaitDataset:
    """Read every ``*.bvh`` in ``folder`` (sorted by name), labelled by a CSV or by file names.

    ``only`` (file names, with or without ``.bvh``) restricts the read to those files of the
    folder (a name not in the folder is an error); the benchmarks pick files by fields that are
    not in the names (the capture session of :mod:`ssal.data.bvh_header`).

    Labels come from ``name_labels`` (fields of the file names, :mod:`ssal.data.names`; its
    ``where`` filters pick the files), else from the CSV ``labels`` or ``folder/labels.csv``
    when present (each ``.bvh`` must have a row, matched by file name with or without the
    extension, and each row must name an existing file); else every sequence is unlabelled.

    With ``window`` (frames at the working rate) each recording is cut into clips of that many
    frames every ``stride`` frames (default ``window // 2``; :func:`cut_windows`), named
    ``<file>@<start frame>``; the dataset's ``groups`` hold the file name of each clip, and
    its length T is ``window`` (``preprocess.length`` is replaced). Without ``window`` every
    file is one sequence, brought to ``preprocess.length`` frames.
    """
    from dataclasses import replace

    cfg = preprocess or PreprocessConfig()
    root = Path(folder)
    where = display_path(root)
    files = _folder_files(root, where, only)
    csv_path = Path(labels) if labels is not None else root / "labels.csv"
    files, y, classes, from_csv = _folder_labels(files, where, labels, csv_path, label_map, name_labels)
    if window is not None:
        window = int(window)
        stride = int(stride) if stride is not None else max(1, window // 2)
        cut_windows(window, window, stride)  # validates both
        cfg = replace(cfg, length=window)
    fps = check_fps(fps, where, "the working frame rate (fps)")
    clips = _read_clips(files, y, where, cfg, layout, fps, window, stride,
                        dict(units_to_metres=units_to_metres, units=units, joint_map=joint_map))
    meta: dict[str, Any] = {
        "format": "bvh-folder", "labels_path": display_path(csv_path) if from_csv else None,
        "units": clips.units, "recordings": len(files),
    }
    if name_labels is not None:
        meta["labels_from_name"] = name_labels.pattern
        meta["label_field"] = name_labels.label_field
    if window is not None:
        meta["window"] = {"length": window, "stride": stride}
    return sequences_to_dataset(
        clips.seqs, clips.y, clips.names, classes, layout=layout, fps=fps, config=cfg, source=where, meta=meta,
        groups=clips.groups if window is not None else None,
    )


def _folder_files(root: Path, where: str, only: Sequence[str] | None) -> list[Path]:
    """The ``*.bvh`` files of ``root`` sorted by name, restricted to ``only`` (names with or
    without ``.bvh``; one not in the folder is an error)."""
    if not root.is_dir():
        raise SsalInputError(where, "folder not found")
    files = sorted(q for q in root.iterdir() if q.suffix.lower() == ".bvh" and q.is_file())
    if not files:
        raise SsalInputError(where, "no .bvh files in the folder")
    if only is not None:
        wanted = {Path(n).stem if Path(n).suffix.lower() == ".bvh" else str(n) for n in only}
        missing = sorted(wanted - {f.stem for f in files})
        if missing:
            raise SsalInputError(where, f"{len(missing)} requested file(s) not in the folder, e.g. {missing[0]!r}")
        files = [f for f in files if f.stem in wanted]
        if not files:
            raise SsalInputError(where, "no files requested")
    return files


def _folder_labels(files: list[Path], where: str, labels: Any, csv_path: Path, label_map: Any,
                   name_labels: NameLabels | None) -> tuple[list[Path], list[int], list[str], bool]:
    """``(files kept, label of each, classes, labels read from a CSV?)``: from the file names
    (their filters pick the files), else from the CSV, else every file unlabelled."""
    if name_labels is not None:
        if labels is not None:
            raise SsalInputError(where, "labels come either from a CSV or from file names, not both")
        chosen, names_, classes = select_and_label([f.stem for f in files], name_labels, where)
        return [files[i] for i in chosen], [classes.index(lab) for lab in names_], classes, False
    classes = resolve_label_map(label_map)
    if not (labels is not None or csv_path.is_file()):
        return files, [UNLABELLED] * len(files), classes, False
    table = read_labels_csv(csv_path, classes)
    by_name = {f.name: f for f in files}
    by_stem = {f.stem: f for f in files}
    resolved: dict[Path, int] = {}
    for key, lab in table.items():
        f = by_name.get(key) or by_stem.get(key)
        if f is None:
            raise SsalInputError(display_path(csv_path), f"file {key!r} listed but not found in {where}")
        if f in resolved and resolved[f] != lab:
            raise SsalInputError(display_path(csv_path), f"{f.name!r} is listed twice with different labels")
        resolved[f] = lab
    for f in files:
        if f not in resolved:
            raise SsalInputError(display_path(csv_path), f"no label row for {f.name!r}")
    return files, [resolved[f] for f in files], classes, True


@dataclass
class _Clips:
    """The clips of a folder read so far (:func:`_read_clips`)."""

    seqs: list[np.ndarray] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)


def _read_clips(files: list[Path], y: list[int], where: str, cfg: PreprocessConfig, layout: SkeletonLayout,
                fps: float, window: int | None, stride: int | None, reading: dict[str, Any]) -> _Clips:
    """Every file read (``reading``: units and joint map) and cut into clips (``window``).

    Memory is checked for the folder as a whole: first from every file's MOTION header (frames
    after resampling), before any motion is parsed; then the sequences kept so far plus the
    next file's working memory; at the end the padding of all of them; all within MAX_BYTES.
    """
    planned = dataset_bytes(len(files), cfg, layout.num_joints)
    for f in files:
        planned += declared_output_bytes(f, fps, layout.num_joints)
        check_bytes(planned, where, f"{len(files)} sequences at {fps:g} fps, padded to {cfg.length} frames")
    out = _Clips()
    kept = dataset_bytes(len(files), cfg, layout.num_joints)
    for f, lab in zip(files, y):
        seq, info = read_bvh_with_info(f, layout=layout, fps=fps, config=cfg, reserved_bytes=kept, **reading)
        kept += seq.nbytes
        check_bytes(kept, where, f"the folder's sequences read so far (at {fps:g} fps)")
        out.units[info.units] = out.units.get(info.units, 0) + 1
        # stride is an int whenever window is set (read_bvh_folder)
        starts = cut_windows(len(seq), window, cast(int, stride)) if window is not None else [0]
        for s0 in starts:
            out.seqs.append(seq[s0:s0 + window] if window is not None else seq)
            out.y.append(lab)
            out.names.append(f"{f.name}@{s0}" if window is not None else f.name)
            out.groups.append(f.name)
    # Clips overlap (stride < window): their stacked copy is what the dataset will hold.
    check_bytes(kept + dataset_bytes(len(out.seqs), cfg, layout.num_joints), where,
                f"{len(out.seqs)} clips of {cfg.length} frames")
    return out


def write_bvh(
    path: str | os.PathLike[str],
    joints: Sequence[str],
    parents: Sequence[int],
    offsets: np.ndarray,
    motion: np.ndarray,
    frame_time: float,
    rotation_order: str = "ZYX",
) -> None:
    """Write a BVH file: the root has 6 channels (position + rotation), other joints 3
    rotation channels in ``rotation_order``; joints without children get an ``End Site`` at
    offset 0. ``motion`` is ``(F, 6 + 3 (J - 1))``; ``parents`` must list parents first."""
    children: dict[int, list[int]] = {j: [] for j in range(len(joints))}
    for j, p in enumerate(parents):
        if p >= 0:
            children[int(p)].append(j)
    rot = " ".join(f"{a}rotation" for a in rotation_order.upper())
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        kind = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {joints[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
        if parents[j] < 0:
            lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot}")
        else:
            lines.append(f"{pad}\tCHANNELS 3 {rot}")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET 0.0 0.0 0.0")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(int(np.flatnonzero(np.asarray(parents) < 0)[0]), 0)
    lines.append("MOTION")
    lines.append(f"Frames: {motion.shape[0]}")
    lines.append(f"Frame Time: {frame_time:.7f}")
    lines.extend(" ".join(f"{v:.6f}" for v in row) for row in np.asarray(motion))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

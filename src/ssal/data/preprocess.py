"""Preprocessing of raw gait sequences into a :class:`~ssal.data.dataset.GaitDataset`.

Readers hand over one ``(T_i, V, 3)`` array per sequence (y-up, about metres, frames at
``fps``). :func:`sequences_to_dataset` validates each one, then applies, in this order:

1. **length** (:func:`fix_length`): bring every sequence to ``config.length`` frames, either by
   looping (``"loop"``: a shorter sequence is repeated from its start, as STEP does; a longer
   one is cut to its *centre* ``length`` frames, which keeps the walking speed) or by linear
   resampling (``"resample"``: endpoints kept, speed changed);
2. **centring** (:func:`center_sequences`): ``"per_frame"`` (the default) removes the root
   trajectory, ``"first_frame"`` moves the root joint of frame 0 to the origin and keeps the
   walking path (E-Gait's convention), ``"none"`` leaves positions alone;
3. **facing alignment** (:func:`align_facing`): a rotation about the up axis, around the
   frame-0 root, so that at frame 0 the body's left-minus-right vector (hips plus shoulders)
   points along **+x**; with y up the subject then faces **+z** (the BVH convention);
4. **scale** (:func:`scale_sequences`): a uniform scale so that the body's *height proxy*
   equals :data:`REFERENCE_HEIGHT` = 1.5 (metres). The height proxy is pose-independent: the
   summed bone lengths inside the trunk part (root to head) plus the mean summed bone length
   inside the two leg parts (hip to ankle), median over frames. An adult of about 1.7 m
   measures about 1.45 on it, so data stay "about metres" and units (cm, inches) cancel.

Every step works batched on ``(..., T, V, 3)`` arrays; only the length step runs per sequence
(the sequences differ in length before it). All user-input problems raise
:class:`~ssal.errors.SsalInputError` naming the source and the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import SsalInputError
from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import UNLABELLED, GaitDataset

#: Target of the scale normalisation: the height proxy (trunk chain + mean leg chain) in metres.
REFERENCE_HEIGHT = 1.5

from ..config.schema import CENTER_MODES, DataConfig  # noqa: E402 - the choices and default of data.center

# --------------------------------------------------------------------------------------
# Limits on untrusted input (docs/data.md, "Limits"). Readers check declared sizes against
# them *before* allocating, so a small hostile file cannot make ssal allocate gigabytes. They
# are module attributes, read at call time: a user with a legitimately larger source may raise
# them (``ssal.data.preprocess.MAX_VALUES = 2**30``) or convert it to a ``.ssal`` corpus.
# --------------------------------------------------------------------------------------

#: Most numbers one source may declare in total (all sequences x frames x values per frame;
#: for BVH also joints x frames x 12 for forward kinematics): 2**27 (1 GiB as float64).
MAX_VALUES = 2**27
#: Most bytes of working memory reading one source may take, estimated from its declared
#: sizes before anything is allocated: the raw arrays as read (their dtype's bytes, strings
#: included), the float64 copies, forward kinematics and frame-rate resampling (BVH), and what
#: padding/cutting to ``length`` frames and preprocessing cost (:func:`dataset_bytes`). For a
#: folder the sequences kept so far count too. Peak memory of a read stays below the
#: interpreter's baseline plus about this much (docs/data.md, "Limits").
MAX_BYTES = 2**30
#: Bytes per value of the ``(N, length, V, 3)`` output while :func:`sequences_to_dataset`
#: runs: the float64 fixed-length stack, up to 2.7 float64 temporaries of the centring /
#: facing / scale steps and the float32 result.
DATASET_BYTES_PER_VALUE = 32
#: Largest text file (BVH, labels CSV) read, in bytes (128 MiB; a BVH file costs about 4x its
#: size while parsed, see :func:`ssal.data.bvh.parse_bvh`).
MAX_TEXT_BYTES = 128 * 2**20
#: Largest JSON file (canonical ``meta.json``, split files) read, in bytes (16 MiB): decoded
#: JSON takes up to ~40x its size in Python objects.
MAX_JSON_BYTES = 16 * 2**20
#: Lowest and highest frame rate accepted from a file or a setting (frames per second).
MIN_FPS, MAX_FPS = 0.1, 10_000.0
#: Most joints in a BVH hierarchy.
MAX_BVH_JOINTS = 2_000
#: Largest absolute coordinate accepted (larger values overflow preprocessing in float32).
MAX_COORDINATE = 1e9
LENGTH_MODES = ("loop", "resample")
#: Largest fixed length (``PreprocessConfig.length``, a clip length) accepted, in frames.
MAX_LENGTH = 100_000


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    """A whole-number setting in ``[lo, hi]`` (no bools, strings or fractions)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok and isinstance(value, (float, np.floating)) and float(value).is_integer():
        ok, value = True, int(value)
    if not ok or not lo <= int(value) <= hi:
        raise SsalInputError(f"preprocess.{name}", f"must be a whole number from {lo} to {hi}, got {value!r}")
    return int(value)


@dataclass
class PreprocessConfig:
    """Switches of the preprocessing pipeline (recorded in ``GaitDataset.meta["preprocess"]``).

    Attributes:
        center: ``"per_frame"`` (default: root at the origin in every frame, the pose relative
            to the pelvis), ``"first_frame"`` (root of frame 0 at the origin, walking path kept,
            as E-Gait ships) or ``"none"``. Why per-frame by default: with the path kept the
            forward translation (metres) dwarfs the limb motion (decimetres), a looped
            sequence jumps back to its start at every loop, and the general augmentation's
            shear turns the path into a large fake tilt; on the built-in corpus every method
            gained 11-22 points of kNN and 9-24 of linear accuracy on the validation split
            (docs/results.md). Walking speed then reaches the encoder through stride and cadence.
        scale: scale so the height proxy equals :data:`REFERENCE_HEIGHT` (see module doc).
        align_facing: rotate about the up axis so the subject faces +z at frame 0 (left
            side along +x).
        length: the fixed number of frames T.
        length_mode: ``"loop"`` (repeat shorter sequences from the start; cut longer ones to
            their centre T frames) or ``"resample"`` (linear interpolation to T frames).
        min_frames: sequences with fewer frames are rejected.
        max_frames: sequences with more frames are rejected before anything is allocated.
    """

    center: str = DataConfig.center
    scale: bool = True
    align_facing: bool = True
    length: int = 75
    length_mode: str = "loop"
    min_frames: int = 4
    max_frames: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.center, str) or self.center not in CENTER_MODES:
            raise SsalInputError("preprocess.center", f"must be one of {CENTER_MODES}, got {self.center!r}")
        if not isinstance(self.length_mode, str) or self.length_mode not in LENGTH_MODES:
            raise SsalInputError(
                "preprocess.length_mode", f"must be one of {LENGTH_MODES}, got {self.length_mode!r}"
            )
        for name in ("scale", "align_facing"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise SsalInputError(f"preprocess.{name}", f"must be true or false, got {getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        self.length = _whole("length", self.length, 1, MAX_LENGTH)
        self.min_frames = _whole("min_frames", self.min_frames, 1, MAX_LENGTH)
        self.max_frames = _whole("max_frames", self.max_frames, 1, 10**9)
        if self.max_frames < self.min_frames:
            raise SsalInputError(
                "preprocess.max_frames", f"must be >= min_frames ({self.min_frames}), got {self.max_frames}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PreprocessConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        if data is not None and not isinstance(data, dict):
            raise SsalInputError("preprocess", f"must be a mapping of settings, got {type(data).__name__}")
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SsalInputError("preprocess", f"unknown setting(s): {', '.join(unknown)}")
        return cls(**data)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable file-name bytes) escaped."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _where(source: str, name: str | None) -> str:
    return _printable(f"{source} [{name}]" if name is not None else source)


def check_value_count(count: int, where: str, what: str = "the data") -> None:
    """Refuse ``count`` declared values above :data:`MAX_VALUES` (call before allocating)."""
    if count > MAX_VALUES:
        raise SsalInputError(
            _printable(where),
            f"{what} declares {count} values, more than the limit of {MAX_VALUES} "
            f"(ssal.data.preprocess.MAX_VALUES; see 'Limits' in docs/data.md)",
        )


def check_bytes(nbytes: int | float, where: str, what: str = "the data") -> None:
    """Refuse a read whose estimated working memory ``nbytes`` exceeds :data:`MAX_BYTES`
    (call before allocating)."""
    if nbytes > MAX_BYTES:
        raise SsalInputError(
            _printable(where),
            f"{what} would need about {_size_text(nbytes)} of memory, more than the limit of "
            f"{_size_text(MAX_BYTES)} (ssal.data.preprocess.MAX_BYTES; see 'Limits' in docs/data.md)",
        )


def _size_text(nbytes: int | float) -> str:
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def dataset_bytes(n: int, config: PreprocessConfig | None, num_joints: int) -> int:
    """Working memory of :func:`sequences_to_dataset` for ``n`` sequences (padding or cutting
    to ``config.length`` frames and preprocessing), in bytes."""
    cfg = config or PreprocessConfig()
    return int(n) * int(cfg.length) * int(num_joints) * 3 * DATASET_BYTES_PER_VALUE


def check_fps(value: Any, where: str, what: str = "fps") -> float:
    """``value`` as a frame rate in ``[MIN_FPS, MAX_FPS]``, or a one-line error."""
    try:
        fps = float(value) if not isinstance(value, (bool, str, bytes)) else float("nan")
    except (TypeError, ValueError, OverflowError):
        fps = float("nan")
    if not (MIN_FPS <= fps <= MAX_FPS):
        raise SsalInputError(_printable(where), f"{what} must be a number from {MIN_FPS:g} to {MAX_FPS:g}, got {value!r}")
    return fps


def check_json_size(size: int, where: str) -> None:
    """Refuse a JSON file larger than :data:`MAX_JSON_BYTES`."""
    if size > MAX_JSON_BYTES:
        raise SsalInputError(
            _printable(where),
            f"JSON file of {size} bytes is larger than the limit of {MAX_JSON_BYTES} bytes "
            f"(ssal.data.preprocess.MAX_JSON_BYTES)",
        )


def check_text_size(size: int, where: str) -> None:
    """Refuse a text file larger than :data:`MAX_TEXT_BYTES`."""
    if size > MAX_TEXT_BYTES:
        raise SsalInputError(
            _printable(where),
            f"file of {size} bytes is larger than the limit of {MAX_TEXT_BYTES} bytes "
            f"(ssal.data.preprocess.MAX_TEXT_BYTES)",
        )


def check_frame_count(
    n_frames: int, source: str, name: str | None = None, config: PreprocessConfig | None = None
) -> None:
    """Reject a frame count outside ``[min_frames, max_frames]`` (call before reading data)."""
    cfg = config or PreprocessConfig()
    if n_frames < cfg.min_frames:
        raise SsalInputError(
            _where(source, name), f"has {n_frames} frame(s), at least {cfg.min_frames} are needed"
        )
    if n_frames > cfg.max_frames:
        raise SsalInputError(
            _where(source, name),
            f"has {n_frames} frames, more than the limit of {cfg.max_frames} (max_frames)",
        )


def validate_sequence(
    seq: Any,
    layout: SkeletonLayout = EGAIT16,
    source: str = "<memory>",
    name: str | None = None,
    config: PreprocessConfig | None = None,
) -> np.ndarray:
    """Check one sequence and return it as a float64 ``(T, V, 3)`` array.

    Raises:
        SsalInputError: wrong shape or joint count, too few/many frames, NaN or inf values.
    """
    where = _where(source, name)
    shape = getattr(seq, "shape", None)
    if shape is None:
        seq = np.asarray(seq)
        shape = seq.shape
    if len(shape) != 3 or shape[2] != 3:
        raise SsalInputError(where, f"expected a (T, V, 3) array of joint positions, got shape {tuple(shape)}")
    if shape[1] != layout.num_joints:
        raise SsalInputError(
            where, f"expected {layout.num_joints} joints for layout {layout.name}, got {shape[1]}"
        )
    check_frame_count(int(shape[0]), source, name, config)
    if np.iscomplexobj(seq):
        raise SsalInputError(where, "joint positions are complex numbers, expected real ones")
    try:
        arr = np.asarray(seq, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SsalInputError(where, f"joint positions are not numbers ({exc})") from None
    finite = np.isfinite(arr).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise SsalInputError(
            where,
            f"{bad.size} frame(s) hold NaN or inf values (first: frame {int(bad[0])})",
        )
    huge = (np.abs(arr) > MAX_COORDINATE).any(axis=(1, 2))
    if huge.any():
        raise SsalInputError(
            where,
            f"coordinates larger than {MAX_COORDINATE:g} in absolute value (first: frame "
            f"{int(np.flatnonzero(huge)[0])}); check the file's units",
        )
    return arr


# --------------------------------------------------------------------------------------
# Individual steps
# --------------------------------------------------------------------------------------


def loop_to_length(seq: np.ndarray, length: int) -> np.ndarray:
    """``(T, ...)`` -> ``(length, ...)``: repeat a shorter sequence from its start (STEP's
    padding); cut a longer one to its centre ``length`` frames."""
    t = seq.shape[0]
    if t == length:
        return seq
    if t > length:
        start = (t - length) // 2
        return seq[start : start + length]
    idx = np.arange(length) % t
    return seq[idx]


def resample_to_length(seq: np.ndarray, length: int) -> np.ndarray:
    """``(T, ...)`` -> ``(length, ...)`` by linear interpolation in time; first and last
    frames are kept exactly."""
    t = seq.shape[0]
    if t == length:
        return seq
    if length == 1 or t == 1:
        return seq[np.zeros(length, dtype=np.int64)]
    pos = np.linspace(0.0, t - 1, length)
    return _interpolate_frames(seq, pos)


def _interpolate_frames(seq: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``seq`` (``(T, ...)``) at fractional frame positions ``pos``."""
    t = seq.shape[0]
    lo = np.clip(np.floor(pos).astype(np.int64), 0, t - 1)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (seq.ndim - 1))
    out = seq[lo] * (1.0 - w) + seq[hi] * w
    return out.astype(seq.dtype, copy=False)


def fix_length(seq: np.ndarray, length: int, mode: str = "loop") -> np.ndarray:
    """Bring ``seq`` (``(T, ...)``) to ``length`` frames with ``mode`` ``"loop"`` or ``"resample"``."""
    if mode == "loop":
        return loop_to_length(seq, length)
    if mode == "resample":
        return resample_to_length(seq, length)
    raise SsalInputError("preprocess.length_mode", f"must be one of {LENGTH_MODES}, got {mode!r}")


def resample_fps(seq: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a ``(T, ...)`` sequence from ``src_fps`` to ``dst_fps`` by linear interpolation.

    Output frame ``k`` is the input at time ``k / dst_fps``; the output covers the input's
    duration (``floor((T - 1) * dst / src) + 1`` frames), its first frame is the input's first.
    """
    if not (np.isfinite(src_fps) and np.isfinite(dst_fps)) or src_fps <= 0 or dst_fps <= 0:
        raise SsalInputError("fps", f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    t = seq.shape[0]
    if t == 0 or src_fps == dst_fps:
        return seq
    ratio = src_fps / dst_fps
    n_out = int(np.floor((t - 1) / ratio + 1e-9)) + 1
    pos = np.arange(n_out) * ratio
    return _interpolate_frames(seq, pos)


def center_sequences(x: np.ndarray, mode: str, root: int) -> np.ndarray:
    """Centre ``(..., T, V, 3)`` positions on joint ``root``.

    ``"first_frame"``: subtract the root position of frame 0 from every frame (path kept);
    ``"per_frame"``: subtract each frame's root position; ``"none"``: return ``x`` unchanged.
    """
    if mode == "none":
        return x
    if mode == "first_frame":
        return x - x[..., :1, root : root + 1, :]
    if mode == "per_frame":
        return x - x[..., :, root : root + 1, :]
    raise SsalInputError("preprocess.center", f"must be one of {CENTER_MODES}, got {mode!r}")


def across_vector(x: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Left-minus-right body vector ``(..., T, 3)``: hips plus shoulders.

    The first joint of the ``left_leg``/``right_leg`` parts (the hips) and of the
    ``left_arm``/``right_arm`` parts (the shoulders) are used, so any layout works.
    """
    lh, rh = layout.parts["left_leg"][0], layout.parts["right_leg"][0]
    ls, rs = layout.parts["left_arm"][0], layout.parts["right_arm"][0]
    return (x[..., lh, :] - x[..., rh, :]) + (x[..., ls, :] - x[..., rs, :])


def _horizontal_axes(up_axis: int) -> tuple[int, int]:
    """``(a, b)``: the horizontal axes such that ``(a, up, b)`` is right-handed (x, y, z for y-up)."""
    return (up_axis + 2) % 3, (up_axis + 1) % 3


def facing_angles(x: np.ndarray, layout: SkeletonLayout, eps: float = 1e-8) -> np.ndarray:
    """Angle ``(...,)`` of the horizontal across vector from the +a axis (+x for y-up).

    Frame 0 is used; where its horizontal across vector is degenerate (joints coincide, as in
    some generated sequences), the first frame with a usable one; 0 where none has one.
    """
    a, b = _horizontal_axes(layout.up_axis)
    v = across_vector(x, layout)
    ha, hb = v[..., a], v[..., b]
    ok = np.hypot(ha, hb) > eps
    first = np.argmax(ok, axis=-1)
    any_ok = ok.any(axis=-1)
    ha0 = np.take_along_axis(ha, first[..., None], axis=-1)[..., 0]
    hb0 = np.take_along_axis(hb, first[..., None], axis=-1)[..., 0]
    return np.where(any_ok, np.arctan2(hb0, ha0), 0.0)


def rotate_about_up(x: np.ndarray, angle: np.ndarray, up_axis: int, pivot: np.ndarray | None = None) -> np.ndarray:
    """Rotate ``(..., T, V, 3)`` positions about the up axis by ``angle`` (``(...,)``, radians).

    A horizontal vector at angle ``phi`` from the ``+a`` axis (measured towards ``+b``; for
    y-up, from +x towards +z) ends at angle ``phi - angle``.
    ``pivot`` (``(..., 3)``) is a point on the rotation axis (default: the origin).
    """
    a, b = _horizontal_axes(up_axis)
    angle = np.asarray(angle, dtype=x.dtype)[..., None, None]
    c, s = np.cos(angle), np.sin(angle)
    out = x.copy()
    pa: np.ndarray | float
    pb: np.ndarray | float
    if pivot is not None:
        pa = pivot[..., a][..., None, None]
        pb = pivot[..., b][..., None, None]
    else:
        pa = pb = 0.0
    xa, xb = x[..., a] - pa, x[..., b] - pb
    out[..., a] = c * xa + s * xb + pa
    out[..., b] = -s * xa + c * xb + pb
    return out


def align_facing(x: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Rotate ``(..., T, V, 3)`` about the up axis through the frame-0 root so that the frame-0
    left-minus-right vector points along +x (y-up: the subject faces +z)."""
    angle = facing_angles(x, layout)
    pivot = x[..., 0, layout.center, :]
    return rotate_about_up(x, angle, layout.up_axis, pivot)


def _chain_length(x: np.ndarray, layout: SkeletonLayout, part: str) -> np.ndarray:
    """Summed length ``(..., T)`` of the bones with both ends inside a body part."""
    members = set(layout.parts[part])
    total = np.zeros(x.shape[:-2], dtype=x.dtype)
    for i, j in layout.edges:
        if i in members and j in members:
            total = total + np.linalg.norm(x[..., i, :] - x[..., j, :], axis=-1)
    return total


def height_proxy(x: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Pose-independent body size ``(...,)`` of ``(..., T, V, 3)`` sequences.

    Trunk chain (bones inside the ``trunk`` part) plus the mean of the two leg chains, median
    over frames.
    """
    per_frame = _chain_length(x, layout, "trunk") + 0.5 * (
        _chain_length(x, layout, "left_leg") + _chain_length(x, layout, "right_leg")
    )
    return np.median(per_frame, axis=-1)


def scale_sequences(
    x: np.ndarray, layout: SkeletonLayout, target: float = REFERENCE_HEIGHT, names: Sequence[str] | None = None,
    source: str = "<memory>",
) -> np.ndarray:
    """Scale each ``(..., T, V, 3)`` sequence so its :func:`height_proxy` equals ``target``.

    Scaling is about the origin (after centring, about the frame-0 root).

    Raises:
        SsalInputError: a sequence has a zero height proxy (all joints coincide).
    """
    h = height_proxy(x, layout)
    bad = ~(h > 1e-9)
    if np.any(bad):
        first = np.argwhere(np.atleast_1d(bad))[0]
        name = names[int(first[0])] if names is not None and np.ndim(h) == 1 else None
        raise SsalInputError(_where(source, name), "degenerate skeleton: trunk and legs have zero length")
    return x * (target / h)[..., None, None, None]


# --------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------


def preprocess_batch(x: np.ndarray, layout: SkeletonLayout, config: PreprocessConfig, names: Sequence[str] | None = None,
                     source: str = "<memory>") -> np.ndarray:
    """Centre, align and scale fixed-length sequences ``(N, T, V, 3)`` as ``config`` says."""
    x = center_sequences(x, config.center, layout.center)
    if config.align_facing:
        x = align_facing(x, layout)
    if config.scale:
        x = scale_sequences(x, layout, names=names, source=source)
    return x


def _labels_array(labels: Any, n: int, num_classes: int, source: str, names: Sequence[str]) -> np.ndarray:
    if labels is None:
        return np.full(n, UNLABELLED, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    labels = list(labels)
    if len(labels) != n:
        raise SsalInputError(source, f"{len(labels)} labels for {n} sequences")
    for i, lab in enumerate(labels):
        if lab is None:
            out[i] = UNLABELLED
            continue
        try:
            value = int(lab)
            integral = not isinstance(lab, (str, bytes)) and value == lab
        except (TypeError, ValueError):
            integral = False
        if not integral:
            raise SsalInputError(_where(source, names[i]), f"label {lab!r} is not an integer")
        if not (value == UNLABELLED or 0 <= value < num_classes):
            raise SsalInputError(
                _where(source, names[i]), f"label {value} outside 0..{num_classes - 1} (or -1 for unlabelled)"
            )
        out[i] = value
    return out


def sequences_to_dataset(
    sequences: Sequence[np.ndarray],
    labels: Sequence[int | None] | np.ndarray | None,
    names: Sequence[str],
    classes: Sequence[str],
    layout: SkeletonLayout = EGAIT16,
    fps: float = 30.0,
    config: PreprocessConfig | None = None,
    source: str = "<memory>",
    meta: dict | None = None,
    groups: Sequence[str] | None = None,
) -> GaitDataset:
    """Validate, preprocess and stack raw sequences into a :class:`GaitDataset`.

    Args:
        sequences: one ``(T_i, V, 3)`` array per sequence, y-up, about metres, at ``fps``.
        labels: class index per sequence, ``None`` or -1 for unlabelled (or ``None`` for all).
        names: one name per sequence (used in error messages and stored in the dataset).
        classes: emotion name per class index.
        layout: skeleton layout of the V axis.
        fps: frame rate of the sequences (stored; no resampling happens here).
        config: preprocessing switches (default :class:`PreprocessConfig()`).
        source: the file the sequences came from, for error messages and ``meta["source"]``.
        meta: extra provenance merged into the dataset's ``meta``.
        groups: recording id per sequence when sequences are clips of recordings.

    Returns:
        A dataset with ``x`` of shape ``(N, 3, config.length, V)`` float32; ``lengths`` holds
        the original frame counts; ``meta["preprocess"]`` the settings used.

    Raises:
        SsalInputError: any sequence is malformed (message names ``source`` and the sequence).
    """
    cfg = config or PreprocessConfig()
    names = [str(n) for n in names]
    n = len(sequences)
    if len(names) != n:
        raise SsalInputError(source, f"{len(names)} names for {n} sequences")
    y = _labels_array(labels, n, len(classes), source, names)
    v = layout.num_joints
    check_bytes(dataset_bytes(n, cfg, v), source, f"{n} sequences padded to {cfg.length} frames")
    fps = check_fps(fps, source)
    fixed = np.empty((n, cfg.length, v, 3), dtype=np.float64)
    lengths = np.empty(n, dtype=np.int64)
    for i, (seq, name) in enumerate(zip(sequences, names)):
        arr = validate_sequence(seq, layout, source, name, cfg)
        lengths[i] = arr.shape[0]
        fixed[i] = fix_length(arr, cfg.length, cfg.length_mode)
    with np.errstate(over="ignore", invalid="ignore"):
        processed = preprocess_batch(fixed, layout, cfg, names, source) if n else fixed
        x = np.ascontiguousarray(processed.transpose(0, 3, 1, 2), dtype=np.float32)
    finite = np.isfinite(x).reshape(n, -1).all(axis=1) if n else np.ones(0, dtype=bool)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise SsalInputError(
            _where(source, names[i]), "preprocessing produced NaN or inf values (extreme coordinates?)"
        )
    info: dict[str, Any] = {"source": str(source)}
    info.update(meta or {})
    info["preprocess"] = cfg.to_dict()
    return GaitDataset(
        x=x, y=y, names=names, lengths=lengths, classes=list(classes), layout=layout, fps=float(fps), meta=info,
        groups=list(groups) if groups is not None else None,
    )

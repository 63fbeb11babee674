"""Videos of a person walking -> E-Gait-16 gait sequences, through MediaPipe Pose (BlazePose).

Needs the optional ``video`` extra (OpenCV for decoding, MediaPipe 0.10.21 for the pose model;
README, "From a video"). Without it every entry point raises one :class:`SsalInputError` line
that says what to install. The pipeline, in order:

1. **frames** (:func:`iter_frames`): decoded by OpenCV's FFmpeg backend, with each frame's
   timestamp (the container's, when it increases; else ``index / fps``);
2. **landmarks** (:func:`extract_poses`): MediaPipe's BlazePose (``model_complexity=1``, the
   only model its 0.10.21 wheel ships, so nothing is downloaded) in tracking mode gives 33
   world landmarks per frame (metres, origin at the hip midpoint, y down) with a visibility
   each, and 33 image landmarks (for :mod:`ssal.visualisation.video`). Frames without a person hold NaN;
   one person is tracked (the most prominent);
3. **mapping** (:func:`ssal.skeleton.blazepose_to_egait16`): BlazePose-33 -> E-Gait-16 (root =
   hip centre, neck = shoulder centre, head = ear centre, hands = wrists, feet = ankles),
   turned upright by a 180 degree rotation about x (y up; a rotation, so left stays left);
4. **masking** (:func:`mask_and_fill`): a joint is masked in a frame where no person was found
   or its visibility is below ``min_visibility`` (0.5; a joint outside the picture gets
   ~0.2-0.3 and an invented position). Gaps of at most ``max_gap`` seconds (0.25 s, under
   half a step at a normal cadence) between two visible values are filled by linear
   interpolation in time, per joint; longer gaps are refused;
5. **stretches** (:func:`split_stretches`): a frame is usable when all 16 joints are visible or
   filled; each maximal run of usable frames lasting at least ``min_duration`` (1 s, about one
   stride) becomes one sequence, so a video where the walker leaves the picture and comes back
   gives one sequence per pass. Standing still is not told apart from walking;
6. **frame rate** (:func:`resample_times`): each stretch is resampled by linear interpolation
   on its timestamps to the working rate (``fps``, 30 by default).

The sequences then go through the usual preprocessing (:mod:`ssal.data.preprocess`). World
landmarks are re-centred on the hips every frame, so the walking path is lost; the default
``center="per_frame"`` removes it anyway.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import SsalInputError, display_path, stat_input
from ..skeleton import BLAZEPOSE33, EGAIT16, SkeletonLayout, blazepose_to_egait16
from .dataset import UNLABELLED, GaitDataset
from .preprocess import PreprocessConfig, sequences_to_dataset

#: File name endings read as videos by :func:`ssal.data.io.load_dataset` and ``ssal pose``.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".3gp", ".ts", ".mts")
#: The MediaPipe release ssal uses: the last whose wheel ships the pose models (README, "From a video").
MEDIAPIPE_VERSION = "0.10.21"
#: What to run when the extra is missing.
INSTALL_HINT = (f'pip install "ssal[video]" && pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} '
                f'(from a clone: README, "From a video")')
#: Most frames decoded from one video (an hour at 30 fps); checked on the declared count first.
MAX_VIDEO_FRAMES = 108_000


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` ends in one of :data:`VIDEO_SUFFIXES`."""
    return Path(os.fsdecode(path)).suffix.lower() in VIDEO_SUFFIXES


def import_cv2(where: str | None = None) -> Any:
    """OpenCV, or a one-line :class:`SsalInputError` naming the extra to install."""
    try:
        import cv2
    except ImportError:
        raise SsalInputError(where, f"reading videos needs the optional 'video' extra (OpenCV, MediaPipe), "
                                    f"which is not installed: {INSTALL_HINT}") from None
    return cv2


def import_mediapipe_pose(where: str | None = None) -> Any:
    """``mediapipe.solutions.pose`` with its bundled model, or a one-line error saying what to install."""
    import_cv2(where)
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter on stderr
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe
    except ImportError:
        raise SsalInputError(where, f"pose estimation needs MediaPipe {MEDIAPIPE_VERSION}, which is not installed: "
                                    f"{INSTALL_HINT}") from None
    try:
        pose = mediapipe.solutions.pose
        model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    except AttributeError:
        pose, model = None, None
    if pose is None or model is None or not model.is_file():
        found = getattr(mediapipe, "__version__", "unknown")
        raise SsalInputError(where, f"MediaPipe {found} ships no pose model; ssal needs {MEDIAPIPE_VERSION}: "
                                    f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}")
    return pose


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[Any]:
    """Send file descriptor 2 to a temporary file for the block: native libraries (FFmpeg,
    MediaPipe, TFLite) write start-up chatter there directly. Yields a text stream on the real
    stderr (for a progress bar); what was hidden is replayed on stderr if the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr: nothing to hide
        yield sys.stderr
        return
    real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        failed = False
        try:
            yield real
        except SsalInputError:  # our own one-line message: the native chatter is not the cause
            raise
        except BaseException:
            failed = True
            raise
        finally:
            real.flush()
            os.dup2(saved, 2)
            os.close(saved)
            real.close()
            if failed:
                tmp.seek(0)
                sys.stderr.write(tmp.read().decode("utf-8", "replace"))


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares: frame rate, frame count (0 if unknown), size in pixels."""

    fps: float
    frame_count: int
    width: int
    height: int


def open_video(path: str | os.PathLike[str]) -> tuple[Any, VideoInfo]:
    """Open ``path`` with OpenCV; returns ``(capture, info)``. The caller releases the capture.

    Raises:
        SsalInputError: missing file, not a regular file, not a video OpenCV can decode, no
            usable frame rate, more than :data:`MAX_VIDEO_FRAMES` frames declared.
    """
    p = Path(os.fsdecode(path))
    where = display_path(p)
    cv2 = import_cv2(where)
    st = stat_input(p, where)
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "not a regular file (a directory, FIFO or device?)")
    if st.st_size == 0:
        raise SsalInputError(where, "the file is empty")
    with _native_stderr_quiet():  # FFmpeg's own complaint ("moov atom not found") is not ours to print
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise SsalInputError(where, "not a video that OpenCV/FFmpeg can decode")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(count) if math.isfinite(count) and count > 0 else 0
    info = VideoInfo(fps=fps, frame_count=count, width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if not (math.isfinite(fps) and 1.0 <= fps <= 1000.0):
        cap.release()
        raise SsalInputError(where, f"the video declares no usable frame rate ({fps:g} fps)")
    if count > MAX_VIDEO_FRAMES:
        cap.release()
        raise SsalInputError(where, f"declares {count} frames, more than the limit of {MAX_VIDEO_FRAMES} "
                                    f"(ssal.data.video.MAX_VIDEO_FRAMES); cut it first")
    return cap, info


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[VideoInfo, float, np.ndarray]]:
    """Yield ``(info, time_s, rgb)`` for every decodable frame; ``rgb`` is ``(H, W, 3)`` uint8.

    The time is the container's timestamp while it increases, else ``index / info.fps``.
    """
    cv2 = import_cv2(display_path(path))
    cap, info = open_video(path)
    try:
        last = -math.inf
        index = 0
        while index < MAX_VIDEO_FRAMES:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            t = ms / 1000.0 if math.isfinite(ms) and ms / 1000.0 > last else (
                index / info.fps if index / info.fps > last else last + 1.0 / info.fps)
            last = t
            yield info, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


# --------------------------------------------------------------------------------------
# Landmarks
# --------------------------------------------------------------------------------------


@dataclass
class VideoPoses:
    """BlazePose-33 landmarks of every frame of a video (NaN / visibility 0 where no person).

    Attributes:
        source: the video, as shown in messages.
        world: ``(F, 33, 3)`` world landmarks, MediaPipe's convention (metres, hip-centred, y down).
        image: ``(F, 33, 3)`` image landmarks: x, y in pixels, z MediaPipe's relative depth.
        visibility: ``(F, 33)`` in 0..1.
        times: ``(F,)`` frame times in seconds.
        info: the container's frame rate, frame count and size.
    """

    source: str
    world: np.ndarray
    image: np.ndarray
    visibility: np.ndarray
    times: np.ndarray
    info: VideoInfo

    @property
    def num_frames(self) -> int:
        """F, the number of decoded frames."""
        return int(self.times.shape[0])

    @property
    def detected(self) -> np.ndarray:
        """``(F,)`` bool: a person was found in the frame."""
        return np.isfinite(self.world).all(axis=(1, 2))


def extract_poses(
    path: str | os.PathLike[str],
    *,
    progress: bool | None = None,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
) -> VideoPoses:
    """Run BlazePose on every frame of ``path`` (see the module doc, steps 1-2).

    Args:
        path: the video file.
        progress: show a progress bar (``None``: only when stderr is a terminal).
        min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.

    Raises:
        SsalInputError: the extra is missing, the file is not a decodable video or holds no frame.
    """
    from tqdm.auto import tqdm

    p = Path(os.fsdecode(path))
    where = display_path(p)
    mp_pose = import_mediapipe_pose(where)
    cap, info = open_video(p)  # a bad file is refused before the model starts
    cap.release()
    world: list[np.ndarray] = []
    image: list[np.ndarray] = []
    vis: list[np.ndarray] = []
    times: list[float] = []
    nan = np.full((BLAZEPOSE33.num_joints, 3), np.nan, dtype=np.float32)
    # MediaPipe's native start-up log lines (XNNPACK, feedback tensors) are hidden.
    with _native_stderr_quiet() as real_stderr, mp_pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence) as model:
        show = progress if progress is not None else bool(getattr(real_stderr, "isatty", lambda: False)())
        bar = tqdm(total=info.frame_count or None, desc="pose", unit="frame", file=real_stderr, leave=False,
                   disable=not show)
        try:
            for info, t, rgb in iter_frames(p):  # noqa: B007 - rebinds info on purpose: returned below
                result = model.process(np.ascontiguousarray(rgb))
                times.append(t)
                if result.pose_world_landmarks is None or result.pose_landmarks is None:
                    world.append(nan)
                    image.append(nan)
                    vis.append(np.zeros(BLAZEPOSE33.num_joints, dtype=np.float32))
                else:
                    h, w = rgb.shape[:2]
                    wl = result.pose_world_landmarks.landmark
                    il = result.pose_landmarks.landmark
                    world.append(np.array([[m.x, m.y, m.z] for m in wl], dtype=np.float32))
                    image.append(np.array([[m.x * w, m.y * h, m.z * w] for m in il], dtype=np.float32))
                    vis.append(np.clip(np.array([m.visibility for m in wl], dtype=np.float32), 0.0, 1.0))
                bar.update(1)
        finally:
            bar.close()
    if not times:
        raise SsalInputError(where, "no frame could be decoded (not a video, or a codec OpenCV's FFmpeg lacks)")
    return VideoPoses(source=where, world=np.stack(world), image=np.stack(image), visibility=np.stack(vis),
                      times=np.asarray(times, dtype=np.float64), info=info)


# --------------------------------------------------------------------------------------
# Masking, gaps, stretches, frame rate
# --------------------------------------------------------------------------------------


@dataclass
class VideoSettings:
    """How landmarks become sequences (module doc, steps 4-6).

    Attributes:
        min_visibility: a joint below this visibility is masked (0 keeps every detected frame).
        max_gap: longest masked gap per joint, in seconds, filled by interpolation.
        min_duration: shortest stretch kept as a sequence, in seconds.
    """

    min_visibility: float = 0.5
    max_gap: float = 0.25
    min_duration: float = 1.0

    def __post_init__(self) -> None:
        for name, lo, hi in (("min_visibility", 0.0, 1.0), ("max_gap", 0.0, 60.0), ("min_duration", 0.0, 3600.0)):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and lo <= value <= hi):
                raise SsalInputError(f"--{name.replace('_', '-')}", f"must lie in {lo:g}..{hi:g}, got {value:g}")
            setattr(self, name, value)


def egait_tracks(poses: VideoPoses) -> tuple[np.ndarray, np.ndarray]:
    """E-Gait-16 world positions ``(F, 16, 3)`` (y up, NaN where no person) and visibility ``(F, 16)``."""
    x, vis = blazepose_to_egait16(poses.world, poses.visibility, upright=True)
    vis = np.where(poses.detected[:, None], vis, 0.0)
    return x, vis


def mask_and_fill(x: np.ndarray, ok: np.ndarray, max_gap_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill masked values of ``x`` ``(F, V, 3)`` where ``ok`` ``(F, V)`` is False.

    Per joint, a run of at most ``max_gap_frames`` masked frames with a visible value on both
    sides is filled by linear interpolation between those two values (by frame index). Returns
    ``(x_filled, ok_after, filled)``; values still masked are left as they were.
    """
    out = np.array(x, dtype=np.float64, copy=True)
    ok = np.asarray(ok, dtype=bool)
    after = ok.copy()
    filled = np.zeros_like(ok)
    f, v = ok.shape
    for j in range(v):
        good = np.flatnonzero(ok[:, j])
        if good.size < 2:
            continue
        for a, b in zip(good[:-1], good[1:]):
            gap = b - a - 1
            if 0 < gap <= max_gap_frames:
                w = (np.arange(1, gap + 1) / (gap + 1))[:, None]
                out[a + 1:b, j] = out[a, j] * (1.0 - w) + out[b, j] * w
                after[a + 1:b, j] = True
                filled[a + 1:b, j] = True
    return out, after, filled


def split_stretches(usable: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each maximal run of True in ``usable`` with at least ``min_frames`` frames."""
    u = np.concatenate([[False], np.asarray(usable, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(u))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    return [(a, b) for a, b in runs if b - a >= max(int(min_frames), 1)]


def resample_times(x: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Resample ``x`` ``(T, ...)`` sampled at ``times`` (seconds, increasing) to ``fps``.

    Output frame ``k`` is ``x`` at ``times[0] + k / fps`` (linear interpolation), covering
    ``times[0]..times[-1]``.
    """
    t = np.asarray(times, dtype=np.float64)
    if not (math.isfinite(fps) and fps > 0):
        raise SsalInputError("fps", f"must be positive, got {fps}")
    if t.size == 1:
        return np.array(x[:1], dtype=np.float64)
    n = int(math.floor((t[-1] - t[0]) * fps + 1e-6)) + 1
    q = t[0] + np.arange(n) / fps
    hi = np.clip(np.searchsorted(t, q, side="right"), 1, t.size - 1)
    lo = hi - 1
    w = np.clip((q - t[lo]) / np.maximum(t[hi] - t[lo], 1e-12), 0.0, 1.0)
    w = w.reshape((-1,) + (1,) * (np.ndim(x) - 1))
    xs = np.asarray(x, dtype=np.float64)
    return xs[lo] * (1.0 - w) + xs[hi] * w


@dataclass
class WalkSequence:
    """One continuous stretch of a video as an E-Gait-16 sequence at the working frame rate.

    Attributes:
        name: ``<video file>@<start>-<end>s``.
        positions: ``(T, 16, 3)`` y-up metres.
        filled: ``(T, 16)`` True where the value was interpolated over a masked gap.
        start_s, end_s: the stretch's first and last frame time in the video.
        first_frame, stop_frame: the stretch's video frames ``[first_frame, stop_frame)``.
    """

    name: str
    positions: np.ndarray
    filled: np.ndarray
    start_s: float
    end_s: float
    first_frame: int
    stop_frame: int


@dataclass
class Segmentation:
    """The outcome of steps 3-5 for every video frame (also what ``ssal show VIDEO`` colours)."""

    positions: np.ndarray  # (F, 16, 3) y up, masked values filled where short
    visibility: np.ndarray  # (F, 16)
    usable: np.ndarray  # (F,) bool
    filled: np.ndarray  # (F, 16) bool
    stretches: list[tuple[int, int]] = field(default_factory=list)
    max_gap_frames: int = 0
    min_frames: int = 1


def segment(poses: VideoPoses, settings: VideoSettings | None = None) -> Segmentation:
    """Mask, fill short gaps and find the usable stretches of ``poses`` (steps 3-5)."""
    s = settings or VideoSettings()
    fps = poses.info.fps
    x, vis = egait_tracks(poses)
    ok = (vis >= s.min_visibility) & poses.detected[:, None]
    max_gap = int(math.floor(s.max_gap * fps + 1e-6))
    filled_x, after, filled = mask_and_fill(x, ok, max_gap)
    usable = cast(np.ndarray, after.all(axis=1))  # (F,) bool; the stubs also allow a scalar
    min_frames = max(int(math.ceil(s.min_duration * fps - 1e-6)), 1)
    return Segmentation(positions=filled_x, visibility=vis, usable=usable, filled=filled,
                        stretches=split_stretches(usable, min_frames), max_gap_frames=max_gap, min_frames=min_frames)


def walk_sequences(poses: VideoPoses, settings: VideoSettings | None = None, fps: float = 30.0) -> list[WalkSequence]:
    """The video's continuous stretches as sequences at ``fps`` (module doc).

    Raises:
        SsalInputError: no person in any frame, or no stretch of at least ``min_duration``
            seconds with every joint visible (the message says which joints were missing).
    """
    s = settings or VideoSettings()
    where = poses.source
    detected = poses.detected
    if not detected.any():
        raise SsalInputError(where, f"no person found in any of its {poses.num_frames} frames")
    seg = segment(poses, s)
    if not seg.stretches:
        longest = max((b - a for a, b in split_stretches(seg.usable, 1)), default=0)
        low = (seg.visibility < s.min_visibility) & detected[:, None]
        worst = [EGAIT16.joints[j] for j in np.argsort(-low.sum(axis=0))[:3] if low[:, j].any()]
        why = f"; most often below visibility {s.min_visibility:g}: {', '.join(worst)}" if worst else ""
        raise SsalInputError(
            where,
            f"no stretch of at least {s.min_duration:g} s with the whole body tracked (a person in "
            f"{int(detected.sum())} of {poses.num_frames} frames, longest usable stretch "
            f"{longest / poses.info.fps:.2f} s{why}); film the whole body, or lower --min-visibility",
        )
    stem = Path(where).name
    out = []
    for a, b in seg.stretches:
        t = poses.times[a:b]
        pos = resample_times(seg.positions[a:b], t, fps)
        filled = resample_times(seg.filled[a:b].astype(np.float64), t, fps) > 0.0
        out.append(WalkSequence(name=f"{stem}@{t[0]:.2f}-{t[-1]:.2f}s", positions=pos, filled=filled,
                                start_s=float(t[0]), end_s=float(t[-1]), first_frame=a, stop_frame=b))
    return out


# --------------------------------------------------------------------------------------
# Reader and writer
# --------------------------------------------------------------------------------------


def read_video(
    path: str | os.PathLike[str],
    *,
    layout: SkeletonLayout = EGAIT16,
    preprocess: PreprocessConfig | None = None,
    label_map: str | Sequence[str] | None = None,
    fps: float = 30.0,
    settings: VideoSettings | None = None,
    progress: bool | None = None,
) -> GaitDataset:
    """A video as an unlabelled dataset on E-Gait-16: one sequence per stretch (module doc)."""
    from .egait import resolve_label_map

    where = display_path(Path(os.fsdecode(path)))
    if layout.name != EGAIT16.name:
        raise SsalInputError(where, f"videos are read onto {EGAIT16.name} only, not {layout.name}")
    poses = extract_poses(path, progress=progress)
    seqs = walk_sequences(poses, settings, fps)
    return sequences_to_dataset(
        [s.positions for s in seqs], [UNLABELLED] * len(seqs), [s.name for s in seqs], resolve_label_map(label_map),
        layout=layout, fps=fps, config=preprocess, source=where, meta=video_meta(poses, seqs, settings),
    )


def video_meta(poses: VideoPoses, seqs: Sequence[WalkSequence], settings: VideoSettings | None) -> dict[str, Any]:
    """Provenance of a video read (stored in ``GaitDataset.meta`` and ``poses.npz``)."""
    return {
        "format": "video",
        "pose_model": f"mediapipe {MEDIAPIPE_VERSION} BlazePose full (model_complexity=1)",
        "video_fps": poses.info.fps,
        "video_frames": poses.num_frames,
        "frames_with_person": int(poses.detected.sum()),
        "settings": asdict(settings or VideoSettings()),
        "start_s": [s.start_s for s in seqs],
        "end_s": [s.end_s for s in seqs],
    }


def poses_arrays(poses: VideoPoses, seqs: Sequence[WalkSequence], fps: float,
                 settings: VideoSettings | None = None) -> dict[str, np.ndarray]:
    """The arrays of a ``poses.npz`` (an ``.npz`` dataset that every ssal command reads).

    ``x`` ``(N, T, 16, 3)`` (``order`` NTVC, zero beyond ``lengths``), ``names``, ``y`` (-1),
    ``filled`` ``(N, T, 16)``, ``fps``, ``start_s``/``end_s``; and per video frame
    ``blazepose_world``/``blazepose_image`` ``(F, 33, 3)``, ``blazepose_visibility`` ``(F, 33)``,
    ``frame_times`` ``(F,)``, plus ``video_fps`` and ``layout``.
    """
    n = len(seqs)
    t = max((s.positions.shape[0] for s in seqs), default=0)
    x = np.zeros((n, t, EGAIT16.num_joints, 3), dtype=np.float32)
    filled = np.zeros((n, t, EGAIT16.num_joints), dtype=bool)
    for i, s in enumerate(seqs):
        x[i, : s.positions.shape[0]] = s.positions
        filled[i, : s.filled.shape[0]] = s.filled
    return {
        "x": x, "order": np.asarray("NTVC"), "layout": np.asarray(EGAIT16.name),
        "lengths": np.asarray([s.positions.shape[0] for s in seqs], dtype=np.int64),
        "names": np.asarray([s.name for s in seqs], dtype=str), "y": np.full(n, UNLABELLED, dtype=np.int64),
        "filled": filled, "fps": np.asarray(float(fps)),
        "start_s": np.asarray([s.start_s for s in seqs]), "end_s": np.asarray([s.end_s for s in seqs]),
        "blazepose_world": poses.world, "blazepose_image": poses.image,
        "blazepose_visibility": poses.visibility, "frame_times": poses.times,
        "video_fps": np.asarray(poses.info.fps),
        "min_visibility": np.asarray((settings or VideoSettings()).min_visibility),
    }


def write_poses(path: str | os.PathLike[str], poses: VideoPoses, seqs: Sequence[WalkSequence], fps: float,
                settings: VideoSettings | None = None) -> Path:
    """Write :func:`poses_arrays` to ``path`` (``.npz``) atomically."""
    from ..checkpoint import atomic_write_bytes

    p = Path(os.fsdecode(path))
    if p.suffix.lower() != ".npz":
        raise SsalInputError(display_path(p), "the pose file must end in .npz")
    if not p.parent.is_dir():
        raise SsalInputError(display_path(p), "the output folder does not exist")
    buf = io.BytesIO()
    # the stubs match the ** keys against allow_pickle: bool; the keys are array names
    np.savez_compressed(buf, **poses_arrays(poses, seqs, fps, settings))  # type: ignore[arg-type]
    atomic_write_bytes(p, buf.getvalue())
    return p

"""``ssal show VIDEO``: the E-Gait-16 skeleton drawn over the video's own frames.

A person checks a pose by looking: each frame gets the BlazePose image landmarks mapped onto
E-Gait-16 (the same averaging as the 3D mapping), bones coloured as in :mod:`ssal.visualisation.skeleton` (left
limbs blue, right limbs red, trunk grey), joints below ``min_visibility`` drawn as grey rings,
and a caption saying whether the frame went into a sequence (``seq 0``, ``seq 1``, ...), was
refused (``not used: left_foot, ... hidden``) or held no person. Written as an animated GIF
(Pillow), an MP4 (OpenCV, MPEG-4 Part 2 ``mp4v``) or one PNG frame. Needs the ``video`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.video import Segmentation, VideoPoses, VideoSettings, extract_poses, import_cv2, iter_frames, segment
from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, blazepose_to_egait16
from .skeleton import bone_colours

OVERLAY_SUFFIXES = (".gif", ".mp4", ".png")
HIDDEN_COLOUR = "#9a9a9a"


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def frame_captions(poses: VideoPoses, seg: Segmentation, settings: VideoSettings) -> list[str]:
    """One caption per video frame: ``seq k``, ``not used: ... hidden`` or ``no person``."""
    owner = np.full(poses.num_frames, -1)
    for k, (a, b) in enumerate(seg.stretches):
        owner[a:b] = k
    detected = poses.detected
    captions = []
    for i in range(poses.num_frames):
        t = f"{poses.times[i]:6.2f} s  "
        if owner[i] >= 0:
            captions.append(t + f"seq {owner[i]}")
        elif not detected[i]:
            captions.append(t + "no person")
        else:
            hidden = [EGAIT16.joints[j] for j in np.flatnonzero(seg.visibility[i] < settings.min_visibility)]
            why = f"{', '.join(hidden[:3])}{' ...' if len(hidden) > 3 else ''} hidden" if hidden else "stretch too short"
            captions.append(t + f"not used: {why}")
    return captions


def draw_overlay(rgb: np.ndarray, image_landmarks: np.ndarray, visibility: np.ndarray, caption: str,
                 min_visibility: float, scale: float = 1.0) -> np.ndarray:
    """Draw the E-Gait-16 skeleton of one frame's BlazePose image landmarks ``(33, 3)`` (pixels
    of the original frame) on ``rgb`` (already resized by ``scale``); returns an RGB image."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    width = max(2, int(round(min(h, w) / 120)))
    if np.isfinite(image_landmarks).all():
        pts, vis = blazepose_to_egait16(image_landmarks[None], visibility[None], upright=False)
        pts, vis = pts[0, :, :2] * scale, vis[0]
        for (a, b), colour in zip(EGAIT16.edges, bone_colours(EGAIT16)):
            seen = vis[a] >= min_visibility and vis[b] >= min_visibility
            draw.line([tuple(pts[a]), tuple(pts[b])], fill=_hex(colour if seen else HIDDEN_COLOUR), width=width)
        r = width + 1
        for j, (x, y) in enumerate(pts):
            box = (x - r, y - r, x + r, y + r)
            if vis[j] >= min_visibility:
                draw.ellipse(box, fill=(255, 255, 255))
            else:
                draw.ellipse(box, outline=_hex(HIDDEN_COLOUR), width=max(1, width // 2))
    tw = int(draw.textlength(caption)) + 8
    draw.rectangle((0, 0, tw, 14), fill=(0, 0, 0))
    draw.text((4, 1), caption, fill=(255, 255, 255))
    return np.asarray(img)


def render_video_overlay(
    video: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    settings: VideoSettings | None = None,
    frame: int | None = None,
    max_width: int = 480,
    fps: float | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Write ``video`` with its skeleton drawn over every frame to ``out_path`` (.gif, .mp4, or
    .png for the single frame ``frame``); returns a summary (frames, sequences, frames used).

    Raises:
        SsalInputError: unknown output type, missing output folder, not a video, no person.
    """
    out = Path(os.fsdecode(out_path))
    suffix = out.suffix.lower()
    if suffix not in OVERLAY_SUFFIXES:
        raise SsalInputError(display_path(out), "output must end in .gif, .mp4 or .png")
    if not out.parent.is_dir():
        raise SsalInputError(display_path(out), "the output folder does not exist")
    s = settings or VideoSettings()
    poses = extract_poses(video, progress=progress)
    if not poses.detected.any():
        raise SsalInputError(poses.source, f"no person found in any of its {poses.num_frames} frames")
    seg = segment(poses, s)
    captions = frame_captions(poses, seg, s)
    n = poses.num_frames
    if suffix == ".png":
        if frame is None or not -n <= frame < n:
            raise SsalInputError("--frame", f"frame {frame} out of range 0..{n - 1}")
        frame %= n
    scale = min(1.0, max_width / max(poses.info.width, 1)) if poses.info.width else 1.0
    rate = fps or poses.info.fps

    def frames():
        from PIL import Image

        for i, (_, _, rgb) in enumerate(iter_frames(video)):
            if i >= n:
                break
            if suffix == ".png" and i != frame:
                continue
            if scale < 1.0:
                size = (max(int(round(rgb.shape[1] * scale)), 1), max(int(round(rgb.shape[0] * scale)), 1))
                rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
            yield draw_overlay(rgb, poses.image[i], poses.visibility[i], captions[i], s.min_visibility, scale)

    # Written under a temporary name beside the target, then renamed (atomic).
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{suffix}")
    try:
        _write(frames(), tmp, suffix, rate)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    used = int(sum(b - a for a, b in seg.stretches))
    return {"frames": n, "sequences": len(seg.stretches), "frames_used": used,
            "frames_with_person": int(poses.detected.sum())}


def _write(frames: Any, out: Path, suffix: str, rate: float) -> None:
    if suffix == ".png":
        from PIL import Image

        Image.fromarray(next(iter(frames))).save(out, format="PNG")
    elif suffix == ".gif":
        from PIL import Image

        duration = max(int(round(1000.0 / max(rate, 1e-3))), 20)
        images = (Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for f in frames)
        first = next(images)
        first.save(out, format="GIF", save_all=True, append_images=images, duration=duration, loop=0, optimize=False)
    else:
        cv2 = import_cv2(display_path(out))
        writer = None
        try:
            for f in frames:
                if writer is None:
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), float(rate),
                                             (f.shape[1], f.shape[0]))
                    if not writer.isOpened():
                        raise SsalInputError(display_path(out), "OpenCV cannot write an MP4 here")
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()

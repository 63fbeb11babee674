"""Cost per frame of video input: decoding alone, and decoding + BlazePose (``extract_poses``).

The video is written here from a real photograph (Grace Hopper's portrait, shipped by
matplotlib) moved across a grey frame of the given size, as MPEG-4 (``mp4v``) at 25 fps; every
frame has a person, so BlazePose runs its tracking path (landmark model every frame, detector
when tracking is lost). Needs the ``video`` extra.

    python benchmarks/bench_video.py [--sizes 640x360 1280x720 1920x1080] [--frames 150] [--reps 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import header, median


def write_video(path: Path, width: int, height: int, frames: int) -> None:
    import cv2
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    ph = int(height * 0.8)
    pw = int(ph * photo.width / photo.height)
    img = np.asarray(photo.resize((pw, ph)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    for k in range(frames):
        canvas = np.full((height, width, 3), 128, np.uint8)
        x0 = k * (width - pw) // max(frames - 1, 1)
        canvas[height - ph:, x0:x0 + pw] = img
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["640x360", "1280x720", "1920x1080"])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    from ssal.data.video import extract_poses, iter_frames

    header("bench_video: decoding and BlazePose per frame")
    print(f"{'size':<11}{'frames':>7}{'decode ms':>11}{'pose ms':>9}{'total fps':>11}{'CPU ms':>8}{'found':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            path = Path(tmp) / f"v{size}.mp4"
            write_video(path, w, h, args.frames)
            decode, total, cpu = [], [], []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                n = sum(1 for _ in iter_frames(path))
                decode.append((time.perf_counter() - t0) / n)
                c0, t0 = time.process_time(), time.perf_counter()
                poses = extract_poses(path, progress=False)
                total.append((time.perf_counter() - t0) / poses.num_frames)
                cpu.append((time.process_time() - c0) / poses.num_frames)
            d, t = median(decode), median(total)
            print(f"{size:<11}{poses.num_frames:>7}{1000 * d:>11.1f}{1000 * (t - d):>9.1f}{1 / t:>11.1f}"
                  f"{1000 * median(cpu):>8.1f}{int(poses.detected.sum()):>7}")
    print("decode ms: OpenCV decoding + BGR->RGB alone; pose ms: the rest of extract_poses (BlazePose, "
          "landmark copies); total fps: frames per second of extract_poses, the cost of `ssal pose` "
          "(the masking, resampling and writing after it take milliseconds per video)")


if __name__ == "__main__":
    main()

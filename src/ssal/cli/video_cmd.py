"""``ssal pose VIDEO --out poses.npz``: BlazePose landmarks of a video as gait sequences.

The output is an ``.npz`` dataset (``x`` ``(N, T, 16, 3)``, one sequence per continuous
stretch of the walker, at the working frame rate) that ``ssal predict``, ``ssal embed``,
``ssal show`` and ``ssal data info`` read; see :mod:`ssal.data.video`. ``ssal predict VIDEO``
runs the same extraction with the default settings.
"""

from __future__ import annotations

import argparse

from ..errors import display_path

#: Frame rate of the sequences ``ssal pose`` writes (``load_dataset``'s default ``fps``).
WORKING_FPS = 30.0


def add_video_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The masking settings of :class:`ssal.data.video.VideoSettings` as options."""
    p.add_argument("--min-visibility", type=float, default=0.5,
                   help="joints below this BlazePose visibility are masked (default 0.5; 0 keeps all)")
    p.add_argument("--max-gap", type=float, default=0.25,
                   help="longest masked gap per joint filled by interpolation, seconds (default 0.25)")
    p.add_argument("--min-duration", type=float, default=1.0,
                   help="shortest continuous stretch kept as a sequence, seconds (default 1.0)")


def settings_from_args(args: argparse.Namespace):
    """:class:`~ssal.data.video.VideoSettings` from :func:`add_video_flags` options."""
    from ..data.video import VideoSettings

    return VideoSettings(min_visibility=args.min_visibility, max_gap=args.max_gap, min_duration=args.min_duration)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``pose`` to the ``ssal`` parser."""
    p = subparsers.add_parser("pose", help="3D pose (BlazePose) of a video of someone walking, as poses.npz",
                              description="Run MediaPipe's BlazePose on every frame of a video, map its 33 "
                                          "landmarks onto E-Gait-16, mask hidden joints, fill short gaps, "
                                          "resample to the working frame rate and write one sequence per "
                                          "continuous stretch. Needs the 'video' extra (README).")
    p.add_argument("video", help="video file (.mp4, .avi, .mov, .mkv, .webm, ...)")
    p.add_argument("--out", required=True, help="output .npz (read by predict, embed, show, data info)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_video_flags(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=run_pose)


def run_pose(args: argparse.Namespace) -> int:
    """Handler of ``ssal pose``."""

    from ..data.video import extract_poses, walk_sequences, write_poses
    from ..outputs import check_output_file, output_lock

    settings = settings_from_args(args)

    def check():
        return check_output_file(args.out, suffixes=(".npz",), what="pose file", overwrite=args.overwrite,
                                 inputs=[args.video])

    out = check()
    # The working frame rate (30 fps): the one every reader assumes for an .npz.
    fps = WORKING_FPS
    with output_lock(out):
        check()  # again, holding the lock
        poses = extract_poses(args.video, progress=False if args.no_progress else None)
        seqs = walk_sequences(poses, settings, fps)
        write_poses(out, poses, seqs, fps, settings)
    filled = sum(int(s.filled.any(axis=1).sum()) for s in seqs)
    missing = poses.num_frames - int(poses.detected.sum())
    print(f"{display_path(out)}: {len(seqs)} sequence(s) at {fps:g} fps from {poses.num_frames} frames "
          f"({poses.info.fps:g} fps); {missing} frame(s) without a person, {filled} frame(s) with filled joints")
    for s in seqs:
        print(f"  {s.name}: {s.positions.shape[0]} frames")
    return 0

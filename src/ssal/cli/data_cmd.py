"""Data commands: ``ssal data synth``, ``ssal data info`` and ``ssal show``.

* ``ssal data synth --n N --seed S --out FILE`` writes the built-in synthetic corpus
  (``.npz`` or a ``.ssal`` directory);
* ``ssal data info FILE`` prints shape, layout, frame rate, class counts and length statistics
  of any dataset source (``builtin`` included);
* ``ssal data convert SRC --out X.ssal`` writes any source, read with the data settings, as a
  canonical corpus that keeps labels, class names and recording groups;
* ``ssal show FILE --index I --out gait.gif`` renders one sequence as an animated GIF (or a
  single frame when ``--out`` ends in ``.png``);
* ``ssal show VIDEO --out overlay.gif`` (or ``.mp4``, ``.png`` with ``--frame``) draws the
  skeleton BlazePose found over the video's frames (:mod:`ssal.visualisation.video`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import DataConfig
from ..data.configured import recording_files
from ..data.dataset import UNLABELLED, GaitDataset
from ..errors import SsalInputError, display_path, escape_text
from .options import add_data_arguments, add_settings_arguments, data_config
from .video_cmd import add_video_flags, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` (``synth``, ``info``) and ``show`` to the ``ssal`` parser."""
    data = subparsers.add_parser("data", help="create and inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(handler=lambda args: _help(data))

    synth = data_sub.add_parser("synth", help="write the built-in synthetic emotional-gait corpus")
    synth.add_argument("--n", type=int, default=DataConfig.builtin_n,
                       help=f"number of sequences (default {DataConfig.builtin_n}: data.builtin_n)")
    synth.add_argument("--seed", type=int, default=DataConfig.builtin_seed,
                       help=f"generator seed (default {DataConfig.builtin_seed}: data.builtin_seed)")
    synth.add_argument("--out", required=True, help="output file: .npz or a .ssal directory")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing .npz file or .ssal directory")
    synth.set_defaults(handler=cmd_synth)

    info = data_sub.add_parser("info", help="summarise a dataset (file, folder or 'builtin')")
    info.add_argument("file", help="dataset source: .h5, .npz, .ssal, .bvh folder, ... or 'builtin'")
    add_data_arguments(info, source=False)
    add_settings_arguments(info)
    info.set_defaults(handler=cmd_info)

    convert = data_sub.add_parser("convert", help="write a dataset, read with the data settings, as a .ssal corpus",
                                  description="Read SRC as every command reads it (labels from names, clips, "
                                              "units, joint map, grouping) and write it as a canonical .ssal "
                                              "corpus that keeps labels, class names and recording groups.")
    convert.add_argument("src", help="dataset source: BVH folder, .h5, .npz, .ssal, ... or 'builtin'")
    convert.add_argument("--out", required=True, help="output .ssal directory")
    convert.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                         help="stored precision of the positions (float16 halves the size)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing .ssal directory")
    add_data_arguments(convert, source=False)
    add_settings_arguments(convert)
    convert.set_defaults(handler=cmd_convert)

    show = subparsers.add_parser("show", help="render one sequence of a dataset as a GIF (or PNG), or a "
                                              "video with its skeleton drawn over the frames (GIF, MP4, PNG)")
    show.add_argument("file", help="dataset source (or 'builtin'), or a video (.mp4, ...; needs the 'video' extra)")
    show.add_argument("--index", type=int, default=0, help="sequence index (default 0)")
    show.add_argument("--out", default="gait.gif", help="output .gif (animation) or .png (one frame); "
                                                        "for a video also .mp4")
    show.add_argument("--frame", type=int, default=0, help="frame drawn when --out is a .png")
    show.add_argument("--fps", type=float, default=None, help="playback rate (default: the dataset's)")
    show.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_data_arguments(show, source=False)
    add_settings_arguments(show)
    video = show.add_argument_group("video input")
    add_video_flags(video)
    video.add_argument("--max-width", type=int, default=480, help="frames wider than this are scaled down (default 480)")
    show.set_defaults(handler=cmd_show)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def data_inputs(data: Any, *more: str | os.PathLike[str] | None) -> list[str | os.PathLike[str] | None]:
    """What a command reads for a data section (a :class:`DataConfig` or a mapping): the source,
    the labels file and the joint map, plus ``more`` (a ``--config`` file, a checkpoint, a split
    file): the ``inputs`` of :func:`ssal.outputs.check_output_file` / ``check_output_dir``."""
    def get(key: str) -> Any:
        if data is None:
            return None
        return data.get(key) if isinstance(data, Mapping) else getattr(data, key, None)

    found = [get("source"), get("labels"), get("joint_map"), *more]
    return [v for v in found if isinstance(v, (str, os.PathLike))]


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the synthetic corpus and save it."""
    from ..data.io import save_dataset
    from ..data.synthetic import generate
    from ..outputs import output_lock

    if args.n < 1:
        raise SsalInputError("--n", f"must be at least 1, got {args.n}")
    if not 0 <= args.seed < 2**63:
        raise SsalInputError("--seed", f"must be from 0 to 2**63 - 1, got {args.seed}")
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".ssal"):
        raise SsalInputError(display_path(out), "output must end in .npz or .ssal")
    check_dataset_output(out, overwrite=args.overwrite)
    with output_lock(out):
        check_dataset_output(out, overwrite=args.overwrite)  # again, holding the lock
        ds = generate(args.n, args.seed)
        save_dataset(ds, out, **({"overwrite": True} if out.suffix.lower() == ".ssal" else {}))
    counts = ", ".join(f"{k} {v}" for k, v in ds.class_counts().items())
    print(f"wrote {len(ds)} sequences {tuple(ds.x.shape)} to {display_path(out)} ({escape_text(counts)})")
    return 0


def check_dataset_output(out: Path, *, overwrite: bool, inputs: Any = ()) -> None:
    """The checks of a dataset output (``.npz`` file or ``.ssal`` directory, which is replaced
    whole, so its lock lies beside it) before writing."""
    from ..outputs import check_output_dir, check_output_file, check_unlocked

    if out.suffix.lower() == ".npz":
        check_output_file(out, what="output file", overwrite=overwrite, inputs=inputs)
        return
    if not out.absolute().parent.is_dir():
        raise SsalInputError(display_path(out), "the output folder does not exist")
    check_output_dir(out, overwrite=overwrite, what=".ssal output directory", inputs=inputs)
    check_unlocked(out)


def _load(source: str, args: argparse.Namespace, center: str | None = None) -> GaitDataset:
    """``source`` read with the command line's data settings (``center`` replaces data.center)."""
    from ..data.configured import load_configured_dataset
    from ..data.preprocess import PreprocessConfig

    data = data_config(args, source=source)
    return load_configured_dataset(data, preprocess=PreprocessConfig(center=center) if center else None)


def describe(ds: GaitDataset, source: str) -> str:
    """A multi-line summary of a dataset (what ``ssal data info`` prints)."""
    n, c, t, v = ds.x.shape
    lines = [
        f"source:    {source}",
        f"sequences: {n}",
        f"shape:     (N={n}, C={c}, T={t}, V={v})",
        f"layout:    {ds.layout.name} ({ds.layout.num_joints} joints: {', '.join(ds.layout.joints)})",
        f"fps:       {ds.fps:g}",
        "classes:",
    ]
    for name, count in ds.class_counts().items():
        share = count / n if n else 0.0
        lines.append(f"  {escape_text(name, 80):<12} {count:6d}  ({share:.1%})")
    unlabelled = int(np.sum(ds.y == UNLABELLED))
    lines.append(f"  {'unlabelled':<12} {unlabelled:6d}")
    if n:
        lens = np.asarray(ds.lengths)
        lines.append(
            f"lengths:   min {lens.min()}  median {np.median(lens):g}  mean {lens.mean():.1f}  max {lens.max()} frames"
            f"  ({lens.min() / ds.fps:.2f}-{lens.max() / ds.fps:.2f} s)"
        )
    window = ds.meta.get("window") or {}
    if window:
        rec: dict[str, int] = {}
        for f, lab in zip(recording_files(ds), ds.y):
            rec.setdefault(f, int(lab))
        per_class = np.bincount([v for v in rec.values() if v >= 0], minlength=ds.num_classes)
        counts = ", ".join(f"{c} {int(k)}" for c, k in zip(ds.classes, per_class))
        lines.append(f"recordings: {len(rec)} ({counts}); clips of {window.get('length', '?')} frames "
                     f"every {window.get('stride', '?')}")
    by = ds.meta.get("group_by", "recording")
    if by != "recording" and ds.groups is not None:
        sizes: dict[str, int] = {}
        for g in ds.groups:
            sizes[g] = sizes.get(g, 0) + 1
        shown = ", ".join(f"{escape_text(g, 40)} {k}" for g, k in list(sizes.items())[:12])
        lines.append(f"groups:    {len(sizes)} by {escape_text(by, 40)} (sequences: {shown}"
                     f"{', ...' if len(sizes) > 12 else ''}); splits keep each group on one side")
    for key in ("generator", "seed", "format", "units", "labels_from_name", "label_field"):
        if ds.meta.get(key):
            lines.append(f"{key + ':':<10} {escape_text(ds.meta[key], 200)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """Print a summary of a dataset."""
    ds = _load(args.file, args)
    print(describe(ds, display_path(args.file)))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Write a dataset, read with the data settings, as a canonical ``.ssal`` corpus."""
    from ..data.canonical import write_canonical
    from ..outputs import output_lock

    out = Path(args.out)
    if out.suffix.lower() != ".ssal":
        raise SsalInputError(display_path(out), "output must be a .ssal directory")
    inputs = data_inputs(data_config(args, source=args.src), args.config)
    check_dataset_output(out, overwrite=args.overwrite, inputs=inputs)
    with output_lock(out):
        check_dataset_output(out, overwrite=args.overwrite, inputs=inputs)  # again, holding the lock
        ds = _load(args.src, args)
        write_canonical(ds, out, dtype=args.dtype, overwrite=True)
    groups = len(set(ds.groups)) if ds.groups is not None else len(ds)
    counts = ", ".join(f"{k} {v}" for k, v in ds.class_counts().items())
    print(f"wrote {len(ds)} sequences {tuple(ds.x.shape)} in {groups} groups ({ds.meta.get('group_by', 'recording')}) "
          f"to {display_path(out)} ({escape_text(counts)})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Render sequence ``--index`` of a dataset as a GIF (or one frame as a PNG)."""
    from ..data.video import is_video_path
    from ..outputs import output_lock

    if is_video_path(args.file):
        return _show_video(args)
    inputs = data_inputs(data_config(args, source=args.file), args.config)
    out = _check_show_out(args, (".gif", ".png"), inputs)
    with output_lock(out):
        _check_show_out(args, (".gif", ".png"), inputs)  # again, holding the lock
        return _show_sequence(args, out)


def _check_show_out(args: argparse.Namespace, suffixes: tuple[str, ...], inputs: Any) -> Path:
    from ..outputs import check_output_file

    return check_output_file(args.out, suffixes=suffixes, overwrite=args.overwrite, inputs=inputs)


def _show_sequence(args: argparse.Namespace, out: Path) -> int:
    from ..data.preprocess import check_fps
    from ..visualisation.skeleton import plot_skeleton_frame, render_gif

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    # Drawn with the walking path kept (the training default removes it), so the walker moves.
    ds = _load(args.file, args, center="first_frame")
    if not -len(ds) <= args.index < len(ds):
        raise SsalInputError(display_path(args.file), f"index {args.index} out of range: the dataset has {len(ds)} sequences")
    i = args.index % len(ds)
    label = int(ds.y[i])
    label_name = ds.classes[label] if label != UNLABELLED else "unlabelled"
    title = escape_text(f"{ds.names[i]}: {label_name}", 120)
    # Show the recorded frames only (looped padding would make the walker jump back).
    frames = int(min(max(int(ds.lengths[i]), 1), ds.num_frames))
    seq = np.asarray(ds.x[i, :, :frames], dtype=np.float32)
    if out.suffix.lower() == ".png":
        if not -frames <= args.frame < frames:
            raise SsalInputError("--frame", f"frame {args.frame} out of range 0..{frames - 1}")
        plot_skeleton_frame(seq, ds.layout, out, frame=args.frame, title=title)
    else:
        render_gif(seq, ds.layout, out, title=title, fps=args.fps or ds.fps)
    print(f"wrote {display_path(out)} (sequence {i}, {escape_text(label_name, 80)}, {frames} frames)")
    return 0


def _show_video(args: argparse.Namespace) -> int:
    """``ssal show VIDEO``: the skeleton over the video's frames."""
    from ..outputs import output_lock
    from ..visualisation.video import render_video_overlay

    suffixes = (".gif", ".mp4", ".png")
    out = _check_show_out(args, suffixes, [args.file])
    if args.max_width < 16:
        raise SsalInputError("--max-width", f"must be at least 16, got {args.max_width}")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise SsalInputError("--fps", f"must lie in (0, 1000], got {args.fps:g}")
    with output_lock(out):
        _check_show_out(args, suffixes, [args.file])  # again, holding the lock
        summary = render_video_overlay(args.file, args.out, settings=settings_from_args(args), frame=args.frame,
                                       max_width=args.max_width, fps=args.fps)
    print(f"wrote {display_path(args.out)} ({summary['frames']} frames, a person in "
          f"{summary['frames_with_person']}, {summary['frames_used']} in {summary['sequences']} sequence(s))")
    return 0

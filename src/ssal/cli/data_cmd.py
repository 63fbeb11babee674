"""Data commands: ``ssal data synth``, ``ssal data info`` and ``ssal show``.

* ``ssal data synth --n N --seed S --out FILE`` writes the built-in synthetic corpus
  (``.npz`` or a ``.ssal`` directory);
* ``ssal data info FILE`` prints shape, layout, frame rate, class counts and length statistics
  of any dataset source (``builtin`` included);
* ``ssal show FILE --index I --out gait.gif`` renders one sequence as an animated GIF (or a
  single frame when ``--out`` ends in ``.png``);
* ``ssal show VIDEO --out overlay.gif`` (or ``.mp4``, ``.png`` with ``--frame``) draws the
  skeleton BlazePose found over the video's frames (:mod:`ssal.viz_video`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data.dataset import UNLABELLED, GaitDataset
from ..errors import SsalInputError, display_path, escape_text
from .pretrain_cmd import LABEL_MAP_HELP
from .video_cmd import add_video_flags, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` (``synth``, ``info``) and ``show`` to the ``ssal`` parser."""
    data = subparsers.add_parser("data", help="create and inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(handler=lambda args: _help(data))

    synth = data_sub.add_parser("synth", help="write the built-in synthetic emotional-gait corpus")
    synth.add_argument("--n", type=int, default=2000, help="number of sequences (default 2000)")
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    synth.add_argument("--out", required=True, help="output file: .npz or a .ssal directory")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing .ssal directory")
    synth.set_defaults(handler=cmd_synth)

    info = data_sub.add_parser("info", help="summarise a dataset (file, folder or 'builtin')")
    info.add_argument("file", help="dataset source: .h5, .npz, .ssal, .bvh folder, ... or 'builtin'")
    info.add_argument("--label-map", help=LABEL_MAP_HELP)
    add_bvh_arguments(info)
    info.set_defaults(handler=cmd_info)

    show = subparsers.add_parser("show", help="render one sequence of a dataset as a GIF (or PNG), or a "
                                              "video with its skeleton drawn over the frames (GIF, MP4, PNG)")
    show.add_argument("file", help="dataset source (or 'builtin'), or a video (.mp4, ...; needs the 'video' extra)")
    show.add_argument("--index", type=int, default=0, help="sequence index (default 0)")
    show.add_argument("--out", default="gait.gif", help="output .gif (animation) or .png (one frame); "
                                                        "for a video also .mp4")
    show.add_argument("--frame", type=int, default=0, help="frame drawn when --out is a .png")
    show.add_argument("--fps", type=float, default=None, help="playback rate (default: the dataset's)")
    show.add_argument("--label-map", help=LABEL_MAP_HELP)
    add_bvh_arguments(show)
    video = show.add_argument_group("video input")
    add_video_flags(video)
    video.add_argument("--max-width", type=int, default=480, help="frames wider than this are scaled down (default 480)")
    show.set_defaults(handler=cmd_show)


def add_bvh_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of BVH sources: rig mapping, units, labels from file names, clips."""
    g = parser.add_argument_group("BVH sources")
    g.add_argument("--joint-map", metavar="YAML", help="joint map 'target joint: source joint name' for rigs the "
                   "rule-based matching cannot place (E-Gait joints: root, spine, neck, head, left_shoulder, ...)")
    g.add_argument("--units", default="auto", help="length units of the BVH files: auto (default: from the "
                   "skeleton's height), m, cm, mm, in, cmu or metres per unit")
    g.add_argument("--labels-from-name", metavar="PATTERN", help="read labels from file names, e.g. "
                   "'dataset-1_{content}_{style}_{id}' (or a regex with (?P<field>...) groups)")
    g.add_argument("--label-field", help="the pattern field holding the label (default: the first of label, "
                   "emotion, style, class)")
    g.add_argument("--where", action="append", metavar="FIELD=V1,V2", help="keep files whose field has one of "
                   "the values (FIELD!=... drops them); repeatable")
    g.add_argument("--rename", metavar="RAW=CLASS,...", help="map raw label values onto class names, e.g. "
                   "normal=neutral")
    g.add_argument("--window", type=int, help="cut each recording into clips of this many frames (at 30 fps); "
                   "default: one sequence per file")
    g.add_argument("--stride", type=int, help="frames between clip starts (default: half the window)")


def bvh_options(args: argparse.Namespace) -> dict:
    """``load_dataset`` keyword arguments from :func:`add_bvh_arguments` options."""
    from ..data.names import NameLabels, parse_rename, parse_where

    name_labels = None
    if getattr(args, "labels_from_name", None):
        classes = None
        if getattr(args, "label_map", None):
            from ..data.egait import resolve_label_map

            classes = resolve_label_map(args.label_map)
        name_labels = NameLabels(args.labels_from_name, label_field=args.label_field, where=parse_where(args.where),
                                 rename=parse_rename(args.rename), classes=classes)
    elif getattr(args, "where", None) or getattr(args, "rename", None) or getattr(args, "label_field", None):
        raise SsalInputError("--where", "--where, --rename and --label-field need --labels-from-name")
    return {"units": getattr(args, "units", None) or "auto", "joint_map": getattr(args, "joint_map", None),
            "name_labels": name_labels, "window": getattr(args, "window", None),
            "stride": getattr(args, "stride", None)}


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the synthetic corpus and save it."""
    from ..data.io import save_dataset
    from ..data.synthetic import generate

    from ..outputs import check_output_dir, check_output_file

    if args.n < 1:
        raise SsalInputError("--n", f"must be at least 1, got {args.n}")
    if not 0 <= args.seed < 2**63:
        raise SsalInputError("--seed", f"must be from 0 to 2**63 - 1, got {args.seed}")
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".ssal"):
        raise SsalInputError(display_path(out), "output must end in .npz or .ssal")
    if out.suffix.lower() == ".npz":
        check_output_file(out, what="output file")
    else:
        if not out.absolute().parent.is_dir():
            raise SsalInputError(display_path(out), "the output folder does not exist")
        check_output_dir(out, overwrite=args.overwrite, what=".ssal output directory")

    ds = generate(args.n, args.seed)
    save_dataset(ds, out, **({"overwrite": True} if out.suffix.lower() == ".ssal" else {}))
    counts = ", ".join(f"{k} {v}" for k, v in ds.class_counts().items())
    print(f"wrote {len(ds)} sequences {tuple(ds.x.shape)} to {display_path(out)} ({escape_text(counts)})")
    return 0


def _load(source: str, label_map: str | None = None, center: str | None = None,
          bvh: dict | None = None) -> GaitDataset:
    from ..data.io import load_dataset
    from ..data.preprocess import PreprocessConfig

    preprocess = PreprocessConfig(center=center) if center else None
    return load_dataset(source, label_map=label_map or "egait", preprocess=preprocess, **(bvh or {}))


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
    if ds.groups is not None:
        rec = {}
        for g, lab in zip(ds.groups, ds.y):
            rec.setdefault(g, int(lab))
        per_class = np.bincount([v for v in rec.values() if v >= 0], minlength=ds.num_classes)
        counts = ", ".join(f"{c} {int(k)}" for c, k in zip(ds.classes, per_class))
        window = ds.meta.get("window") or {}
        lines.append(f"recordings: {len(rec)} ({counts}); clips of {window.get('length', '?')} frames "
                     f"every {window.get('stride', '?')}")
    for key in ("generator", "seed", "format", "units", "labels_from_name", "label_field"):
        if ds.meta.get(key):
            lines.append(f"{key + ':':<10} {escape_text(ds.meta[key], 200)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """Print a summary of a dataset."""
    ds = _load(args.file, None if getattr(args, "labels_from_name", None) else args.label_map, bvh=bvh_options(args))
    print(describe(ds, display_path(args.file)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Render sequence ``--index`` of a dataset as a GIF (or one frame as a PNG)."""
    from ..data.video import is_video_path
    from ..viz import plot_skeleton_frame, render_gif

    from ..data.preprocess import check_fps
    from ..outputs import check_output_file

    if is_video_path(args.file):
        return _show_video(args)
    out = check_output_file(args.out, suffixes=(".gif", ".png"))
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    # Drawn with the walking path kept (the training default removes it), so the walker moves.
    ds = _load(args.file, None if getattr(args, "labels_from_name", None) else args.label_map, center="first_frame",
               bvh=bvh_options(args))
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
    from ..outputs import check_output_file
    from ..viz_video import render_video_overlay

    check_output_file(args.out, suffixes=(".gif", ".mp4", ".png"))
    if args.max_width < 16:
        raise SsalInputError("--max-width", f"must be at least 16, got {args.max_width}")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise SsalInputError("--fps", f"must lie in (0, 1000], got {args.fps:g}")
    summary = render_video_overlay(args.file, args.out, settings=settings_from_args(args), frame=args.frame,
                                   max_width=args.max_width, fps=args.fps)
    print(f"wrote {display_path(args.out)} ({summary['frames']} frames, a person in "
          f"{summary['frames_with_person']}, {summary['frames_used']} in {summary['sequences']} sequence(s))")
    return 0

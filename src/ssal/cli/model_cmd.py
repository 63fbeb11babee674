"""Using a trained model: ``predict`` (emotion probabilities) and ``embed`` (features)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import replace

import numpy as np

from ..config.schema import ALLOCATOR_POLICIES, PREDICT_ALLOCATOR
from ..errors import SsalInputError, display_path
from .options import add_data_arguments, add_device_argument, add_settings_arguments, data_config
from .video_cmd import add_video_flags, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Using a trained model: predict and embed."""
    p = subparsers.add_parser("predict", help="per-sequence emotion probabilities from a classifier.pt")
    p.add_argument("--checkpoint", required=True,
                   help="classifier.pt (from linear / finetune / demo), or its ONNX export (ssal export)")
    p.add_argument("input", help="BVH file or folder, .npz (poses.npz from `ssal pose`), E-Gait .h5, .ssal, "
                                 "a (T, 17, 3) Human3.6M .npy, or a video (.mp4, ...; needs the 'video' extra)")
    p.add_argument("--out", help="write CSV (.csv) or JSON (.json) instead of printing CSV")
    _add_model_input_options(p)
    p.set_defaults(handler=run_predict)

    p = subparsers.add_parser("embed", help="encoder features of every sequence, as .npy")
    p.add_argument("--checkpoint", required=True, help="encoder.pt or classifier.pt")
    p.add_argument("input", help="dataset path or video (as for predict) or 'builtin'")
    p.add_argument("--out", required=True, help="output .npy (N, D)")
    _add_model_input_options(p)
    p.set_defaults(handler=run_embed)


def _add_model_input_options(p: argparse.ArgumentParser) -> None:
    """The options predict and embed share: --overwrite, --device, how the input is read."""
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--allocator", choices=ALLOCATOR_POLICIES, default=PREDICT_ALLOCATOR,
                   help=f"host allocator policy of this process (default {PREDICT_ALLOCATOR}; see run.allocator)")
    add_device_argument(p)
    add_data_arguments(p, source=False, labels=False)
    add_settings_arguments(p)
    add_video_flags(p.add_argument_group("video input (as for `ssal pose`)"))


# ---------------------------------------------------------------------------------------------


def _load_input(model, path: str, args: argparse.Namespace | None = None):
    """Read ``path`` with the model's layout and preprocessing (the same reader as
    :meth:`ssal.inference.EmotionModel.read`; a video with the command's masking settings);
    returns ``(names, dataset)``."""
    from ..data.video import is_video_path, read_video

    if args is not None and is_video_path(path):
        ds = read_video(path, layout=model.layout, preprocess=model.preprocess, settings=settings_from_args(args))
    elif args is not None:
        from ..data.configured import load_configured_dataset

        # The reading settings (--config, --set data.*, the data flags), without labels; the
        # model's layout and preprocessing.
        data = data_config(args, source=path)
        ds = load_configured_dataset(replace(data, labels=None), preprocess=model.preprocess, layout=model.layout)
    else:
        ds = model.read(path)
    return ds.names, ds


def _check_out(args: argparse.Namespace, suffixes: tuple[str, ...], what: str) -> None:
    """``--out`` checked against everything the command reads (input, checkpoint, settings)."""
    from ..outputs import check_output_file
    from .data_cmd import data_inputs

    data = None
    if args.input != "builtin":
        try:
            data = data_config(args, source=args.input)
        except SsalInputError:
            data = None  # reported by the reader, after the output checks as before
    check_output_file(args.out, suffixes=suffixes, what=what, overwrite=args.overwrite,
                      inputs=[args.input, args.checkpoint, *data_inputs(data, args.config)])


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``ssal predict``."""
    from ..outputs import output_lock

    if not args.out:
        return _predict(args)
    _check_out(args, (".csv", ".json"), "predictions file")
    with output_lock(args.out):
        _check_out(args, (".csv", ".json"), "predictions file")  # again, holding the lock
        return _predict(args)


def _predict(args: argparse.Namespace) -> int:
    from ..checkpoint import atomic_write_text
    from ..inference import load
    from ..training.allocator import set_allocator_policy

    set_allocator_policy(args.allocator)
    model = load(args.checkpoint, device=args.device)
    if not model.has_classifier:
        raise SsalInputError(display_path(args.checkpoint), "this is a pretrained encoder without a classifier; "
                                              "use classifier.pt from `ssal linear`, `ssal finetune` or `ssal demo`")
    names, ds = _load_input(model, args.input, args)
    probs = model.predict(ds)
    rows = [{"name": n, "emotion": model.classes[int(np.argmax(p))],
             **{c: round(float(v), 6) for c, v in zip(model.classes, p)}} for n, p in zip(names, probs)]
    if args.out and args.out.lower().endswith(".json"):
        atomic_write_text(args.out, json.dumps(rows, indent=2))
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["name", "emotion", *model.classes])
        writer.writeheader()
        writer.writerows(rows)
        if args.out:
            atomic_write_text(args.out, buf.getvalue())
        else:
            sys.stdout.write(buf.getvalue())
    if args.out:
        print(f"{len(rows)} predictions written to {display_path(args.out)}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    """Handler of ``ssal embed``."""
    from ..outputs import output_lock

    _check_out(args, (".npy",), "features file")
    with output_lock(args.out):
        _check_out(args, (".npy",), "features file")  # again, holding the lock
        return _embed(args)


def _embed(args: argparse.Namespace) -> int:
    from ..checkpoint import atomic_write_bytes
    from ..inference import load
    from ..training.allocator import set_allocator_policy

    set_allocator_policy(args.allocator)
    model = load(args.checkpoint, device=args.device)
    if args.input == "builtin":
        from ..config import DEFAULTS
        from ..data.configured import load_configured_dataset

        # The corpus the checkpoint was pretrained on (encoder.pt keeps its data config);
        # classifier files carry none, so they embed the default corpus.
        data_cfg = {**DEFAULTS["data"], **((model.meta.get("config") or {}).get("data") or {}),
                    "source": "builtin", "center": model.preprocess.center}
        ds = load_configured_dataset(data_cfg)
    else:
        _, ds = _load_input(model, args.input, args)
    feats = model.embed(ds)
    buf = io.BytesIO()
    np.save(buf, feats.astype(np.float32))
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"features {feats.shape} written to {display_path(args.out)}")
    return 0

"""``ssal export``: a trained model as one ONNX or TorchScript file (see :mod:`ssal.inference.export`)."""

from __future__ import annotations

import argparse

from ..errors import display_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    p = subparsers.add_parser(
        "export", help="write encoder.pt / classifier.pt as an ONNX or TorchScript file",
        description="Export a checkpoint: encoder.pt gives embeddings, classifier.pt probabilities. "
                    "Batch size and clip length are dynamic; the input is (N, 3, T, V) after the "
                    "checkpoint's preprocessing. `ssal predict --checkpoint model.onnx` runs an ONNX "
                    "export through onnxruntime.")
    p.add_argument("--checkpoint", required=True, help="encoder.pt or classifier.pt")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), dest="fmt")
    p.add_argument("--out", required=True, help="output file (.onnx; TorchScript .pt / .pth / .ts), written "
                                                "atomically; an existing file needs --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--frames", type=int, help="T of the example input for tracing (default: the clip length, else "
                                              "75; at most ssal.data.preprocess.MAX_LENGTH)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's; the installed exporter's range, "
                                             "see ssal.inference.export.opset_range)")
    p.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``ssal export``."""
    from ..inference.export import SUFFIXES, check_export_args, export_model
    from ..outputs import check_output_file, output_lock

    # Everything that needs no work first: the arguments, then the output path (a bad --out is
    # one line before the checkpoint is read or anything traced).
    check_export_args(args.checkpoint, args.fmt, args.frames, args.opset)
    check = dict(suffixes=SUFFIXES[args.fmt], what="export file", overwrite=args.overwrite, inputs=[args.checkpoint])
    check_output_file(args.out, **check)
    with output_lock(args.out):  # a second export into the same file is refused, not interleaved
        check_output_file(args.out, **check)  # again, holding the lock: a writer that finished meanwhile
        meta = export_model(args.checkpoint, args.fmt, args.out, frames=args.frames, opset=args.opset)
    what = "probabilities over " + ", ".join(meta["classes"]) if meta["kind"] == "classifier" else \
        f"{meta['out_dim']}-d embeddings"
    print(f"{args.fmt} model ({what}; input (N, 3, T, {_num_joints(meta)})) written to {display_path(args.out)}")
    return 0


def _num_joints(meta: dict) -> int:
    from ..skeleton import get_layout

    return get_layout(meta["layout"]).num_joints

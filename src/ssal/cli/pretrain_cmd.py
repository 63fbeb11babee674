"""``ssal pretrain``: self-supervised pretraining of one method."""

from __future__ import annotations

import argparse
import os
import sys

from ..config import Config, deep_merge
from ..methods.registry import available_methods
from .options import add_data_arguments, add_settings_arguments, check_device_flag, override_layers


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that builds a run configuration."""
    add_settings_arguments(parser)
    parser.add_argument("--seed", type=int, help="run seed (same as --set seed=N)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1 ... (same as --set run.device=...)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def config_from_args(args: argparse.Namespace, method: str) -> dict:
    """The resolved configuration of ``method`` for the parsed command line: preset <- --config
    <- --set <- the flags (each a shorthand for one key)."""
    from ..config import resolve_config

    check_device_flag(args)
    overrides: dict = {}
    for values, _ in override_layers(args):  # --set and the data flags; resolve_config reads --config
        overrides = deep_merge(overrides, values, strict=False)
    flags: dict = {}
    if getattr(args, "epochs", None):
        flags.setdefault("train", {})["epochs"] = args.epochs
    if args.seed is not None:
        flags["seed"] = args.seed
    if args.device:
        flags.setdefault("run", {})["device"] = args.device
    if args.no_progress:
        flags.setdefault("run", {})["progress"] = False
    return resolve_config(method, args.config, deep_merge(overrides, flags, strict=False))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ssal pretrain``."""
    p = subparsers.add_parser("pretrain", help="self-supervised pretraining (ssal, aimclr, skeletonclr, pstl, mamp)",
                              description="Pretrain an encoder without labels; writes checkpoints, "
                                          "metrics.jsonl and encoder.pt into --out.")
    p.add_argument("--method", choices=available_methods(), default=Config.method,
                   help=f"the method preset (default {Config.method})")
    add_data_arguments(p, source_help="'builtin' (the default) or a dataset path (E-Gait .h5, BVH folder, .npz, "
                                      ".ssal); same as --set data.source=... (labels serve the kNN monitor only)")
    p.add_argument("--epochs", type=int, help="number of epochs (same as --set train.epochs=N)")
    p.add_argument("--out", required=True, help="run directory (never deleted)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out for a fresh run")
    add_config_arguments(p)
    p.set_defaults(handler=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    """Handler of ``ssal pretrain``."""
    from ..outputs import check_output_dir, output_lock
    from ..training.run_files import RUN_LEFTOVERS
    from .data_cmd import data_inputs

    check_output_dir(args.out, overwrite=args.overwrite, resume=args.resume, leftovers=RUN_LEFTOVERS,
                     what="run directory", resumable=True)
    config = config_from_args(args, args.method)
    inputs = data_inputs(config.get("data"), args.config)

    def check() -> None:
        check_output_dir(args.out, overwrite=args.overwrite, resume=args.resume, leftovers=RUN_LEFTOVERS,
                         what="run directory", resumable=True, inputs=inputs)

    check()
    # The run directory is locked for the whole run (rank 0 under torchrun): a second run
    # into it is refused instead of replacing this one's files.
    with output_lock(args.out, directory=True):
        check()  # again, holding the lock
        return _pretrain(args, config)


def _pretrain(args: argparse.Namespace, config: dict) -> int:
    from ..training.engine import TrainingDiverged, TrainingInterrupted, pretrain

    try:
        result = pretrain(config, args.out, resume=args.resume, overwrite=args.overwrite)
    except TrainingInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    last = result.history[-1] if result.history else {}
    knn = f", kNN val top-1 {last['knn_val_top1']:.3f}" if "knn_val_top1" in last else ""
    print(f"pretrained {args.method}: {result.epochs_done} epochs, {result.steps_done} steps{knn}; "
          f"encoder written to {result.run_dir / 'encoder.pt'}")
    return 0

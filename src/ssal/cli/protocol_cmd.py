"""Protocol commands on one pretrained checkpoint (``knn``, ``linear``, ``finetune``, ``semi``) and
the supervised-from-scratch reference (``supervised``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..config import clip_len as config_clip_len
from ..errors import SsalInputError, display_path
from ..methods.registry import available_methods
from .options import add_data_arguments, add_device_argument, add_settings_arguments, data_config, section_layers

#: Dataset options shared by commands that read a dataset.
DATA_HELP = "'builtin' or a dataset path (E-Gait .h5, BVH folder, .npz, .ssal); default: the checkpoint's data"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Protocols on one pretrained checkpoint, and the supervised reference."""
    for name, helptext in (
        ("knn", "kNN accuracy of a pretrained encoder (cosine, temperature-weighted vote)"),
        ("linear", "linear protocol: frozen encoder, train a linear classifier"),
        ("finetune", "finetune protocol: encoder + linear head trained end to end"),
        ("semi", "semi-supervised protocol: finetune on class-balanced label fractions"),
    ):
        p = subparsers.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--checkpoint", required=True, help="encoder.pt of a pretraining run")
        add_data_arguments(p, source_help=DATA_HELP)
        add_settings_arguments(p)
        p.add_argument("--split", help="split JSON (default: split.json beside the checkpoint, else a new one)")
        p.add_argument("--out", help="directory for results.json (and classifier.pt for linear/finetune); "
                                     "default: eval_<protocol> beside the checkpoint")
        p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
        p.add_argument("--epochs", type=int, help="training epochs (protocol default otherwise)")
        p.add_argument("--lr", type=float, help="learning rate (protocol default otherwise)")
        add_device_argument(p)
        p.add_argument("--feature", choices=("output", "backbone"), default="output",
                       help="representation to evaluate: the encoder's output (default; SSAL/CFFN: the "
                            "fused 128-d vector, ST-GCN: the 256-d pooled feature) or every branch's "
                            "last feature maps pooled and concatenated")
        if name == "linear":
            p.add_argument("--standardize", action="store_true",
                           help="train on standardised features (lr 0.3 unless --lr) instead of SPEC's raw "
                                "features at lr 3.0; the saved classifier still takes raw features")
        if name == "semi":
            p.add_argument("--fractions", type=float, nargs="+",
                           help="label fractions (eval.semi.fractions; default: the schedule's 0.01 0.05 0.1)")
            p.add_argument("--seeds", type=int, nargs="+",
                           help="label-subset seeds (eval.semi.seeds; default: the schedule's 0 1 2)")
        p.set_defaults(handler=run_protocol, protocol=name)

    p = subparsers.add_parser("supervised", help="train the same encoder from scratch on labels (the reference)")
    p.add_argument("--arch", choices=available_methods(), default=Config.method,
                   help="whose encoder architecture to train (ssal: CFFN, others: ST-GCN)")
    add_data_arguments(p, source_help="'builtin' (default) or a dataset path (E-Gait .h5, BVH folder, .npz, .ssal)")
    add_settings_arguments(p)
    p.add_argument("--split", help="split JSON (default: a new seeded stratified split)")
    p.add_argument("--out", required=True, help="directory for results.json, split.json and classifier.pt")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, help="learning rate (default: the schedule's finetune_lr, 0.05)")
    p.add_argument("--fractions", type=float, nargs="*", help="also run these label fractions (default: none)")
    p.add_argument("--seeds", type=int, nargs="+", help="label-subset seeds (default: the schedule's 0 1 2)")
    add_device_argument(p)
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
    p.set_defaults(handler=run_supervised)


def _command_inputs(args: argparse.Namespace, *more: Any) -> list[Any]:
    """The files and folders a protocol command names on its command line (checkpoint, split,
    --config, data flags): what its --out must never be written over."""
    from .data_cmd import data_inputs

    named = {"source": getattr(args, "data", None), "labels": getattr(args, "labels", None),
             "joint_map": getattr(args, "joint_map", None)}
    return data_inputs(named, getattr(args, "checkpoint", None), getattr(args, "split", None),
                       getattr(args, "config", None), *more)


def _protocol_out(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{args.protocol}"


def _experiment_for_checkpoint(args: argparse.Namespace):
    """Dataset, split and run settings for a protocol on one checkpoint (run holding the lock
    of the output directory, :func:`run_protocol`)."""
    from ..config import DataConfig, typed_section
    from ..data.configured import load_configured_dataset
    from ..data.preprocess import PreprocessConfig
    from ..data.splits import load_split, stratified_split
    from ..experiments.experiment import Experiment
    from ..experiments.schedule import SCHEDULES
    from ..inference import load_encoder
    from ..outputs import check_output_dir

    out = _protocol_out(args)
    check_output_dir(out, overwrite=args.overwrite, inputs=_command_inputs(args))
    if args.split:
        load_split(args.split)  # the file's structure, before any data are read
    _, ck = load_encoder(args.checkpoint)
    where = display_path(args.checkpoint)
    cfg = ck.get("config") or {}
    base = dict(cfg.get("data") or {})
    try:  # the checkpoint's data settings, typed (schema defaults where it names none)
        saved = asdict(typed_section(DataConfig, base, None, "data."))
    except (SsalInputError, TypeError) as exc:
        problem = exc.problem if isinstance(exc, SsalInputError) else str(exc)
        raise SsalInputError(where, f"field 'config.data': {problem}") from None
    if getattr(args, "data", None):
        base = {**saved, "labels": None}  # another source: the training run's labels file is not its
    elif not cfg.get("data"):
        raise SsalInputError(where, "checkpoint does not name its data; pass --data")
    else:
        base = saved
    # Read the data as the encoder was trained: its preprocessing, label names, reading settings;
    # the command line's --config, --set and data flags change them.
    data_cfg = data_config(args, base, accepted=("data", "eval"))
    from .data_cmd import data_inputs

    check_output_dir(out, overwrite=args.overwrite, inputs=_command_inputs(args, *data_inputs(data_cfg)))
    cfg = {**cfg, "data": asdict(data_cfg)}
    stored = PreprocessConfig.from_dict(ck["preprocess"]) if ck.get("preprocess") else None
    dataset = load_configured_dataset(data_cfg, preprocess=stored)
    if dataset.layout.name != ck["layout"]:
        raise SsalInputError(where, f"trained on layout {ck['layout']}, data has {dataset.layout.name}")
    beside = Path(args.checkpoint).with_name("split.json")
    if args.split:
        split = load_split(args.split, n=len(dataset))
    elif beside.is_file() and asdict(data_cfg) == saved:
        split = load_split(beside, n=len(dataset))
    else:
        split = stratified_split(dataset.y, val=data_cfg.val_fraction, test=data_cfg.test_fraction,
                                 seed=data_cfg.split_seed, groups=dataset.groups)
    split = {k: np.asarray(v, dtype=np.int64) for k, v in split.items()}
    out.mkdir(parents=True, exist_ok=True)
    # The kNN protocol reads run.knn_k / run.knn_temperature of the encoder's configuration.
    knn_run = {k: v for k, v in (cfg.get("run") or {}).items() if k in ("knn_k", "knn_temperature")}
    exp = Experiment(dataset=dataset, split=split, schedule=SCHEDULES["default"], out=out, device=args.device,
                     progress=False, log=lambda m: print(m, file=sys.stderr), config_overrides={"run": knn_run})
    return exp, ck


def run_protocol(args: argparse.Namespace) -> int:
    """Handler of ``ssal knn | linear | finetune | semi``: the output directory is locked while
    the protocol runs."""
    from ..outputs import check_output_dir, output_lock

    out = _protocol_out(args)
    check_output_dir(out, overwrite=args.overwrite, inputs=_command_inputs(args))
    _check_training_numbers(args)
    with output_lock(out, directory=True):
        return _run_protocol(args)


def _run_protocol(args: argparse.Namespace) -> int:
    from ..evaluation import format_table
    from ..evaluation.report import to_jsonable
    from ..experiments.protocols import evaluate_encoder
    from ..inference import load_encoder

    exp, ck = _experiment_for_checkpoint(args)
    proto = args.protocol
    sched = exp.schedule.with_changes(**eval_changes(args))
    if args.epochs:
        sched = sched.with_changes(linear_epochs=args.epochs, finetune_epochs=args.epochs, semi_epochs=args.epochs)
    if args.lr:
        sched = sched.with_changes(linear_lr=args.lr, linear_std_lr=args.lr, finetune_lr=args.lr)
    if getattr(args, "standardize", False):
        proto = "linear_std"
    exp.schedule = sched
    clip_len = config_clip_len(ck.get("config"))

    def make(seed: int):
        enc, _ = load_encoder(args.checkpoint, map_location=args.device)
        return enc.train()

    res = evaluate_encoder(exp, ".", make, clip_len=clip_len, encoder_config=ck["encoder_config"], pretrained=True,
                           method=(ck.get("config") or {}).get("method"), protocols=(proto,),
                           classifier_files={"finetune": "classifier.pt", "linear_std": "classifier.pt"},
                           feature=args.feature)
    results = {"methods": {Path(args.checkpoint).parent.name or "encoder": res}}
    from ..checkpoint import atomic_write_text

    atomic_write_text(exp.out / "results.json", json.dumps(to_jsonable(results), indent=2))
    print(format_table(results))
    print(f"results written to {exp.out / 'results.json'}")
    return 0


#: ``eval`` keys (section, key) -> the schedule field a protocol command reads them into.
EVAL_TO_SCHEDULE = {
    ("linear", "epochs"): "linear_epochs", ("linear", "lr"): "linear_lr",
    ("linear", "standardized_lr"): "linear_std_lr", ("finetune", "epochs"): "finetune_epochs",
    ("finetune", "lr"): "finetune_lr", ("semi", "fractions"): "fractions", ("semi", "seeds"): "seeds",
}


def eval_changes(args: argparse.Namespace, accepted: tuple[str, ...] = ("data", "eval")) -> dict[str, Any]:
    """The schedule fields that the command line's ``eval.*`` keys set (``--config``, ``--set``,
    ``--fractions``, ``--seeds``), typed and checked by the schema; the protocol commands run the
    ``default`` schedule's evaluation settings where no key is given."""
    from ..config import EvalConfig, deep_merge, merge_typed

    layers = section_layers(args, "eval", accepted)
    semi = {k: list(v) for k, v in (("fractions", getattr(args, "fractions", None)),
                                    ("seeds", getattr(args, "seeds", None))) if v}
    if semi:
        layers.append(({"semi": semi}, None))
    typed = merge_typed(EvalConfig, layers, "eval.")
    given: dict[str, Any] = {}
    for values, _ in layers:
        given = deep_merge(given, values, strict=False)
    changes = {}
    for (section, key), name in EVAL_TO_SCHEDULE.items():
        if isinstance(given.get(section), Mapping) and key in given[section]:
            value = getattr(getattr(typed, section), key)
            changes[name] = tuple(value) if isinstance(value, list) else value
    return changes


def run_supervised(args: argparse.Namespace) -> int:
    """Handler of ``ssal supervised``: every input is checked before anything is written (the
    split file's indices against the dataset too), and the output directory is locked while
    the reference trains."""
    from ..data.splits import load_split
    from ..experiments.schedule import SCHEDULES
    from ..outputs import check_output_dir, output_lock
    from .data_cmd import data_inputs

    data = data_config(args)
    inputs = data_inputs(data, args.split, args.config)
    check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)
    _check_training_numbers(args)
    if args.split:
        load_split(args.split)  # the file's structure, before any data are read
    changes = {"finetune_epochs": args.epochs, "semi_epochs": args.epochs, "fractions": tuple(args.fractions or ()),
               **({"finetune_lr": args.lr} if args.lr is not None else {}),
               **({"seeds": tuple(args.seeds)} if args.seeds else {})}
    sched = SCHEDULES["default"].with_changes(**changes)
    with output_lock(args.out, directory=True):
        check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)  # again, holding the lock
        return _run_supervised(args, sched, data)


def _run_supervised(args: argparse.Namespace, sched: Any, data: Any) -> int:
    from ..evaluation import format_table
    from ..evaluation.report import to_jsonable
    from ..experiments.experiment import method_config, prepare_experiment
    from ..experiments.protocols import evaluate_encoder
    from ..experiments.references import fresh_encoder

    exp = prepare_experiment(args.out, schedule=sched, data=data, overwrite=args.overwrite, split_file=args.split,
                             device=args.device, progress=False, log=lambda m: print(m, file=sys.stderr))
    cfg = method_config(exp, args.arch)
    enc_cfg = cfg["model"]["encoder"]
    protocols = ("supervised", "semi") if args.fractions else ("supervised",)
    res = evaluate_encoder(exp, ".", lambda s: fresh_encoder(enc_cfg, exp, s),
                           clip_len=config_clip_len(cfg),
                           encoder_config=enc_cfg, pretrained=False, protocols=protocols,
                           classifier_files={"supervised": "classifier.pt"})
    results = {"methods": {f"supervised-{enc_cfg['name']}": res}}
    from ..checkpoint import atomic_write_text

    atomic_write_text(exp.out / "results.json", json.dumps(to_jsonable(results), indent=2))
    print(format_table(results))
    return 0


def _check_training_numbers(args: argparse.Namespace) -> None:
    """Refuse out-of-range numeric options before any work starts."""
    if getattr(args, "epochs", None) is not None and not 1 <= args.epochs <= 10**6:
        raise SsalInputError("--epochs", f"must be from 1 to 1000000, got {args.epochs}")
    if getattr(args, "lr", None) is not None and not (0 < args.lr < float("inf")):
        raise SsalInputError("--lr", f"must be a positive number, got {args.lr}")
    for f in getattr(args, "fractions", None) or []:
        if not 0 < f <= 1:
            raise SsalInputError("--fractions", f"label fractions must lie in (0, 1], got {f}")
    for seed in getattr(args, "seeds", None) or []:
        if not 0 <= seed < 2**32:
            raise SsalInputError("--seeds", f"seeds must be from 0 to 2**32 - 1, got {seed}")

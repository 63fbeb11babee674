"""Evaluation commands: knn, linear, finetune, semi, supervised, demo, reproduce, ablate,
predict and embed."""

from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..config import clip_len as config_clip_len
from ..errors import SsalInputError, display_path
from ..methods.registry import available_methods
from .options import add_data_arguments, add_device_argument, add_settings_arguments, data_config, section_layers
from .video_cmd import add_video_flags, settings_from_args

#: Dataset options shared by commands that read a dataset.
DATA_HELP = "'builtin' or a dataset path (E-Gait .h5, BVH folder, .npz, .ssal); default: the checkpoint's data"


def _command_line() -> str:
    return "ssal " + " ".join(shlex.quote(a) for a in sys.argv[1:])


#: The sections ``--config`` / ``--set`` may set on the experiment commands (``data`` where the
#: command reads a dataset of the user's).
EXPERIMENT_SECTIONS = ("train", "model", "eval", "run")


def _schedule(args: argparse.Namespace, accepted: tuple[str, ...] = EXPERIMENT_SECTIONS):
    """The schedule preset of ``--quick`` / ``--full`` (else ``default``) with the command line's
    ``eval.*`` keys applied."""
    from ..experiments.schedule import SCHEDULES

    name = "quick" if getattr(args, "quick", False) else "full" if getattr(args, "full", False) else "default"
    return SCHEDULES[name].with_changes(**eval_changes(args, accepted))


def experiment_overrides(args: argparse.Namespace, accepted: tuple[str, ...] = EXPERIMENT_SECTIONS) -> dict:
    """The ``train``, ``model`` and ``run`` settings of ``--config`` / ``--set``, merged: they apply
    to every pretraining of an experiment, over the schedule's values."""
    from ..config import deep_merge

    out: dict = {}
    for section in ("train", "model", "run"):
        for values, _ in section_layers(args, section, accepted):
            out = deep_merge(out, {section: values}, strict=False)
    return out


def _add_schedule_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a first look (about 2 minutes on 2 CPU cores)")
    g.add_argument("--full", action="store_true", help="the paper-scale schedule (hours on a GPU)")


def _add_run_flags(p: argparse.ArgumentParser, out_default: str | None) -> None:
    if out_default is None:
        p.add_argument("--out", required=True, help="output directory (never deleted)")
    else:
        p.add_argument("--out", default=None,
                       help=f"output directory (default: a new {out_default}-<date>-<time>; never deleted)")
        p.set_defaults(out_prefix=out_default)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out for a fresh run")
    add_device_argument(p)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the evaluation and main-job commands."""
    _register_protocols(subparsers)
    _register_experiments(subparsers)
    _register_model_use(subparsers)


def _register_protocols(subparsers: argparse._SubParsersAction) -> None:
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


def _register_experiments(subparsers: argparse._SubParsersAction) -> None:
    """The main job and the experiments: demo, reproduce, benchmark, ablate."""
    p = subparsers.add_parser("demo", help="the main job: SSAL vs AimCLR vs SkeletonCLR on the built-in corpus",
                              description="Pretrain SSAL, AimCLR and SkeletonCLR on the built-in corpus, run "
                                          "kNN, linear, finetune and semi-supervised protocols against "
                                          "supervised-from-scratch, and write report.md, results.json and plots.")
    _add_schedule_flags(p)
    _add_run_flags(p, "runs/demo")
    add_settings_arguments(p)
    p.set_defaults(handler=run_demo)

    p = subparsers.add_parser("reproduce", help="the demo's protocol on your E-Gait (or other) data")
    add_data_arguments(p, source_help="dataset path (E-Gait features .h5 with labels beside, BVH folder, ...); "
                                      "required unless a --config names data.source")
    add_settings_arguments(p)
    p.add_argument("--folds", type=int, default=0, help="also run k-fold cross-validation (0: off)")
    p.add_argument("--methods", nargs="+", default=list(available_methods()), choices=available_methods())
    _add_schedule_flags(p)
    _add_run_flags(p, None)
    p.set_defaults(handler=run_reproduce)

    p = subparsers.add_parser("benchmark", help="a benchmark spec on real data (bandai-affect, bandai-style, or "
                              "your own YAML)",
                              description="Run a benchmark defined as data (docs/results-real.md): pretrain the "
                                          "spec's methods, score them and the references (raw pose, random init, "
                                          "from scratch) on the spec's folds with 95% CIs over recordings.")
    p.add_argument("spec", help="a shipped spec name (bandai-affect, bandai-style) or the path of a .yaml spec")
    p.add_argument("--data", required=True, help="the data root the spec's folders are relative to "
                                                 "(e.g. ../shared/data/bandai-namco)")
    p.add_argument("--schedule", default="default", help="a schedule of the spec: quick, default, full (default: "
                                                         "default)")
    p.add_argument("--methods", nargs="+", help="a subset of the spec's methods (default: the schedule's)")
    p.add_argument("--seed", type=int, default=Config.seed, help=f"run seed (default {Config.seed})")
    p.add_argument("--pretrain-only", action="store_true", help="stop after pretraining (score later with --resume)")
    _add_run_flags(p, "runs/benchmark")
    p.set_defaults(handler=run_benchmark)

    p = subparsers.add_parser("ablate", help="SSAL with each component switched off alone")
    add_data_arguments(p, source_help="'builtin' (default) or a dataset path")
    add_settings_arguments(p)
    p.add_argument("--variants", nargs="+", help="subset of variants (default: all)")
    _add_schedule_flags(p)
    _add_run_flags(p, "runs/ablate")
    p.set_defaults(handler=run_ablate)


def _register_model_use(subparsers: argparse._SubParsersAction) -> None:
    """Using a trained model: predict and embed."""
    p = subparsers.add_parser("predict", help="per-sequence emotion probabilities from a classifier.pt")
    p.add_argument("--checkpoint", required=True,
                   help="classifier.pt (from linear / finetune / demo), or its ONNX export (ssal export)")
    p.add_argument("input", help="BVH file or folder, .npz (poses.npz from `ssal pose`), E-Gait .h5, .ssal, "
                                 "a (T, 17, 3) Human3.6M .npy, or a video (.mp4, ...; needs the 'video' extra)")
    p.add_argument("--out", help="write CSV (.csv) or JSON (.json) instead of printing CSV")
    add_device_argument(p)
    add_data_arguments(p, source=False, labels=False)
    add_settings_arguments(p)
    add_video_flags(p.add_argument_group("video input (as for `ssal pose`)"))
    p.set_defaults(handler=run_predict)

    p = subparsers.add_parser("embed", help="encoder features of every sequence, as .npy")
    p.add_argument("--checkpoint", required=True, help="encoder.pt or classifier.pt")
    p.add_argument("input", help="dataset path or video (as for predict) or 'builtin'")
    p.add_argument("--out", required=True, help="output .npy (N, D)")
    add_device_argument(p)
    add_data_arguments(p, source=False, labels=False)
    add_settings_arguments(p)
    add_video_flags(p.add_argument_group("video input (as for `ssal pose`)"))
    p.set_defaults(handler=run_embed)


# ---------------------------------------------------------------------------------------------
def _experiment_for_checkpoint(args: argparse.Namespace):
    """Dataset, split and run settings for a protocol on one checkpoint."""
    from ..config import DataConfig, typed_section
    from ..data.configured import load_configured_dataset
    from ..data.preprocess import PreprocessConfig
    from ..data.splits import load_split, stratified_split
    from ..experiments.experiment import Experiment
    from ..experiments.schedule import SCHEDULES
    from ..inference import load_encoder
    from ..outputs import check_output_dir

    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{args.protocol}"
    check_output_dir(out, overwrite=args.overwrite)
    _check_training_numbers(args)
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
    """Handler of ``ssal knn | linear | finetune | semi``."""
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
    """Handler of ``ssal supervised``."""
    from ..evaluation import format_table
    from ..evaluation.report import to_jsonable
    from ..experiments.experiment import method_config, prepare_experiment
    from ..experiments.protocols import evaluate_encoder
    from ..experiments.references import fresh_encoder
    from ..experiments.schedule import SCHEDULES
    from ..outputs import check_output_dir

    check_output_dir(args.out, overwrite=args.overwrite)
    _check_training_numbers(args)
    changes = {"finetune_epochs": args.epochs, "semi_epochs": args.epochs, "fractions": tuple(args.fractions or ()),
               **({"finetune_lr": args.lr} if args.lr is not None else {}),
               **({"seeds": tuple(args.seeds)} if args.seeds else {})}
    sched = SCHEDULES["default"].with_changes(**changes)
    exp = prepare_experiment(args.out, schedule=sched, data=data_config(args), overwrite=args.overwrite,
                             device=args.device, progress=False, log=lambda m: print(m, file=sys.stderr))
    if args.split:
        from ..data.splits import load_split

        exp.split = {k: np.asarray(v, dtype=np.int64) for k, v in load_split(args.split, n=len(exp.dataset)).items()}
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


def _checked_out(args: argparse.Namespace) -> str:
    """:func:`_out_dir`, checked before any work starts (unwritable place, a file, a dangling
    link, a non-empty directory without --overwrite / --resume)."""
    from ..outputs import check_output_dir

    out = _out_dir(args)
    check_output_dir(out, overwrite=args.overwrite, resume=args.resume, resumable=True)
    return out


def _out_dir(args: argparse.Namespace) -> str:
    """``--out``, or a fresh time-stamped directory so repeated runs never collide."""
    if args.out:
        return args.out
    if args.resume:
        raise SsalInputError(None, "--resume needs --out naming the run directory to continue")
    import datetime as dt

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = f"{args.out_prefix}-{stamp}"
    return args.out


def _log(args: argparse.Namespace):
    return (lambda m: None) if args.no_progress else (lambda m: print(m, file=sys.stderr, flush=True))


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``ssal demo``."""
    from ..experiments.jobs import run_demo as demo

    results = demo(_checked_out(args), _schedule(args), resume=args.resume, overwrite=args.overwrite, device=args.device,
                   progress=not args.no_progress, command=_command_line(), log=_log(args),
                   config_overrides=experiment_overrides(args))
    _print_summary(results, args.out)
    return 0


def _print_summary(results: dict[str, Any], out: str) -> None:
    from ..evaluation import format_table

    print(format_table(results))
    for note in results.get("notes", []):
        print(f"- {note}")
    print(f"report: {Path(out) / 'report.md'}  ({results.get('seconds', '?')} s)")


def run_reproduce(args: argparse.Namespace) -> int:
    """Handler of ``ssal reproduce``."""
    from ..experiments.experiment import prepare_experiment
    from ..experiments.jobs import run_kfold, run_protocols

    _checked_out(args)
    if not 0 <= args.folds <= 1000 or args.folds == 1:
        raise SsalInputError("--folds", f"must be 0 (off) or from 2 to 1000, got {args.folds}")
    sections = ("data", *EXPERIMENT_SECTIONS)
    sched = _schedule(args, sections)
    data = data_config(args, accepted=sections)
    overrides = experiment_overrides(args, sections)
    if data.source == "builtin":
        raise SsalInputError("--data", "name your dataset (--data PATH or data.source in --config); the built-in "
                                       "corpus is `ssal demo`'s")
    exp = prepare_experiment(args.out, schedule=sched, data=data, resume=args.resume, overwrite=args.overwrite,
                             device=args.device, progress=not args.no_progress, log=_log(args),
                             config_overrides=overrides)
    results = run_protocols(exp, args.methods, _command_line())
    _print_summary(results, args.out)
    if args.folds:
        summary = run_kfold(data, Path(args.out) / "kfold", folds=args.folds, schedule=sched,
                            methods=args.methods, device=args.device, config_overrides=overrides,
                            progress=not args.no_progress, resume=args.resume, overwrite=True, log=_log(args))
        for m, protos in summary.items():
            cells = ", ".join(f"{p} {v['mean'] * 100:.1f} ± {(v['std'] or 0) * 100:.1f}%" for p, v in protos.items())
            print(f"{args.folds}-fold {m}: {cells}")
    return 0


def run_benchmark(args: argparse.Namespace) -> int:
    """Handler of ``ssal benchmark``."""
    from ..experiments import run_benchmark as run_spec
    from ..experiments.report import accuracy_table

    out = _out_dir(args)
    results = run_spec(args.spec, args.data, out, schedule=args.schedule, methods=args.methods, device=args.device,
                       seed=args.seed, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                       command=_command_line(), pretrain_only=args.pretrain_only,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.pretrain_only:
        print(f"pretrained into {out}; score with: ssal benchmark {args.spec} --data {args.data} --out {out} --resume")
        return 0
    print("\n".join(accuracy_table(results, "test")))
    print(f"report: {Path(out) / 'report.md'}  ({results['seconds']:.0f} s)")
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    """Handler of ``ssal ablate``."""
    from ..experiments.jobs import run_ablation

    sections = ("data", *EXPERIMENT_SECTIONS)
    results = run_ablation(_checked_out(args), _schedule(args, sections), data=data_config(args, accepted=sections),
                           variants=args.variants, device=args.device, progress=not args.no_progress,
                           resume=args.resume, overwrite=args.overwrite, command=_command_line(), log=_log(args),
                           config_overrides=experiment_overrides(args, sections))
    _print_summary(results, args.out)
    return 0


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


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``ssal predict``."""
    from ..checkpoint import atomic_write_text
    from ..inference import load
    from ..outputs import check_output_file

    if args.out:
        check_output_file(args.out, suffixes=(".csv", ".json"), what="predictions file")
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
    from ..checkpoint import atomic_write_bytes
    from ..inference import load
    from ..outputs import check_output_file

    check_output_file(args.out, suffixes=(".npy",), what="features file")
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

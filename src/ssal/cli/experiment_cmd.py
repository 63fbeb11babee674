"""Experiment commands: the main job (``demo``), ``reproduce`` and ``ablate`` on a dataset, and
``benchmark`` (a spec of real data)."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import SsalInputError
from ..methods.registry import available_methods
from .data_cmd import data_inputs
from .options import add_data_arguments, add_device_argument, add_settings_arguments, data_config, section_layers
from .protocol_cmd import eval_changes


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
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars (the one-line stage messages stay; --quiet hides them too)")
    p.add_argument("--quiet", action="store_true", help="hide progress bars and stage messages")


def register(subparsers: argparse._SubParsersAction) -> None:
    """The main job and the experiments: demo, reproduce, benchmark, ablate."""
    p = subparsers.add_parser("demo", help="the main job: SSAL vs its baselines on the built-in corpus",
                              description="Pretrain SSAL and its baselines (AimCLR, SkeletonCLR, PSTL, MAMP) on the built-in corpus, run "
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
    g = p.add_mutually_exclusive_group()
    g.add_argument("--cache", metavar="DIR", default=None,
                   help="folder of the cut-corpus cache, read back when the spec selects the same files (default: "
                        "$SSAL_CACHE_DIR, else $XDG_CACHE_HOME/ssal/corpora, else ~/.cache/ssal/corpora; never "
                        "inside --data)")
    g.add_argument("--no-cache", action="store_true", help="read and cut the BVH files again, write no cache")
    _add_run_flags(p, "runs/benchmark")
    p.set_defaults(handler=run_benchmark)

    p = subparsers.add_parser("ablate", help="SSAL with each component switched off alone")
    add_data_arguments(p, source_help="'builtin' (default) or a dataset path")
    add_settings_arguments(p)
    p.add_argument("--variants", nargs="+", help="subset of variants (default: all)")
    _add_schedule_flags(p)
    _add_run_flags(p, "runs/ablate")
    p.set_defaults(handler=run_ablate)


def _checked_out(args: argparse.Namespace, inputs: Any = ()) -> str:
    """:func:`_out_dir`, checked before any work starts (unwritable place, a file, a dangling
    link, a non-empty directory without --overwrite / --resume, an input of the command
    (``inputs``) inside it or it inside an input folder, another ssal process writing it)."""
    from ..outputs import check_output_dir

    out = _out_dir(args)
    check_output_dir(out, overwrite=args.overwrite, resume=args.resume, resumable=True, inputs=inputs)
    return out


@contextlib.contextmanager
def _locked_out(args: argparse.Namespace, inputs: Any = ()) -> Iterator[str]:
    """The checked output directory, locked while the experiment writes it (and checked again
    holding the lock: another run may have finished into it meanwhile)."""
    from ..outputs import output_lock

    out = _checked_out(args, inputs)
    with output_lock(out, directory=True):
        _checked_out(args, inputs)
        yield out


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


def _bars(args: argparse.Namespace) -> bool:
    """Whether progress bars show: not with ``--no-progress`` or ``--quiet``."""
    return not (args.no_progress or args.quiet)


def _log(args: argparse.Namespace):
    """Stage messages to stderr; silent only with ``--quiet`` (``--no-progress`` hides bars)."""
    return (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``ssal demo``."""
    from ..experiments.jobs import run_demo as demo

    sched, overrides = _schedule(args), experiment_overrides(args)
    with _locked_out(args, [args.config]) as out:
        results = demo(out, sched, resume=args.resume, overwrite=args.overwrite, device=args.device,
                       progress=_bars(args), command=_command_line(), log=_log(args),
                       config_overrides=overrides)
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
    with _locked_out(args, data_inputs(data, args.config)):
        exp = prepare_experiment(args.out, schedule=sched, data=data, resume=args.resume, overwrite=args.overwrite,
                                 device=args.device, progress=_bars(args), log=_log(args),
                                 config_overrides=overrides)
        results = run_protocols(exp, args.methods, _command_line(), job="reproduce")
        _print_summary(results, args.out)
        if args.folds:
            summary = run_kfold(data, Path(args.out) / "kfold", folds=args.folds, schedule=sched,
                                methods=args.methods, device=args.device, config_overrides=overrides,
                                progress=_bars(args), resume=args.resume, overwrite=True, log=_log(args))
            for m, protos in summary.items():
                cells = ", ".join(f"{p} {v['mean'] * 100:.1f} ± {(v['std'] or 0) * 100:.1f}%"
                                  for p, v in protos.items())
                print(f"{args.folds}-fold {m}: {cells}")
    return 0


def run_benchmark(args: argparse.Namespace) -> int:
    """Handler of ``ssal benchmark``."""
    from ..experiments import run_benchmark as run_spec
    from ..experiments.report import accuracy_table
    from ..experiments.spec import load_spec

    spec = load_spec(args.spec)  # the spec and its schedule first: they name what is read
    spec.schedule(args.schedule)
    spec_file = args.spec if Path(args.spec).suffix.lower() in (".yaml", ".yml") else None
    with _locked_out(args, [args.data, spec_file]) as out:
        results = run_spec(spec, args.data, out, schedule=args.schedule, methods=args.methods,
                           device=args.device, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
                           progress=_bars(args), command=_command_line(),
                           pretrain_only=args.pretrain_only, log=lambda m: print(m, file=sys.stderr, flush=True),
                           cache=not args.no_cache, cache_dir=args.cache)
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
    data = data_config(args, accepted=sections)
    sched, overrides = _schedule(args, sections), experiment_overrides(args, sections)
    with _locked_out(args, data_inputs(data, args.config)) as out:
        results = run_ablation(out, sched, data=data, variants=args.variants, device=args.device,
                               progress=_bars(args), resume=args.resume, overwrite=args.overwrite,
                               command=_command_line(), log=_log(args), config_overrides=overrides)
    _print_summary(results, args.out)
    return 0

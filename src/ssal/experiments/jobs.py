"""The experiment jobs of the command line: the demo (``ssal demo``), the demo's protocol on
user data with optional k-fold cross-validation (``ssal reproduce``) and the SSAL ablation
(``ssal ablate``).

A job pretrains each method (:mod:`.pretraining`), evaluates every encoder with the protocols
of :mod:`.protocols` on one seeded stratified split, against the same encoder architectures
trained from scratch and left at random initialisation (:mod:`.references`). Results go to
``results.json``, ``report.md`` and PNG plots in the run directory. Pretraining runs are
resumable: an interrupted job started again with ``resume=True`` skips finished methods and
resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import atomic_write_text
from ..data.splits import kfold, stratified_split
from ..errors import SsalInputError
from ..evaluation import summarize_runs, write_report
from ..methods.registry import encoder_name
from .experiment import (
    Experiment,
    configured,
    describe,
    describe_method,
    method_config,
    prepare_experiment,
    split_fractions,
)
from .figures import machine_description, make_plots
from .notes import compare
from .pretraining import SSL_METHODS, pretrain_seed, pretrain_seeds, run_pretraining, seed_run_dirs
from .progress import JobProgress, evaluate_key, pretrain_key, protocol_stages, references_key
from .protocols import SEED_PROTOCOLS
from .references import evaluate_from_scratch, reference_methods
from .schedule import SCHEDULES, Schedule, load_schedule
from .seeds import evaluate_pretrained, evaluate_seeds
from .stage_pool import Task, WorkerPlan, run_tasks


def _pretrain_stage(exp: Experiment, method: str, seed: int) -> tuple[int, Path]:
    return pretrain_seed(exp, method, method, seed)


def _evaluate_stage(exp: Experiment, method: str, runs: list[tuple[int, Path]]) -> dict[str, Any]:
    out = {method: evaluate_seeds(exp, method, method, runs)}
    if encoder_name(method) == "cffn":
        # SSAL is evaluated on the fused vector (the paper's); its branch maps pooled are
        # reported beside it, as the baselines' ST-GCN is read on its pooled maps.
        out[f"{method} (branch maps)"] = evaluate_seeds(exp, method, method, runs, protocols=SEED_PROTOCOLS,
                                                        feature="backbone", suffix="/backbone")
    return out


def _references_stage(exp: Experiment, arch_method: str) -> dict[str, Any]:
    arch = encoder_name(arch_method)
    sup, rnd = evaluate_from_scratch(exp, arch_method)
    return {f"supervised-{arch}": sup, f"random-{arch}": rnd}


def protocol_tasks(exp: Experiment, methods: Sequence[str], references: bool = True) -> list[Task]:
    """The stages of :func:`run_protocols` as :class:`~.stage_pool.Task` objects, keyed as
    :func:`~.progress.protocol_stages` keys them: every pretraining seed, the references (which
    wait for nothing), then each method's protocols after its pretraining seeds."""
    tasks = [Task(pretrain_key(m, seed), _pretrain_stage, (m, seed), reused=(d / "encoder.pt").is_file(),
                  partial=(d / "checkpoint.pt").is_file())
             for m in methods for seed, d in seed_run_dirs(exp, m)]
    if references:
        tasks += [Task(references_key(arch), _references_stage, (m,)) for arch, m in reference_methods(methods).items()]
    for m in methods:
        runs = [(seed, d / "encoder.pt") for seed, d in seed_run_dirs(exp, m)]
        tasks.append(Task(evaluate_key(m), _evaluate_stage, (m, runs),
                          after=tuple(pretrain_key(m, seed) for seed, _ in runs)))
    return tasks


def run_protocols(exp: Experiment, methods: Sequence[str], command: str,
                  references: bool = True, job: str = "demo") -> dict[str, Any]:
    """Pretrain and evaluate ``methods`` plus the from-scratch references; write the report.

    The stages run in ``run.workers`` processes (:mod:`.stage_pool`); at the start of each
    ``exp.log`` gets a line ``[job] stage k of n: ...`` with the estimated time left
    (:mod:`.progress`)."""
    t0 = time.perf_counter()
    results: dict[str, Any] = {"methods": {}, "dataset": describe(exp), "schedule": exp.schedule.to_dict(),
                               "notes": []}
    plan = WorkerPlan.resolve(configured("run", exp.config_overrides)["workers"], _device(exp))
    if plan.workers > 1:
        exp.log(f"[{job}] {plan.workers} worker processes, {plan.threads} thread(s) each (run.workers)")
    stages = JobProgress(protocol_stages(exp, methods, references), exp.log, job=job, workers=plan.workers)
    tasks = protocol_tasks(exp, methods, references)
    done = run_tasks(exp, tasks, plan, on_start=lambda t: stages.start(t.key, reused=t.reused, partial=t.partial),
                     on_done=lambda t: stages.done(t.key))
    stages.finish()
    for m in methods:  # the table's order: each method (and its branch maps), then the references
        results["methods"].update(done[evaluate_key(m)])
    if references:
        for arch in reference_methods(methods):
            results["methods"].update(done[references_key(arch)])
    pretrained = {m: done[pretrain_key(m, seed_run_dirs(exp, m)[0][0])][1] for m in methods}
    results["trained"] = {m: describe_method(method_config(exp, m), exp.schedule.pretrain.cpu_plan) for m in methods}
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["workers"] = {"processes": plan.workers, "threads": plan.threads}
    results["notes"].extend(compare(results))
    plots = make_plots(exp, results, pretrained)
    machine = machine_description(_device(exp))
    if plan.workers > 1:
        machine += f"; stages in {plan.workers} worker processes of {plan.threads} thread(s) each (run.workers)"
    write_report(exp.out, results, plots, command=command, machine=f"{machine}; wall time {results['seconds']:.0f} s")
    return results


def _device(exp: Experiment) -> str:
    return exp.device if exp.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")


def run_demo(out: str | Path = "runs/demo", schedule: str | Path | Schedule = "default", *,
             methods: Sequence[str] = SSL_METHODS, resume: bool = False, overwrite: bool = False,
             device: str = "cpu", progress: bool = True, command: str = "ssal demo",
             log: Callable[[str], None] = print,
             config_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The main job: pretrain SSAL and every baseline preset on the built-in corpus and compare.

    ``schedule``: a :class:`Schedule`, a preset name or the path of a schedule file;
    ``config_overrides``: settings of every pretraining over the schedule's (``train``,
    ``model``, ``run``)."""
    if isinstance(schedule, Schedule):
        sched = schedule
    else:
        sched = SCHEDULES[schedule] if isinstance(schedule, str) and schedule in SCHEDULES else load_schedule(schedule)
    exp = prepare_experiment(out, schedule=sched, resume=resume, overwrite=overwrite, device=device,
                             progress=progress, log=log, config_overrides=config_overrides)
    return run_protocols(exp, methods, command)


def run_kfold(data: Any, out: str | Path, *, folds: int, schedule: Schedule, methods: Sequence[str],
              labels: str | None = None, label_map: str | None = None, device: str = "cpu",
              progress: bool = True, resume: bool = False,
              overwrite: bool = False, command: str = "ssal reproduce",
              log: Callable[[str], None] = print,
              config_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """k-fold cross-validation of the linear and finetune protocols on user data.

    Each fold's test part is the fold; its validation part is a stratified ``data.val_fraction``
    (a tenth by default) of the rest.
    Fold results are summarised as mean +- std in ``kfold.json`` beside the main report.
    """
    base = prepare_experiment(out, schedule=schedule, data=data, labels=labels, label_map=label_map, resume=resume,
                              config_overrides=config_overrides,
                              overwrite=overwrite, device=device, progress=progress, log=log)
    ds = base.dataset
    labelled = ds.labelled
    per_method: dict[str, list[dict[str, Any]]] = {}
    groups = np.asarray(ds.groups) if ds.groups is not None else None
    folds_of = kfold(ds.y[labelled], k=folds, seed=base.seed, groups=None if groups is None else groups[labelled])
    for f, (tr, te) in enumerate(folds_of):
        tr, te = labelled[tr], labelled[te]
        inner = stratified_split(ds.y[tr], val=split_fractions(base.config_overrides)[0], test=0.0,
                                 seed=base.seed + f, groups=None if groups is None else groups[tr])
        split = {"train": tr[inner["train"]], "val": tr[inner["val"]], "test": te}
        exp = replace(base, split=split, out=base.out / f"fold{f}")
        exp.out.mkdir(parents=True, exist_ok=True)
        # Pretraining gets this split, so it never sees the fold's test sequences.
        for m in methods:
            path = run_pretraining(exp, m, m)
            res = evaluate_pretrained(exp, m, path, m, protocols=("linear", "finetune"))
            per_method.setdefault(m, []).append(res)
    summary = {m: {p: summarize_runs([r[p] for r in runs]) for p in ("linear", "finetune")}
               for m, runs in per_method.items()}
    atomic_write_text(base.out / "kfold.json", json.dumps(summary, indent=2, default=float))
    return summary


def ablation_variants() -> dict[str, dict[str, Any]]:
    """SSAL with each component switched off alone (config overrides of the ``ssal`` preset)."""
    return {
        "ssal (full)": {},
        "w/o upper-body jitter": {"model": {"augment": {"strong": {"jitter": False}}}},
        "w/o spatial mask": {"model": {"augment": {"strong": {"spatial_mask": False}}}},
        "w/o temporal mask": {"model": {"augment": {"strong": {"temporal_mask": False}}}},
        "w/o graph branch": {"model": {"encoder": {"use_graph": False}}},
        "w/o image branch": {"model": {"encoder": {"use_image": False}}},
        "w/o SimAM drop": {"model": {"use_drop": False}},
        "w/o L_d": {"model": {"use_ld": False}},
    }


def run_ablation(out: str | Path, schedule: Schedule, *, data: Any = "builtin", labels: str | None = None,
                 label_map: str | None = None,
                 variants: Sequence[str] | None = None, device: str = "cpu", progress: bool = True,
                 resume: bool = False, overwrite: bool = False, command: str = "ssal ablate",
                 log: Callable[[str], None] = print,
                 config_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain each SSAL ablation variant and compare kNN and linear accuracy."""
    exp = prepare_experiment(out, schedule=schedule, data=data, labels=labels, label_map=label_map, resume=resume,
                             config_overrides=config_overrides,
                             overwrite=overwrite, device=device, progress=progress, log=log)
    table = ablation_variants()
    chosen = list(variants) if variants else list(table)
    unknown = [v for v in chosen if v not in table]
    if unknown:
        raise SsalInputError(None, f"unknown ablation variant(s) {unknown}; known: {list(table)}")
    t0 = time.perf_counter()
    results: dict[str, Any] = {"methods": {}, "dataset": describe(exp), "schedule": schedule.to_dict(), "notes": []}
    for i, name in enumerate(chosen):
        seed_runs = pretrain_seeds(exp, f"variant{i}", "ssal", copy.deepcopy(table[name]))
        results["methods"][name] = evaluate_seeds(exp, f"variant{i}", "ssal", seed_runs, protocols=SEED_PROTOCOLS)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_report(exp.out, results, {}, command=command, machine=machine_description(device))
    return results


__all__ = ["protocol_tasks", "run_protocols", "run_demo", "run_kfold", "ablation_variants", "run_ablation"]

"""Benchmark on real acted-emotion motion capture: the Bandai-Namco-Research-Motiondataset.

``ssal benchmark bandai --data ../shared/data/bandai-namco`` (or :func:`run_bandai`) runs, from
the two BVH folders of the release (``dataset-1/data``, ``dataset-2/data``):

1. **Pretraining** of SSAL, AimCLR and SkeletonCLR (no emotion labels) on the clips of
   dataset-2's training recordings (walking in 7 styles) plus every dataset-1 recording that
   is *not* an evaluation recording of the emotion task (other styles and actions). Choice:
   the issue asks for "dataset-1's training recordings"; since the emotion task is evaluated
   over k folds, each of its recordings is a test recording in some fold, so none of them is
   pretrained on and one pretraining serves every fold. The kNN monitor during pretraining
   reads dataset-2's style labels of the validation recordings (the loss never reads labels).
2. **Emotion** (4 classes: happy, sad, angry, neutral = ``normal``) on dataset-1's locomotion
   recordings (walk, walk-back, walk-left, walk-right, run, dash; 7 recordings per class),
   cut into clips; ``folds`` recording-level stratified folds (no recording has clips on two
   sides; each fold's training recordings give a validation recording per class for model
   selection). Protocols: kNN, linear (raw and standardised features), finetune and
   few-label finetune (fractions of the training *recordings* per class), against the same
   encoders trained from scratch and at random initialisation. Tables: mean +- std over folds.
3. **Style** (7 classes) on dataset-2 with few labels: one seeded recording-level split
   (70/10/20), whose test recordings were never pretrained on; kNN, linear and few-label
   finetune against from-scratch and random init; semi results are mean +- std over seeds.

The run directory holds ``report.md`` (all tables), ``results.json``, ``plots/``, the
pretrained encoders (``pretrain/<method>/encoder.pt``), per-fold reports
(``emotion/fold<k>/``), the style report (``style/``) and every split file (with its
recordings). ``--resume`` reuses finished pretraining runs and folds.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .data.bvh import read_bvh_folder
from .data.dataset import UNLABELLED, GaitDataset
from .data.names import NameLabels
from .data.splits import kfold, save_split, stratified_split
from .engine import prepare_run_dir, read_metrics
from .errors import SsalInputError, display_path
from .evaluation import format_table, summarize_runs, write_report
from .evaluation.report import _atomic_write, to_jsonable
from .pipeline import (
    SCHEDULES, SSL_METHODS, Experiment, Schedule, check_schedule, encoder_name, entry_top1, evaluate_from_scratch,
    evaluate_pretrained, format_entry, machine_description, pretraining_plots, run_pretraining,
)

D1_PATTERN = "dataset-1_{content}_{style}_{id}"
D2_PATTERN = "dataset-2_{content}_{style}_{id}"
#: dataset-1 contents of the emotion task (locomotion).
LOCOMOTION = ("walk", "walk-back", "walk-left", "walk-right", "run", "dash")
#: Emotion classes and the dataset-1 style each is read from.
EMOTIONS = {"happy": "happy", "sad": "sad", "angry": "angry", "neutral": "normal"}


@dataclass(frozen=True)
class BandaiPlan:
    """Data and evaluation settings of the benchmark (beside the training :class:`Schedule`).

    Attributes:
        window: clip length in frames at 30 fps (2 s); also the dataset length T.
        stride: frames between clip starts in the pretraining corpus and dataset-2.
        eval_stride: frames between clip starts of the emotion recordings (few recordings:
            denser clips).
        folds: recording-level folds of the emotion task.
        emotion_fractions: few-label fractions of the training recordings per class (0.2 and
            0.5 of 4-5 recordings: 1 and 2 recordings per class).
        style_fractions: few-label fractions of dataset-2's training recordings per class.
        limit: at most this many recordings per style of dataset-2 and of dataset-1's
            pretraining part (a small subset for tests); ``None``: all.
    """

    window: int = 60
    stride: int = 30
    eval_stride: int = 20
    folds: int = 5
    emotion_fractions: tuple[float, ...] = (0.2, 0.5)
    style_fractions: tuple[float, ...] = (0.02, 0.1)
    limit: int | None = None


#: Training schedules: ``default`` is sized for about 20-30 minutes on 2 CPU cores (3 pretraining
#: epochs; one few-label run per fold and fraction, so the std is over folds), ``full`` is for a
#: GPU, ``quick`` is a smoke run.
BENCH_SCHEDULES: dict[str, Schedule] = {
    "quick": SCHEDULES["quick"].with_changes(name="bandai-quick", pretrain_epochs=1, batch_size=64, queue_size=256,
                     knn_every=1, linear_epochs=10, finetune_epochs=1, semi_epochs=1, semi_steps=2, seeds=(0,),
                     pretrain_seeds=(0,)),
    "default": SCHEDULES["default"].with_changes(name="bandai-default", pretrain_epochs=3, batch_size=128,
                       queue_size=1024, knn_every=1, linear_epochs=100, finetune_epochs=8, semi_epochs=5,
                       semi_steps=20, seeds=(0,), pretrain_seeds=(0,)),
    "full": SCHEDULES["full"].with_changes(name="bandai-full", clip_len=50, finetune_epochs=100, semi_steps=None,
                    seeds=(0, 1, 2, 3, 4), pretrain_seeds=(0,)),
}


def _require_folder(path: Path) -> Path:
    if not path.is_dir():
        raise SsalInputError(display_path(path), "folder not found (expected the Bandai-Namco release with "
                                                 "dataset-1/data and dataset-2/data)")
    return path


def _limit(ds: GaitDataset, spec: NameLabels, limit: int | None) -> GaitDataset:
    """At most ``limit`` recordings per style (first by name)."""
    if limit is None:
        return ds
    kept: dict[str, list[str]] = {}
    for g in dict.fromkeys(ds.recording_ids):
        style = (spec.fields(Path(g).stem) or {}).get("style", "")
        if len(kept.setdefault(style, [])) < limit:
            kept[style].append(g)
    keep = {g for v in kept.values() for g in v}
    return ds.subset([i for i, g in enumerate(ds.recording_ids) if g in keep])


def concat_datasets(parts: Sequence[GaitDataset], classes: Sequence[str], source: str) -> GaitDataset:
    """Stack datasets of one layout and length; labels must already index ``classes``."""
    return GaitDataset(
        x=np.concatenate([p.x for p in parts]), y=np.concatenate([p.y for p in parts]),
        names=[n for p in parts for n in p.names], lengths=np.concatenate([p.lengths for p in parts]),
        classes=list(classes), layout=parts[0].layout, fps=parts[0].fps,
        meta={**parts[0].meta, "source": source}, groups=[g for p in parts for g in p.recording_ids],
    )


@dataclass
class BandaiData:
    """The three datasets of the benchmark and the style split."""

    emotion: GaitDataset
    style: GaitDataset
    style_split: dict[str, np.ndarray]
    pretrain: GaitDataset
    pretrain_split: dict[str, np.ndarray]


def load_bandai(root: str | Path, plan: BandaiPlan, seed: int = 0) -> BandaiData:
    """Read the two folders and build the emotion, style and pretraining datasets."""
    root = Path(root)
    d1 = _require_folder(root / "dataset-1" / "data")
    d2 = _require_folder(root / "dataset-2" / "data")
    emo_spec = NameLabels(D1_PATTERN, label_field="style",
                          where={"content": (True, frozenset(LOCOMOTION)), "style": (True, frozenset(EMOTIONS.values()))},
                          rename={v: k for k, v in EMOTIONS.items()}, classes=list(EMOTIONS))
    emotion = read_bvh_folder(d1, name_labels=emo_spec, window=plan.window, stride=plan.eval_stride)
    d1_spec = NameLabels(D1_PATTERN, label_field="style")
    d1_all = read_bvh_folder(d1, name_labels=d1_spec, window=plan.window, stride=plan.stride)
    held = set(emotion.recording_ids)
    d1_pre = d1_all.subset([i for i, g in enumerate(d1_all.recording_ids) if g not in held])
    d1_pre = _limit(d1_pre, d1_spec, plan.limit)
    d2_spec = NameLabels(D2_PATTERN, label_field="style")
    style = _limit(read_bvh_folder(d2, name_labels=d2_spec, window=plan.window, stride=plan.stride), d2_spec,
                   plan.limit)
    style_split = stratified_split(style.y, val=0.1, test=0.2, seed=seed, groups=style.recording_ids)
    if not len(style_split["test"]) or not len(style_split["val"]):
        raise SsalInputError(display_path(d2), "too few recordings per style for validation and test recordings "
                                               "(need at least 3 per style: raise --limit)")
    d1_pre.y[:] = UNLABELLED  # pretraining reads no dataset-1 labels
    d2_trainval = style.subset(np.concatenate([style_split["train"], style_split["val"]]))
    pretrain = concat_datasets([d2_trainval, d1_pre], style.classes, display_path(root))
    n_tr, n_val = len(style_split["train"]), len(style_split["val"])
    pre_split = {"train": np.concatenate([np.arange(n_tr), np.arange(n_tr + n_val, len(pretrain))]),
                 "val": np.arange(n_tr, n_tr + n_val), "test": np.zeros(0, np.int64)}
    return BandaiData(emotion, style, style_split, pretrain, {k: v.astype(np.int64) for k, v in pre_split.items()})


def _fold_summary(per_fold: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean +- std over folds of each method's protocols (semi: of each fold's seed mean)."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(n for f in per_fold for n in f))
    for name in names:
        runs = [f[name] for f in per_fold if name in f]
        entry: dict[str, Any] = {}
        if runs and runs[0].get("feature"):
            entry["feature"] = runs[0]["feature"]
        for proto in ("knn", "linear", "linear_std", "finetune", "supervised"):
            reports = [r[proto] for r in runs if isinstance(r.get(proto), Mapping)]
            if reports:
                summary = summarize_runs([{"top1": r["top1"], "macro_f1": r.get("macro_f1")} for r in reports])
                confusions = [np.asarray(r["confusion"]) for r in reports if "confusion" in r]
                if confusions:
                    summary["confusion_sum"] = np.sum(confusions, axis=0).tolist()
                entry[proto] = summary
        semi_keys = list(dict.fromkeys(k for r in runs for k in (r.get("semi") or {})))
        if semi_keys:
            entry["semi"] = {}
            for k in semi_keys:
                fold_means = [{"top1": r["semi"][k]["mean"], "macro_f1": r["semi"][k].get("macro_f1_mean")}
                              for r in runs if k in (r.get("semi") or {})]
                entry["semi"][k] = summarize_runs(fold_means)
                entry["semi"][k]["fraction"] = float(k)
        out[name] = entry
    return out


def compare_summaries(methods: Mapping[str, Mapping[str, Any]], task: str) -> list[str]:
    """Plain-language checks: does each SSL method beat its random and from-scratch encoder?"""
    notes = []
    for m in SSL_METHODS:
        if m not in methods:
            continue
        arch = encoder_name(m)
        for proto in ("knn", "linear", "linear_std"):
            mine = methods[m].get(proto, {})
            ref = methods.get(f"random-{arch}", {}).get(proto, {})
            a, b = entry_top1(mine), entry_top1(ref)
            if a is not None and b is not None:  # a summary over folds or one run
                verdict = "beats" if a > b else "does NOT beat"
                notes.append(f"{task}: {m} {proto} {format_entry(mine)} {verdict} a random {arch} encoder "
                             f"({format_entry(ref)}).")
        for key, entry in (methods[m].get("semi") or {}).items():
            ref = (methods.get(f"supervised-{arch}", {}).get("semi") or {}).get(key)
            if ref and entry.get("mean") is not None and ref.get("mean") is not None:
                verdict = "beats" if entry["mean"] > ref["mean"] else "does NOT beat"
                notes.append(f"{task}: {m} finetune on {float(key) * 100:g}% of the training recordings "
                             f"{format_entry(entry)} {verdict} from scratch ({format_entry(ref)}).")
    return notes


def _describe(ds: GaitDataset, split: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    recs = list(dict.fromkeys(ds.recording_ids))
    first = {}
    for g, lab in zip(ds.recording_ids, ds.y):
        first.setdefault(g, int(lab))
    per_class = {c: int(sum(1 for v in first.values() if v == k)) for k, c in enumerate(ds.classes)}
    out: dict[str, Any] = {"clips": len(ds), "recordings": len(recs), "frames_per_clip": ds.num_frames,
                           "clips_per_class": ds.class_counts(), "recordings_per_class": per_class}
    if split is not None:
        g = ds.recording_ids
        out["split_recordings"] = {k: len({g[i] for i in v}) for k, v in split.items()}
        out["split_clips"] = {k: int(len(v)) for k, v in split.items()}
    return out


def _semi_curves(results: Mapping[str, Any]) -> dict[str, Any]:
    return {m: r["semi"] for m, r in results.items() if r.get("semi")}


def run_bandai(data: str | Path, out: str | Path, *, schedule: str | Schedule = "default",
               plan: BandaiPlan | None = None, methods: Sequence[str] = SSL_METHODS, device: str = "cpu",
               progress: bool = True, resume: bool = False, overwrite: bool = False, seed: int = 0,
               command: str = "ssal benchmark bandai", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark (module docstring); returns the results written to ``results.json``."""
    from .evaluation import plots

    sched = BENCH_SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    plan = plan or BandaiPlan()
    unknown = [m for m in methods if m not in SSL_METHODS]
    if unknown:
        raise SsalInputError("--methods", f"unknown method(s) {unknown}; known: {list(SSL_METHODS)}")
    t0 = time.perf_counter()
    out = Path(out)
    root = Path(data)
    _require_folder(root)
    if resume and not (out / "schedule.json").is_file():
        raise SsalInputError(out, "nothing to resume: no schedule.json of a benchmark run in this directory")
    # resuming reuses the finished stages of the directory (never deleted either way)
    prepare_run_dir(out, resume=False, overwrite=overwrite or resume)
    check_schedule(out, sched, resume=resume)
    log(f"reading {display_path(root)} ...")
    bd = load_bandai(root, plan, seed=seed)
    log(f"emotion: {len(bd.emotion)} clips of {len(set(bd.emotion.recording_ids))} recordings; style: "
        f"{len(bd.style)} clips of {len(set(bd.style.recording_ids))} recordings; pretraining: "
        f"{len(bd.pretrain_split['train'])} clips")
    timings: dict[str, float] = {}
    overrides = {"data": {"source": str(root)}}

    # 1. pretraining ----------------------------------------------------------------------
    t = time.perf_counter()
    (out / "pretrain").mkdir(parents=True, exist_ok=True)
    save_split(bd.pretrain_split, out / "pretrain" / "split.json", meta={"what": "pretraining clips"},
               groups=bd.pretrain.recording_ids)
    exp_pre = Experiment(dataset=bd.pretrain, split=bd.pretrain_split, schedule=sched, out=out / "pretrain",
                         device=device, progress=progress, seed=seed, log=log, config_overrides=overrides)
    pretrained = {m: run_pretraining(exp_pre, m, m) for m in methods}
    timings["pretraining"] = time.perf_counter() - t
    archs = list(dict.fromkeys(("ssal" if encoder_name(m) == "cffn" else "skeletonclr") for m in methods))

    # 2. emotion, recording-level folds ---------------------------------------------------
    t = time.perf_counter()
    emo = bd.emotion
    emo_sched = sched.with_changes(fractions=plan.emotion_fractions)
    per_fold: list[dict[str, Any]] = []
    folds = kfold(emo.y, k=plan.folds, seed=seed, groups=emo.recording_ids)
    for f, (tr, te) in enumerate(folds):
        fold_dir = out / "emotion" / f"fold{f}"
        done = fold_dir / "results.json"
        if resume and done.is_file():
            per_fold.append(json.loads(done.read_text())["methods"])
            log(f"[emotion fold {f}] reusing {done}")
            continue
        g_tr = [emo.recording_ids[i] for i in tr]
        inner = stratified_split(emo.y[tr], val=0.2, test=0.0, seed=seed + f, groups=g_tr)
        split = {"train": tr[inner["train"]], "val": tr[inner["val"]], "test": te}
        fold_dir.mkdir(parents=True, exist_ok=True)
        save_split(split, fold_dir / "split.json", meta={"fold": f, "folds": plan.folds, "seed": seed},
                   groups=emo.recording_ids)
        exp = Experiment(dataset=emo, split=split, schedule=emo_sched, out=fold_dir, device=device,
                         progress=False, seed=seed, log=log, config_overrides=overrides)
        res: dict[str, Any] = {}
        for m, path in pretrained.items():
            res[m] = evaluate_pretrained(exp, m, path, m)
            res[m].pop("pretrain", None)
        for arch_method in archs:
            sup, rnd = evaluate_from_scratch(exp, arch_method)
            arch = encoder_name(arch_method)
            res[f"supervised-{arch}"], res[f"random-{arch}"] = sup, rnd
        write_report(fold_dir, {"methods": res, "dataset": _describe(emo, split)}, {},
                     command=command, machine="")
        per_fold.append(res)
        log(f"[emotion fold {f}] done")
    emotion_methods = _fold_summary(per_fold)
    timings["emotion"] = time.perf_counter() - t

    # 3. style, few labels ------------------------------------------------------------------
    t = time.perf_counter()
    style_dir = out / "style"
    style_dir.mkdir(parents=True, exist_ok=True)
    save_split(bd.style_split, style_dir / "split.json", meta={"seed": seed}, groups=bd.style.recording_ids)
    exp_s = Experiment(dataset=bd.style, split=bd.style_split, schedule=sched.with_changes(fractions=plan.style_fractions),
                       out=style_dir, device=device, progress=False, seed=seed, log=log, config_overrides=overrides)
    style_methods: dict[str, Any] = {}
    for m, path in pretrained.items():
        style_methods[m] = evaluate_pretrained(exp_s, m, path, m, protocols=("knn", "linear", "semi"))
        style_methods[m].pop("pretrain", None)
    for arch_method in archs:
        sup, rnd = evaluate_from_scratch(exp_s, arch_method, supervised=("semi",), random=("knn", "linear"))
        arch = encoder_name(arch_method)
        style_methods[f"supervised-{arch}"], style_methods[f"random-{arch}"] = sup, rnd
    timings["style"] = time.perf_counter() - t

    # 4. report -----------------------------------------------------------------------------
    plot_dir = out / "plots"
    made: dict[str, Path] = {}
    made.update(pretraining_plots({m: read_metrics(out / "pretrain" / m) for m in pretrained}, plot_dir,
                                  "Pretraining loss on the Bandai-Namco clips",
                                  ("kNN style accuracy (dataset-2 validation recordings) during pretraining",
                                   "kNN style top-1 during pretraining")))
    for name, entry in emotion_methods.items():
        lin = entry.get("linear") or entry.get("supervised")
        if lin and "confusion_sum" in lin and name in pretrained:
            made[f"Emotion confusion, {name} linear, summed over the {plan.folds} test folds"] = plots.plot_confusion(
                np.asarray(lin["confusion_sum"]), emo.classes, plot_dir / f"confusion_emotion_{name}_linear.png",
                title=f"{name} linear: {lin['mean'] * 100:.1f} ± {(lin['std'] or 0) * 100:.1f}% over folds")
    if _semi_curves(emotion_methods):
        made["Emotion: accuracy against the fraction of training recordings"] = plots.plot_fraction_curve(
            _semi_curves(emotion_methods), plot_dir / "emotion_label_fraction.png",
            title="Emotion (4 classes): finetune on a fraction of the training recordings")
    if _semi_curves(style_methods):
        made["Style: accuracy against the fraction of training recordings"] = plots.plot_fraction_curve(
            _semi_curves(style_methods), plot_dir / "style_label_fraction.png",
            title="Style (7 classes, dataset-2): finetune on a fraction of the training recordings")
    first = next(iter(pretrained), None)
    if first is not None:
        from .api import load

        feats = load(pretrained[first]).embed(emo)
        made[f"Emotion clips in the {first} feature space (PCA)"] = plots.plot_embedding(
            feats, emo.y, emo.classes, plot_dir / f"embedding_emotion_{first}.png",
            title=f"{first} features of the {len(emo)} emotion clips (PCA), by emotion")

    notes = compare_summaries(emotion_methods, "emotion") + compare_summaries(style_methods, "style")
    dev = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    results = {
        "benchmark": "bandai-namco", "schedule": sched.to_dict(), "plan": asdict(plan),
        "data": {"source": display_path(root), "emotion": _describe(emo),
                 "style": _describe(bd.style, bd.style_split), "pretrain": _describe(bd.pretrain, bd.pretrain_split)},
        "emotion": {"methods": emotion_methods, "folds": plan.folds},
        "style": {"methods": style_methods},
        "notes": notes, "seconds": round(time.perf_counter() - t0, 1),
        "seconds_by_stage": {k: round(v, 1) for k, v in timings.items()},
    }
    write_report(style_dir, {"methods": style_methods, "dataset": results["data"]["style"], "notes": notes},
                 {}, command=command, machine=machine_description(dev))
    clean = to_jsonable(results)
    _atomic_write(out / "results.json", json.dumps(clean, indent=2, allow_nan=False) + "\n")
    _atomic_write(out / "report.md", _report_text(clean, made, out, command, machine_description(dev)))
    return results


def _report_text(results: Mapping[str, Any], made: Mapping[str, Path], out: Path, command: str,
                 machine: str) -> str:
    import datetime as _dt
    import os

    d = results["data"]
    plan = results["plan"]
    lines = ["# Bandai-Namco benchmark report", "", "Command:", "", "```", command, "```", "",
             f"Machine: {machine}", "",
             f"Written: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; run time "
             f"{results['seconds']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in results['seconds_by_stage'].items())})",
             "", "## Data", "",
             f"- source: {d['source']}; clips of {plan['window']} frames (30 fps)",
             f"- pretraining (no emotion labels): {d['pretrain']['split_clips']['train']} clips "
             f"(dataset-2 training recordings + dataset-1 recordings outside the emotion task)",
             f"- emotion: {d['emotion']['recordings']} dataset-1 locomotion recordings "
             f"({d['emotion']['recordings_per_class']}), {d['emotion']['clips']} clips "
             f"({d['emotion']['clips_per_class']}), {results['emotion']['folds']} recording-level folds",
             f"- style: {d['style']['recordings']} dataset-2 recordings, {d['style']['clips']} clips; split "
             f"(recordings) {d['style']['split_recordings']}", ""]
    for task, title in (("emotion", f"Emotion, 4 classes: mean ± std over {results['emotion']['folds']} folds"),
                        ("style", "Style, 7 classes (dataset-2), few labels: mean ± std over seeds")):
        for metric, caption in (("top1", "top-1 accuracy (%)"), ("macro_f1", "macro-F1 (%)")):
            lines += [f"## {title}, {caption}", "", format_table(results[task], metric), ""]
    lines += ["`semi X%`: finetune on X% of the training recordings of each class (at least one); rows "
              "`supervised-*` train the same architecture from scratch on those labels, `random-*` probe a "
              "random initialisation. Clip-level accuracy on test recordings never seen in training; model "
              "selection on validation recordings.", ""]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    if made:
        lines += ["## Figures", ""]
        for caption, p in made.items():
            rel = os.path.relpath(Path(p).resolve(), out.resolve())
            lines += [f"### {caption}", "", f"![{caption}]({Path(rel).as_posix()})", ""]
    return "\n".join(lines)


__all__ = ["BandaiPlan", "BENCH_SCHEDULES", "load_bandai", "run_bandai", "concat_datasets", "LOCOMOTION", "EMOTIONS"]

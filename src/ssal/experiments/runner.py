"""``ssal benchmark SPEC --data ROOT``: run a benchmark spec end to end.

Read top to bottom (:func:`run_benchmark`):

1. read the spec's labelled clips and make its folds (:mod:`.folds`);
2. read the pretraining corpus: the spec's sources minus every recording that is a test
   recording of some fold, and pretrain each method with encoder snapshots every
   ``snapshot_every`` epochs (epoch 0 is the random initialisation);
3. score every representation on the same folds and draws (:mod:`.scoring`): the raw pose,
   each architecture at random initialisation (the epoch-0 snapshot), each pretrained encoder,
   and each architecture trained from scratch on the same labels;
4. learning curves: the logistic probe on every snapshot;
5. statistics over recordings (:mod:`ssal.evaluation.uncertainty`) and the report
   (:mod:`.report`).

Every stage writes its result into the run directory; ``--resume`` reuses finished stages
(pretraining runs resume from their checkpoints).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..checkpoint import atomic_write_text
from ..config import deep_merge
from ..engine import prepare_run_dir
from ..errors import SsalInputError, display_path
from ..evaluation.metrics import macro_f1
from ..evaluation.probes import raw_pose_features
from ..evaluation.uncertainty import bootstrap_ci, bootstrap_statistic, paired_difference, verdict
from ..pipeline import Experiment, Schedule, encoder_name, run_pretraining
from .corpus import EvalData, read_evaluation, read_pretraining
from .folds import Fold, make_folds
from .scoring import frozen_probes, score_folds, shared_units
from .spec import BenchmarkSpec, BenchSchedule, MethodEntry, load_spec

#: Frames of the raw-pose reference: every 4th frame of the clip.
RAW_POSE_STEP = 4
PROTOCOLS = ("logistic", "logistic_clip", "knn")


def _schedule(sched: BenchSchedule, name: str) -> Schedule:
    """The pipeline schedule of a benchmark schedule (CPU plan or the presets' widths)."""
    changes: dict[str, Any] = dict(pretrain_epochs=sched.pretrain_epochs, batch_size=sched.batch_size, lr=sched.lr,
                                   queue_size=sched.queue_size, clip_len=sched.clip_len, knn_every=0,
                                   pretrain_seeds=(0,))
    if sched.plan == "reference":
        changes.update(channels=None, strides=None, image_channels=None, image_depth=None)
    return Schedule.of(f"bench-{name}", **changes)


def _features(path: Path, data: EvalData) -> np.ndarray:
    from ..api import load

    return load(path, optimize=False).embed(data.dataset)


def _scratch_fit(init: Path, data: EvalData, epochs: int, seed: int) -> Callable[[Fold, np.ndarray], np.ndarray]:
    """End-to-end training from the random initialisation ``init`` (an epoch-0 snapshot) on the
    given clips; no augmentation, the finetune protocol's SGD schedule, the last epoch kept."""
    from ..api import load_encoder
    from ..evaluation.classifier import ClassifierSettings, train_classifier

    encoder0, ck = load_encoder(init)
    clip_len = ck.get("clip_len")

    def fit(fold: Fold, idx: np.ndarray) -> np.ndarray:
        train = data.dataset.subset(idx)
        train.y = fold.local(train.y)
        train.classes = [data.dataset.classes[c] for c in fold.classes]
        settings = ClassifierSettings.for_mode("supervised", epochs=epochs, clip_len=clip_len, select="last",
                                               seed=seed, batch_size=min(64, len(idx)))
        model, _ = train_classifier(copy.deepcopy(encoder0), None, train, None, settings)
        x = torch.from_numpy(np.ascontiguousarray(data.dataset.x[fold.test], dtype=np.float32))
        return model.predict_proba(x).double().numpy()

    return fit


def _stats(scores: dict[str, Any], protocols: Sequence[str], part: str) -> dict[str, Any]:
    """Interval per protocol over the recordings of ``part``."""
    out: dict[str, Any] = {}
    for proto in protocols:
        units = shared_units(part, proto, scores)
        if units:
            out[proto] = bootstrap_ci([scores[proto][r] for r in units]).to_dict()
    units = shared_units(part, "pred", scores)
    if units:
        k = 1 + max(max(scores["truth"].values()), max(scores["pred"].values()))
        out["macro_f1"] = bootstrap_statistic(np.array([scores["truth"][r] for r in units]),
                                              np.array([scores["pred"][r] for r in units]),
                                              lambda t, p: macro_f1(t, p, k)).to_dict()
    return out


def _paired(a: dict[str, Any], b: dict[str, Any], protocols: Sequence[str], part: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto in protocols:
        units = shared_units(part, proto, a, b)
        if units:
            d = paired_difference([a[proto][r] for r in units], [b[proto][r] for r in units])
            out[proto] = {**d.to_dict(), "verdict": verdict(d)}
    return out


def run_benchmark(spec: str | BenchmarkSpec, data: str | Path, out: str | Path, *, schedule: str = "default",
                  methods: Sequence[str] | None = None, device: str = "cpu", seed: int = 0, resume: bool = False,
                  overwrite: bool = False, progress: bool = True, command: str = "ssal benchmark",
                  pretrain_only: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a benchmark spec (module docstring); returns what ``results.json`` holds.

    ``pretrain_only``: stop after pretraining (e.g. pretrain on a GPU machine, or several
    methods in parallel processes, then score everything with ``resume``); returns
    ``{"encoders": {name: path}}``."""
    from .report import write_benchmark_report

    t_start = time.perf_counter()
    spec = spec if isinstance(spec, BenchmarkSpec) else load_spec(spec)
    sched = spec.schedule(schedule)
    root = Path(data)
    if not root.is_dir():
        raise SsalInputError(display_path(root), "data folder not found")
    chosen = _chosen_methods(spec, sched, methods)
    out = Path(out)
    if resume and not (out / "benchmark.json").is_file():  # a resumed run may add methods
        raise SsalInputError(display_path(out), "nothing to resume: no benchmark.json in this directory")
    prepare_run_dir(out, resume=False, overwrite=overwrite or resume)
    identity = {"spec": spec.name, "schedule": schedule, "settings": asdict(sched), "seed": seed}
    _check_identity(out / "benchmark.json", identity, resume)
    timings: dict[str, float] = {}

    # 1. evaluation clips and folds
    t = time.perf_counter()
    ev = read_evaluation(root, spec.evaluation)
    folds = make_folds(ev, spec.split, sched.folds)
    test_recs = sorted({ev.dataset.recording_ids[i] for f in folds for i in f.test})
    log(f"{spec.name}: {len(ev.dataset)} clips of {len(ev.recordings)} recordings, {len(folds)} folds "
        f"({sum(f.part == 'test' for f in folds)} test, {sum(f.part == 'val' for f in folds)} validation)")

    # 2. pretraining
    corpus, used = read_pretraining(root, spec.pretraining, test_recs, sched.pretrain_limit)
    timings["reading"] = time.perf_counter() - t
    log(f"pretraining corpus: {len(corpus)} clips of {len(used)} recordings (no test recording of any fold)")
    t = time.perf_counter()
    n = len(corpus)
    split = {"train": np.arange(n), "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    exp = Experiment(dataset=corpus, split=split, schedule=_schedule(sched, schedule), out=out / "pretrain",
                     device=device, progress=progress, seed=seed, log=log,
                     config_overrides={"data": {"source": str(root)}})
    (out / "pretrain").mkdir(parents=True, exist_ok=True)
    encoders: dict[str, Path] = {}
    for m in chosen:
        _check_identity(out / "pretrain" / f"{m.name}.method.json", asdict(m), True)
        extra = deep_merge(m.set, {"run": {"snapshot_every": sched.snapshot_every or sched.pretrain_epochs}},
                           strict=False)
        encoders[m.name] = run_pretraining(exp, m.name, m.method, extra)
    timings["pretraining"] = time.perf_counter() - t
    if pretrain_only:
        log(f"pretrained: {', '.join(encoders)} (score them with --resume)")
        return {"encoders": {k: str(v) for k, v in encoders.items()}}

    # 3. representations on the same folds and draws
    t = time.perf_counter()
    draws = sched.draws if sched.draws is not None else spec.few_labels.draws
    per_class = spec.few_labels.per_class
    scores: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    feature_memo: dict[Path, np.ndarray] = {}  # the random init is also a curve's epoch 0

    def features(path: Path) -> np.ndarray:
        if path not in feature_memo:
            feature_memo[path] = _features(path, ev)
        return feature_memo[path]

    def cached(path: Path, compute: Callable[[], dict[str, Any]], done: str | None = None) -> dict[str, Any]:
        """Scores read from ``path`` on resume, else computed and written there."""
        if resume and path.is_file():
            return json.loads(path.read_text())
        sc = compute()
        _write_json(path, sc)
        if done:
            log(done)
        return sc

    def frozen(name: str, feats: Callable[[], np.ndarray], kind: dict[str, Any]) -> None:
        def compute() -> dict[str, Any]:
            fit, knn = frozen_probes(feats(), ev)
            return score_folds(ev, folds, fit, knn=knn, per_class=per_class, draws=draws, seed=seed)

        kinds[name] = kind
        scores[name] = cached(out / "scores" / f"{name}.json", compute, f"[{name}] scored")

    frozen("raw-pose", lambda: raw_pose_features(ev.dataset.x, RAW_POSE_STEP),
           {"kind": "reference", "what": f"raw pose, every {RAW_POSE_STEP}th frame flattened, no encoder"})
    archs: dict[str, Path] = {}
    for m in chosen:
        arch = encoder_name(m.method)
        archs.setdefault(arch, _snapshots(encoders[m.name])[0][1])
    for arch, init in archs.items():
        frozen(f"random-{arch}", lambda p=init: features(p),
               {"kind": "reference", "arch": arch, "what": f"{arch} at random initialisation (frozen)"})
    for m in chosen:
        frozen(m.name, lambda p=encoders[m.name]: features(p),
               {"kind": "method", "arch": encoder_name(m.method), "method": m.method, "set": m.set,
                "what": f"{m.method} pretrained {sched.pretrain_epochs} epochs (frozen)"})
    for arch, init in (archs.items() if sched.scratch_epochs else ()):
        name = f"scratch-{arch}"
        kinds[name] = {"kind": "reference", "arch": arch,
                       "what": f"{arch} trained end to end from random init on the same labels "
                               f"({sched.scratch_epochs} epochs, {sched.scratch_draws} draws per few-label size)"}
        scores[name] = cached(
            out / "scores" / f"{name}.json",
            lambda p=init: score_folds(ev, folds, _scratch_fit(p, ev, sched.scratch_epochs, seed), per_class=per_class,
                                       draws=sched.scratch_draws, seed=seed),
            f"[{name}] trained and scored")
    timings["evaluation"] = time.perf_counter() - t

    # 4. learning curves: the logistic probe on every snapshot
    t = time.perf_counter()

    def curve_scores(path: Path) -> dict[str, Any]:
        fit, _ = frozen_probes(features(path), ev)
        return score_folds(ev, folds, fit, per_class=(), draws=0, seed=seed)

    curves: dict[str, list[dict[str, Any]]] = {}
    for m in chosen:
        curves[m.name] = []
        for epoch, path in _snapshots(encoders[m.name]):
            sc = cached(out / "scores" / "curves" / m.name / f"e{epoch:04d}.json", lambda p=path: curve_scores(p))
            point: dict[str, Any] = {"epoch": epoch}
            for part in ("test", "val"):
                st = _stats(sc, ("logistic",), part)
                if "logistic" in st:
                    point[part] = st["logistic"]
            curves[m.name].append(point)
    timings["curves"] = time.perf_counter() - t

    # 5. statistics and report
    few = tuple(f"few{k}" for k in per_class)
    protocols = PROTOCOLS + few
    table: dict[str, Any] = {}
    for name, sc in scores.items():
        table[name] = {**kinds[name], "test": _stats(sc, protocols, "test"), "val": _stats(sc, protocols, "val")}
    for m in chosen:
        arch = encoder_name(m.method)
        refs = {key: ref for key, ref in (("raw-pose", "raw-pose"), ("random", f"random-{arch}"),
                                          ("scratch", f"scratch-{arch}")) if ref in scores}
        table[m.name]["vs"] = {
            part: {key: _paired(scores[m.name], scores[ref], protocols, part) for key, ref in refs.items()}
            for part in ("test", "val")
        }
    histories = {m.name: _history(encoders[m.name]) for m in chosen}
    results = {
        "benchmark": spec.name, "title": spec.title, "about": spec.about, "spec": spec.path,
        "schedule": {"name": schedule, **asdict(sched)}, "seed": seed,
        "data": _describe(ev, folds, corpus, used, display_path(root)),
        "few_labels": {"per_class": list(per_class), "draws": draws},
        "representations": table, "curves": curves, "pretraining": histories,
        "seconds_by_stage": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_benchmark_report(out, results, command=command, device=device)
    log(f"report: {display_path(out / 'report.md')} ({results['seconds']:.0f} s)")
    return results


def _chosen_methods(spec: BenchmarkSpec, sched: BenchSchedule, methods: Sequence[str] | None) -> list[MethodEntry]:
    names = list(methods) if methods else list(sched.methods or [m.name for m in spec.methods])
    by_name = {m.name: m for m in spec.methods}
    unknown = [m for m in names if m not in by_name]
    if unknown:
        raise SsalInputError("--methods", f"unknown method(s) {unknown}; the spec has {list(by_name)}")
    return [by_name[m] for m in names]


def _snapshots(encoder_path: Path) -> list[tuple[int, Path]]:
    folder = encoder_path.parent / "snapshots"
    snaps = sorted((int(p.stem.split("-e")[-1]), p) for p in folder.glob("encoder-e*.pt"))
    if not snaps or snaps[0][0] != 0:
        raise SsalInputError(display_path(folder), "no epoch-0 snapshot (was this run made by ssal benchmark?)")
    return snaps


def _history(encoder_path: Path) -> list[dict[str, Any]]:
    from ..engine import read_metrics

    return read_metrics(encoder_path.parent)


def _check_identity(path: Path, identity: dict[str, Any], resume: bool) -> None:
    text = json.dumps(identity, indent=2, sort_keys=True) + "\n"
    if resume and path.is_file():
        if json.loads(path.read_text()) != json.loads(text):
            raise SsalInputError(display_path(path), "the run was made with other settings (spec, schedule, seed "
                                                     "or a method's variant); start a new run directory")
        return
    atomic_write_text(path, text)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, sort_keys=True) + "\n")


def _describe(ev: EvalData, folds: list[Fold], corpus: Any, used: list[Any], source: str) -> dict[str, Any]:
    groups = np.asarray(ev.dataset.recording_ids)
    per_class: dict[str, int] = {}
    for g in dict.fromkeys(groups):
        c = ev.dataset.classes[int(ev.dataset.y[np.flatnonzero(groups == g)[0]])]
        per_class[c] = per_class.get(c, 0) + 1
    return {
        "source": source, "classes": list(ev.dataset.classes), "clips": len(ev.dataset),
        "recordings": len(ev.recordings), "recordings_per_class": per_class,
        "sessions": sorted({r.fields.get("session", "") for r in ev.recordings.values()}),
        "folds": [{"name": f.name, "part": f.part, "train_clips": int(len(f.train)), "test_clips": int(len(f.test)),
                   "test_recordings": int(len(set(groups[f.test])))} for f in folds],
        "pretraining": {"clips": len(corpus), "recordings": len(used),
                        "sessions": sorted({r.fields.get("session", "") for r in used})},
    }


__all__ = ["run_benchmark"]

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
(pretraining runs resume from their checkpoints). The cut corpora of steps 1 and 2 are kept in
a cache folder (:mod:`.corpus_cache`) and read back on the next run whose spec selects the same
files with the same settings, so it starts training at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_write_text, load_checkpoint
from ..config import deep_merge
from ..errors import SsalInputError, display_path
from ..evaluation.probes import raw_pose_features
from ..methods.registry import encoder_name
from ..training.run_files import prepare_run_dir
from .corpus import EvalData, read_evaluation, read_pretraining
from .corpus_cache import open_cache
from .experiment import Experiment, describe_method
from .folds import Fold, make_folds
from .pretraining import run_pretraining
from .schedule import Schedule
from .scoring import frozen_probes, score_folds, scratch_fit
from .spec import BenchmarkSpec, BenchSchedule, MethodEntry, load_spec
from .summary import PARTS, describe_data, interval_stats, representation_table

#: Frames of the raw-pose reference: every 4th frame of the clip.
RAW_POSE_STEP = 4
#: The scores of every fold's test recordings (:mod:`.scoring`), besides the few-label ones.
SCORE_PROTOCOLS = ("logistic", "logistic_clip", "knn")


def pretraining_schedule(sched: BenchSchedule, name: str) -> Schedule:
    """The experiment schedule of a benchmark schedule: the ``default`` preset with the
    benchmark's pretraining settings (CPU plan or the presets' widths)."""
    changes: dict[str, Any] = dict(pretrain_epochs=sched.pretrain_epochs, batch_size=sched.batch_size, lr=sched.lr,
                                   queue_size=sched.queue_size, clip_len=sched.clip_len, knn_every=0,
                                   pretrain_seeds=(0,))
    if sched.plan == "reference":
        changes.update(channels=None, strides=None, image_channels=None, image_depth=None)
    return Schedule.of(f"bench-{name}", **changes)


def _features(path: Path, data: EvalData) -> np.ndarray:
    from ..inference import load

    return load(path, optimize=False).embed(data.dataset)


def run_benchmark(spec: str | BenchmarkSpec, data: str | Path, out: str | Path, *, schedule: str = "default",
                  methods: Sequence[str] | None = None, device: str = "cpu", seed: int = 0, resume: bool = False,
                  overwrite: bool = False, progress: bool = True, command: str = "ssal benchmark",
                  pretrain_only: bool = False, log: Callable[[str], None] = print, cache: bool = True,
                  cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Run a benchmark spec (module docstring); returns what ``results.json`` holds.

    ``pretrain_only``: stop after pretraining (e.g. pretrain on a GPU machine, or several
    methods in parallel processes, then score everything with ``resume``); returns
    ``{"encoders": {name: path}}``. ``cache``: read and write the cut corpora in ``cache_dir``
    (``None``: :func:`~.corpus_cache.default_cache_dir`; never inside ``data``)."""
    from .report import write_benchmark_report

    t_start = time.perf_counter()
    spec = spec if isinstance(spec, BenchmarkSpec) else load_spec(spec)
    sched = spec.schedule(schedule)
    root = Path(data)
    if not root.is_dir():
        raise SsalInputError(display_path(root), "data folder not found")
    chosen = _chosen_methods(spec, sched, methods)
    corpora = open_cache(cache_dir, root, log) if cache else None
    out = Path(out)
    if resume and not (out / "benchmark.json").is_file():  # a resumed run may add methods
        raise SsalInputError(display_path(out), "nothing to resume: no benchmark.json in this directory")
    prepare_run_dir(out, resume=False, overwrite=overwrite or resume)
    identity = {"spec": spec.name, "schedule": schedule, "settings": asdict(sched), "seed": seed}
    _check_identity(out / "benchmark.json", identity, resume)
    timings: dict[str, float] = {}

    # 1. evaluation clips and folds
    t = time.perf_counter()
    ev = read_evaluation(root, spec.evaluation, corpora)
    folds = make_folds(ev, spec.split, sched.folds)
    test_recs = sorted({ev.dataset.recording_ids[i] for f in folds for i in f.test})
    log(f"{spec.name}: {len(ev.dataset)} clips of {len(ev.recordings)} recordings, {len(folds)} folds "
        f"({sum(f.part == 'test' for f in folds)} test, {sum(f.part == 'val' for f in folds)} validation)")

    # 2. pretraining
    corpus, used = read_pretraining(root, spec.pretraining, test_recs, sched.pretrain_limit, corpora)
    timings["reading"] = time.perf_counter() - t
    log(f"pretraining corpus: {len(corpus)} clips of {len(used)} recordings (no test recording of any fold)")
    t = time.perf_counter()
    encoders = _pretrain(corpus, chosen, sched, pretraining_schedule(sched, schedule), out, root, device=device,
                         progress=progress, seed=seed, log=log)
    timings["pretraining"] = time.perf_counter() - t
    if pretrain_only:
        log(f"pretrained: {', '.join(encoders)} (score them with --resume)")
        return {"encoders": {k: str(v) for k, v in encoders.items()}}

    # 3. representations on the same folds and draws
    t = time.perf_counter()
    draws = sched.draws if sched.draws is not None else spec.few_labels.draws
    per_class = spec.few_labels.per_class
    scoring = _Scoring(ev, folds, out, resume, seed, per_class, draws, log)
    _score_representations(scoring, chosen, encoders, sched)
    timings["evaluation"] = time.perf_counter() - t

    # 4. learning curves: the logistic probe on every snapshot
    t = time.perf_counter()
    curves = {m.name: scoring.curve(m.name, encoders[m.name]) for m in chosen}
    timings["curves"] = time.perf_counter() - t

    # 5. statistics and report
    protocols = SCORE_PROTOCOLS + tuple(f"few{k}" for k in per_class)
    results = {
        "benchmark": spec.name, "title": spec.title, "about": spec.about, "spec": spec.path,
        "schedule": {"name": schedule, **asdict(sched)}, "seed": seed,
        "data": describe_data(ev, folds, corpus, used, display_path(root)),
        "few_labels": {"per_class": list(per_class), "draws": draws},
        "representations": representation_table(scoring.scores, scoring.kinds, chosen, protocols),
        "curves": curves, "pretraining": {m.name: _history(encoders[m.name]) for m in chosen},
        "seconds_by_stage": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_benchmark_report(out, results, command=command, device=device)
    log(f"report: {display_path(out / 'report.md')} ({results['seconds']:.0f} s)")
    return results


@dataclass
class _Scoring:
    """Scores of representations on the benchmark's folds and draws, each written to
    ``out / scores`` (read back on resume); encoder features computed once per file."""

    ev: EvalData
    folds: list[Fold]
    out: Path
    resume: bool
    seed: int
    per_class: tuple[int, ...]
    draws: int
    log: Callable[[str], None]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    memo: dict[Path, np.ndarray] = field(default_factory=dict)  # the random init is also a curve's epoch 0

    def features(self, path: Path) -> np.ndarray:
        if path not in self.memo:
            self.memo[path] = _features(path, self.ev)
        return self.memo[path]

    def cached(self, path: Path, compute: Callable[[], dict[str, Any]], done: str | None = None) -> dict[str, Any]:
        """Scores read from ``path`` on resume, else computed and written there."""
        if self.resume and path.is_file():
            return json.loads(path.read_text())
        sc = compute()
        _write_json(path, sc)
        if done:
            self.log(done)
        return sc

    def frozen(self, name: str, feats: Callable[[], np.ndarray], kind: dict[str, Any]) -> None:
        """Frozen features probed by logistic regression and kNN (every protocol and draw)."""
        def compute() -> dict[str, Any]:
            fit, knn = frozen_probes(feats(), self.ev)
            return score_folds(self.ev, self.folds, fit, knn=knn, per_class=self.per_class, draws=self.draws,
                               seed=self.seed)

        self.kinds[name] = kind
        self.scores[name] = self.cached(self.out / "scores" / f"{name}.json", compute, f"[{name}] scored")

    def scratch(self, arch: str, init: Path, epochs: int, draws: int) -> None:
        """``arch`` trained end to end on each fold from the random initialisation ``init``."""
        name = f"scratch-{arch}"
        self.kinds[name] = {"kind": "reference", "arch": arch,
                            "what": f"{arch} trained end to end from random init on the same labels "
                                    f"({epochs} epochs, {draws} draws per few-label size)"}

        def compute() -> dict[str, Any]:
            return score_folds(self.ev, self.folds, scratch_fit(init, self.ev, epochs, self.seed),
                               per_class=self.per_class, draws=draws, seed=self.seed)

        self.scores[name] = self.cached(self.out / "scores" / f"{name}.json", compute, f"[{name}] trained and scored")

    def curve(self, name: str, encoder_path: Path) -> list[dict[str, Any]]:
        """The logistic probe's intervals on every snapshot of a pretraining run."""
        points = []
        for epoch, path in _snapshots(encoder_path):
            sc = self.cached(self.out / "scores" / "curves" / name / f"e{epoch:04d}.json",
                             partial(self._curve_scores, path))
            point: dict[str, Any] = {"epoch": epoch}
            for part in PARTS:
                st = interval_stats(sc, ("logistic",), part)
                if "logistic" in st:
                    point[part] = st["logistic"]
            points.append(point)
        return points

    def _curve_scores(self, path: Path) -> dict[str, Any]:
        fit, _ = frozen_probes(self.features(path), self.ev)
        return score_folds(self.ev, self.folds, fit, per_class=(), draws=0, seed=self.seed)


def _pretrain(corpus: Any, chosen: Sequence[MethodEntry], sched: BenchSchedule, schedule: Schedule, out: Path,
              root: Path, *, device: str, progress: bool, seed: int,
              log: Callable[[str], None]) -> dict[str, Path]:
    """Pretrain each chosen method on the whole corpus, with encoder snapshots; ``{name: encoder.pt}``."""
    n = len(corpus)
    split = {"train": np.arange(n), "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    exp = Experiment(dataset=corpus, split=split, schedule=schedule, out=out / "pretrain", device=device,
                     progress=progress, seed=seed, log=log, config_overrides={"data": {"source": str(root)}})
    (out / "pretrain").mkdir(parents=True, exist_ok=True)
    encoders: dict[str, Path] = {}
    for m in chosen:
        _check_identity(out / "pretrain" / f"{m.name}.method.json", asdict(m), True)
        extra = deep_merge(m.set, {"run": {"snapshot_every": sched.snapshot_every or sched.pretrain_epochs}},
                           strict=False)
        encoders[m.name] = run_pretraining(exp, m.name, m.method, extra)
    return encoders


def _score_representations(scoring: _Scoring, chosen: Sequence[MethodEntry], encoders: dict[str, Path],
                           sched: BenchSchedule) -> None:
    """The raw pose, each architecture at random init, each pretrained encoder, and each
    architecture trained from scratch, on the same folds and draws."""
    scoring.frozen("raw-pose", partial(raw_pose_features, scoring.ev.dataset.x, RAW_POSE_STEP),
                   {"kind": "reference", "what": f"raw pose, every {RAW_POSE_STEP}th frame flattened, no encoder"})
    archs: dict[str, Path] = {}
    for m in chosen:
        archs.setdefault(encoder_name(m.method), _snapshots(encoders[m.name])[0][1])
    for arch, init in archs.items():
        scoring.frozen(f"random-{arch}", partial(scoring.features, init),
                       {"kind": "reference", "arch": arch, "what": f"{arch} at random initialisation (frozen)"})
    for m in chosen:
        trained = describe_method(load_checkpoint(encoders[m.name])["config"], sched.plan == "cpu")
        scoring.frozen(m.name, partial(scoring.features, encoders[m.name]),
                       {"kind": "method", "arch": encoder_name(m.method), "method": m.method, "set": m.set,
                        "what": f"{m.method} pretrained {sched.pretrain_epochs} epochs (frozen)", "trained": trained})
    for arch, init in (archs.items() if sched.scratch_epochs else ()):
        scoring.scratch(arch, init, sched.scratch_epochs, sched.scratch_draws)


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
    from ..training.run_files import read_metrics

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


__all__ = ["run_benchmark", "pretraining_schedule", "SCORE_PROTOCOLS"]

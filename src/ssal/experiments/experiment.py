"""One dataset, one split, one schedule: the :class:`Experiment` every job of this package
works on, how it is set up (:func:`prepare_experiment`: data, split, run directory, schedule
record) and the configuration it reads (split fractions, kNN settings, a method's config).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import resolve_config
from ..data.configured import load_configured_dataset
from ..data.dataset import GaitDataset
from ..data.splits import load_split, save_split, stratified_split
from ..errors import SsalInputError
from ..evaluation import KnnSettings
from ..training.run_files import prepare_run_dir
from .schedule import Schedule


@dataclass
class Experiment:
    """One dataset, one split, one schedule: the shared state of an experiment's run."""

    dataset: GaitDataset
    split: dict[str, np.ndarray]
    schedule: Schedule
    out: Path
    device: str = "cpu"
    progress: bool = True
    seed: int = 0
    log: Callable[[str], None] = print
    config_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> GaitDataset:
        return self.dataset.subset(self.split["train"])

    @property
    def val(self) -> GaitDataset:
        return self.dataset.subset(self.split["val"])

    @property
    def test(self) -> GaitDataset:
        return self.dataset.subset(self.split["test"])


def configured(section: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One section of the configuration (``"data"``, ``"run"``): the section of ``overrides``
    (config overrides) typed by its schema, the schema defaults where it names nothing."""
    from ..config import DataConfig, RunConfig, typed_section

    schema = {"data": DataConfig, "run": RunConfig}[section]
    return asdict(typed_section(schema, (overrides or {}).get(section) or {}, None, f"{section}."))


def split_fractions(overrides: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """``(data.val_fraction, data.test_fraction)`` of the configuration (see :func:`configured`)."""
    data = configured("data", overrides)
    return float(data["val_fraction"]), float(data["test_fraction"])


def knn_settings(overrides: Mapping[str, Any] | None = None, clip_len: int | None = None) -> KnnSettings:
    """The kNN protocol's settings: ``run.knn_k`` and ``run.knn_temperature`` of the configuration
    (see :func:`configured`)."""
    return KnnSettings.from_run(configured("run", overrides), clip_len)


def method_config(exp: Experiment, method: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved pretraining configuration of ``method`` under the experiment's schedule."""
    from ..config import deep_merge

    overrides = deep_merge(exp.schedule.overrides(method), exp.config_overrides, strict=False)
    overrides = deep_merge(overrides, {"seed": exp.seed, "run": {"device": exp.device, "progress": exp.progress}},
                           strict=False)
    if extra:
        overrides = deep_merge(overrides, extra, strict=False)
    return resolve_config(method, overrides=overrides)


def describe(exp: Experiment) -> dict[str, Any]:
    """Dataset facts for the report."""
    ds = exp.dataset
    return {"source": ds.meta.get("source", "?"), "sequences": len(ds), "frames": ds.num_frames,
            "joints": ds.layout.num_joints, "layout": ds.layout.name, "classes": ds.classes,
            "class_counts": ds.class_counts(),
            "split_sizes": {k: int(len(v)) for k, v in exp.split.items()}}


def describe_method(cfg: Mapping[str, Any], cpu_plan: bool) -> str:
    """One line on what a method was trained as (its resolved configuration): encoder, learner,
    optimiser and whether these are the CPU plan's sizes, e.g. ``ST-GCN 16-32-32-64-64; Barlow
    Twins on 3 views, projector 1024; adam lr 0.005, 10 epochs, clip 32 frames (CPU plan)``."""
    from ..methods.learners import learner_summary
    from ..models import encoder_summary

    model, train = cfg["model"], cfg["train"]
    plan = "CPU plan" if cpu_plan else "reference sizes"
    return (f"{encoder_summary(model['encoder'])}; {learner_summary(model)}; {train['optimizer']} lr "
            f"{train['lr']:g}, {train['epochs']} epochs, clip {model['augment']['general']['clip_len']} frames ({plan})")


def check_schedule(out: Path, schedule: Schedule, *, resume: bool) -> None:
    """Record ``schedule`` in ``out / schedule.json``; on resume, refuse a different one.

    A resumed run reuses the finished pretraining stages of the directory, so mixing two
    schedules would silently compare encoders trained for different lengths.
    """
    from ..checkpoint import atomic_write_text

    path = out / "schedule.json"
    current = json.loads(json.dumps(schedule.to_dict()))
    if resume and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SsalInputError(path, f"unreadable schedule record ({exc})") from None
        pretrain = json.loads(json.dumps(asdict(schedule.pretrain)))
        changed = sorted(k for k, v in pretrain.items() if saved.get(k) != v)
        if changed:
            raise SsalInputError(out, f"was started with the {saved.get('name', '?')!r} schedule; resuming with "
                                      f"{schedule.name!r} would change {', '.join(changed)}: use the same flags "
                                      f"or a new --out")
        # Evaluation settings (epochs of the probes, fractions, seeds) may change on resume.
    atomic_write_text(path, json.dumps(current, indent=2))


def check_settings(out: Path, settings: Mapping[str, Any], *, resume: bool) -> None:
    """Record the command line's setting overrides of every pretraining (``--config``, ``--set``:
    ``train``, ``model``, ``run`` keys) in ``out / settings.json``; on resume, refuse others
    (``run`` keys excepted: device, threads and progress belong to the invocation)."""
    from ..checkpoint import atomic_write_text

    path = out / "settings.json"
    current = json.loads(json.dumps({k: v for k, v in settings.items() if k != "data"}))
    if resume and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SsalInputError(path, f"unreadable settings record ({exc})") from None
        changed = sorted(k for k in set(saved) | set(current) if k != "run" and saved.get(k) != current.get(k))
        if changed:
            raise SsalInputError(out, f"was started with other {', '.join(changed)} settings ({path.name}); "
                                      "resume with the same --config/--set or use a new --out")
    elif resume and any(k != "run" for k in current):
        raise SsalInputError(out, "was started without setting overrides; resume without --config/--set of "
                                  f"{', '.join(sorted(k for k in current if k != 'run'))} or use a new --out")
    if current:
        atomic_write_text(path, json.dumps(current, indent=2))


def prepare_experiment(out: str | Path, *, schedule: Schedule, data: Any = "builtin", labels: str | None = None,
                       label_map: str | None = None,
                       resume: bool = False, overwrite: bool = False, device: str = "cpu", progress: bool = True,
                       seed: int = 0, log: Callable[[str], None] = print,
                       config_overrides: Mapping[str, Any] | None = None,
                       split_file: str | Path | None = None) -> Experiment:
    """Load the data, make (or reload) the split and set up the run directory.

    ``config_overrides`` (``train``, ``model``, ``run`` and ``data`` sections) apply to every
    pretraining of the experiment, over the schedule's values (:func:`method_config`); they are
    recorded in ``settings.json`` and must match on resume (:func:`check_settings`).

    ``data`` is a ``data`` section (:class:`~ssal.config.DataConfig` or a mapping: source and
    reading settings) or, with ``labels`` and ``label_map``, the source alone. The split keeps
    the dataset's groups (``data.group_by``) on one side; ``split_file``: a split JSON to use
    instead, checked against the dataset before anything is written into ``out``.
    """
    from ..config import deep_merge
    from ..data.configured import data_section

    out = Path(out)
    if resume and not (out / "split.json").is_file():
        raise SsalInputError(out, "nothing to resume: no split.json in this directory")
    if not resume:
        prepare_run_dir(out, resume=False, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    given = ({"source": data, "labels": labels, "label_map": label_map} if isinstance(data, (str, Path))
             else asdict(data) if not isinstance(data, Mapping) else dict(data))
    overrides = dict(config_overrides or {})
    section = data_section(deep_merge(given, overrides.get("data") or {}, strict=False))
    if section.source == "builtin":
        section = replace(section, builtin_n=schedule.pretrain.corpus_size)
    dataset = load_configured_dataset(section)
    if len(dataset.labelled) < len(dataset.classes) * 3:
        raise SsalInputError(section.source, "too few labelled sequences to evaluate (need at least 3 per class)")
    given_split = load_split(split_file, n=len(dataset)) if split_file is not None else None
    check_schedule(out, schedule, resume=resume)
    check_settings(out, overrides, resume=resume)
    overrides["data"] = asdict(section)
    split_path = out / "split.json"
    if split_path.is_file() and resume and given_split is None:
        split = load_split(split_path)
    elif given_split is not None:
        split = given_split
        save_split(split, split_path)
    else:
        split = stratified_split(dataset.y, val=section.val_fraction, test=section.test_fraction, seed=seed,
                                 groups=dataset.groups)
        save_split(split, split_path)
    split = {k: np.asarray(v, dtype=np.int64) for k, v in split.items()}
    return Experiment(dataset=dataset, split=split, schedule=schedule, out=out, device=device, progress=progress,
                      seed=seed, log=log, config_overrides=overrides)


__all__ = ["Experiment", "prepare_experiment", "check_schedule", "check_settings", "describe", "method_config", "configured",
           "split_fractions", "knn_settings"]

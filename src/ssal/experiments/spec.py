"""A benchmark defined as data: which files, which labels and groups, which split, which draws,
which pretraining corpus, which methods and schedules (``ssal benchmark SPEC --data ROOT``).

A spec is a YAML file; the shipped ones live in ``ssal/experiments/specs/`` and are named
without their suffix (``bandai-affect``, ``bandai-style``); any other path is read as a user's
own spec. Its keys (every one checked, unknown keys refused with the key's name):

``name``, ``title``, ``about`` (text for the report: what the task is and what it confounds);
``extends`` (optional): a base spec whose keys this one overrides (mappings merge, lists and
values replace), e.g. a study that keeps ``bandai-affect``'s data and changes its methods.

``evaluation``: the labelled recordings.
    ``folder`` (relative to ``--data``), ``pattern`` (file-name template, :mod:`ssal.data.names`),
    ``label`` (the field that is the class), ``classes`` (optional list: order and selection),
    ``rename`` (raw value -> class), ``where`` / ``where_not`` (field -> list of values kept /
    dropped), ``window`` and ``stride`` (clip length and step in frames at 30 fps). Fields are the
    pattern's, plus ``session`` (the capture session read from the BVH header,
    :mod:`ssal.data.bvh_header`) and ``file`` (the file name without extension: the recording).

``split``: ``scheme`` is ``leave-one-out`` (every value of the field ``by`` is once the test
    part) or ``fixed`` (``train`` and ``test``: field -> values). ``validation``: values of ``by``
    whose folds are for choosing settings (study tables), never in the headline. ``within``:
    a field whose values are separate tasks (the classes present in each; e.g. style within a
    capture session).

``few_labels``: ``per_class`` (labelled recordings per class drawn from the training part) and
    ``draws`` (seeded draws per fold and size; the same draws for every representation).

``pretraining``: ``sources`` (each with ``folder``, ``pattern``, ``where`` / ``where_not``),
    ``window``, ``stride``. No evaluation *test* recording may be in the corpus (checked).

``methods``: method presets to pretrain, or ``{name, method, set}`` variants (``set``: config
    overrides, e.g. the ``gait`` variants).

``schedules``: name -> settings; ``default`` writes every setting, the others change only what
    they name (``pretrain_epochs``, ``snapshot_every``, ``batch_size``, ``lr``,
    ``queue_size``, ``clip_len``, ``plan`` (``cpu``: the reduced 5-layer encoder; ``reference``:
    the presets' widths), ``pretrain_limit`` (files per source; ``null``: all), ``draws``,
    ``scratch_epochs`` (0: no from-scratch reference), ``scratch_draws``, ``methods`` (a subset; ``null``: all), ``folds``
    (test folds kept; ``null``: all)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.schema import ModelConfig, TrainConfig
from ..errors import SsalInputError
from .typed_yaml import YamlKind, read_extending, shipped, typed

#: The shipped specs (``specs/``) and the words of their messages.
SPEC = YamlKind(folder="specs", noun="benchmark spec", short="spec", unknown="benchmark", arg="SPEC")


@dataclass(frozen=True)
class FileSelection:
    """Files of one folder and the fields read from their names (and headers)."""

    folder: str
    pattern: str
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    where_not: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def keeps(self, fields_: Mapping[str, str]) -> bool:
        """Whether a file with these fields passes ``where`` and ``where_not``."""
        for k, values in self.where.items():
            if fields_.get(k) not in values:
                return False
        return all(fields_.get(k) not in values for k, values in self.where_not.items())


@dataclass(frozen=True)
class EvaluationSpec(FileSelection):
    """The labelled recordings and how they are cut into clips."""

    label: str = "label"
    classes: tuple[str, ...] | None = None
    rename: dict[str, str] = field(default_factory=dict)
    window: int = 60
    stride: int = 20


@dataclass(frozen=True)
class SplitSpec:
    """How recordings are split into folds (module docstring)."""

    scheme: str = "leave-one-out"
    by: str = "content"
    validation: tuple[str, ...] = ()
    train: dict[str, tuple[str, ...]] = field(default_factory=dict)
    test: dict[str, tuple[str, ...]] = field(default_factory=dict)
    within: str | None = None


@dataclass(frozen=True)
class FewLabelSpec:
    per_class: tuple[int, ...] = (1, 2)
    draws: int = 20


@dataclass(frozen=True)
class PretrainingSpec:
    sources: tuple[FileSelection, ...] = ()
    window: int = 60
    stride: int = 30


@dataclass(frozen=True)
class MethodEntry:
    """A method preset under a name, with config overrides (a variant such as ``skeletonclr-gait``)."""

    name: str
    method: str
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchSchedule:
    """How long a benchmark run trains (one entry of the spec's ``schedules``)."""

    # Required: the spec's ``default`` schedule writes them, the others are read over it.
    pretrain_epochs: int
    snapshot_every: int
    clip_len: int
    plan: str
    scratch_epochs: int
    scratch_draws: int
    batch_size: int = TrainConfig.batch_size  # the run's defaults (schema: train.*, model.*)
    lr: float = TrainConfig.lr
    queue_size: int = ModelConfig.queue_size
    pretrain_limit: int | None = None
    draws: int | None = None
    methods: tuple[str, ...] | None = None
    folds: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark (module docstring)."""

    name: str
    evaluation: EvaluationSpec
    split: SplitSpec
    pretraining: PretrainingSpec
    methods: tuple[MethodEntry, ...]
    schedules: dict[str, BenchSchedule]
    few_labels: FewLabelSpec = field(default_factory=FewLabelSpec)
    title: str = ""
    about: str = ""
    path: str = ""

    def schedule(self, name: str) -> BenchSchedule:
        if name not in self.schedules:
            raise SsalInputError("--schedule", f"spec {self.name!r} has no schedule {name!r} "
                                               f"(it has: {', '.join(self.schedules)})")
        return self.schedules[name]


# ----------------------------------------------------------------------------- reading


def shipped_specs() -> list[str]:
    """Names of the specs shipped in the package."""
    return shipped(SPEC)


def load_spec(name_or_path: str) -> BenchmarkSpec:
    """Read and check a benchmark spec: a shipped name or a path (module docstring)."""
    raw, where = read_extending(SPEC, name_or_path)
    allowed = {"name", "title", "about", "evaluation", "split", "few_labels", "pretraining", "methods", "schedules"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SsalInputError(where, f"unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(allowed))})")
    for key in ("name", "evaluation", "split", "pretraining", "methods", "schedules"):
        if key not in raw:
            raise SsalInputError(where, f"missing key {key!r}")
    ev = typed(EvaluationSpec, raw["evaluation"], where, "evaluation")
    split = typed(SplitSpec, raw["split"], where, "split")
    if split.scheme not in ("leave-one-out", "fixed"):
        raise SsalInputError(where, f"split.scheme: {split.scheme!r} is not leave-one-out or fixed")
    if split.scheme == "fixed" and not (split.train and split.test):
        raise SsalInputError(where, "split: a fixed split needs train and test (field -> values)")
    few = typed(FewLabelSpec, raw.get("few_labels") or {}, where, "few_labels")
    if not all(n >= 1 for n in few.per_class):
        raise SsalInputError(where, "few_labels.per_class: expected a list of positive whole numbers")
    pre_raw = raw["pretraining"]
    if not isinstance(pre_raw, Mapping) or not isinstance(pre_raw.get("sources"), list) or not pre_raw["sources"]:
        raise SsalInputError(where, "pretraining.sources: expected a non-empty list of file selections")
    sources = tuple(typed(FileSelection, s, where, f"pretraining.sources[{i}]") for i, s in enumerate(pre_raw["sources"]))
    pre = typed(PretrainingSpec, {k: v for k, v in pre_raw.items() if k != "sources"}, where, "pretraining")
    pre = PretrainingSpec(sources=sources, window=pre.window, stride=pre.stride)
    methods: list[MethodEntry] = []
    if not isinstance(raw["methods"], list) or not raw["methods"]:
        raise SsalInputError(where, "methods: expected a non-empty list")
    for i, m in enumerate(raw["methods"]):
        if isinstance(m, str):
            methods.append(MethodEntry(name=m, method=m))
        else:
            methods.append(typed(MethodEntry, m, where, f"methods[{i}]"))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise SsalInputError(where, "methods: two entries share a name")
    if not isinstance(raw["schedules"], Mapping) or not raw["schedules"]:
        raise SsalInputError(where, "schedules: expected name -> settings")
    base = raw["schedules"].get("default")
    if not isinstance(base, Mapping):
        raise SsalInputError(where, "schedules.default: required (every setting of a schedule; the other "
                                    "schedules change only what they name)")
    schedules = {str(k): typed(BenchSchedule, {**base, **(v or {})}, where, f"schedules.{k}")
                 for k, v in raw["schedules"].items()}
    for k, s in schedules.items():
        if s.plan not in ("cpu", "reference"):
            raise SsalInputError(where, f"schedules.{k}.plan: {s.plan!r} is not cpu or reference")
        for m in s.methods or ():
            if m not in names:
                raise SsalInputError(where, f"schedules.{k}.methods: {m!r} is not one of the spec's methods")
    return BenchmarkSpec(name=str(raw["name"]), title=str(raw.get("title") or ""), about=str(raw.get("about") or ""),
                         evaluation=ev, split=split, few_labels=few, pretraining=pre, methods=tuple(methods),
                         schedules=schedules, path=where)


__all__ = ["BenchmarkSpec", "BenchSchedule", "EvaluationSpec", "FileSelection", "FewLabelSpec", "MethodEntry",
           "PretrainingSpec", "SplitSpec", "load_spec", "shipped_specs"]

"""How long each stage of an experiment runs: a :class:`Schedule` = a name, a
:class:`PretrainSchedule` and an :class:`EvalSchedule`.

Schedules are YAML presets in ``ssal/experiments/schedules/``: ``default.yaml`` writes every
field once, with a comment saying what it is; ``quick.yaml`` and ``full.yaml`` say
``extends: default`` and list only what differs. :func:`load_schedule` reads a preset name or
the path of a user's file (the same typed loader as the benchmark specs,
:mod:`.typed_yaml`); :data:`SCHEDULES` holds the presets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..config.resolve import deep_merge
from ..errors import SsalInputError
from ..methods.registry import encoder_name, load_method_config, method_cpu_plan, method_learner
from .typed_yaml import YamlKind, read_extending, shipped, typed

#: The shipped presets (``schedules/``) and the words of their messages.
SCHEDULE = YamlKind(folder="schedules", noun="schedule", short="schedule", unknown="schedule", arg="schedule")


@dataclass(frozen=True)
class PretrainSchedule:
    """The settings that shape the pretrained encoders (and the corpus they are trained on);
    what each field is: ``schedules/default.yaml``.

    A resumed experiment reuses finished pretraining stages, so these must match on resume.
    """

    corpus_size: int
    pretrain_epochs: int
    batch_size: int
    lr: float
    lr_milestones: tuple[int, ...]
    clip_len: int
    queue_size: int
    momentum: float
    knn_every: int
    pretrain_seeds: tuple[int, ...]
    channels: tuple[int, ...] | None
    strides: tuple[int, ...] | None
    image_channels: int | None
    image_depth: int | None

    @property
    def cpu_plan(self) -> bool:
        """Whether this schedule trains the CPU plan: it sets the reduced ST-GCN widths
        (``channels``); ``null`` keeps the presets' reference sizes."""
        return self.channels is not None

    def overrides(self, method: str) -> dict[str, Any]:
        """Config overrides of this schedule for one method.

        Every method takes the epochs, the batch, the clip length and the kNN monitor. A method
        whose preset has no optimiser recipe of its own (no ``train.lr``: the MoCo presets) also
        takes the schedule's rate and milestones (one with its own keeps it, its warm-up scaled
        by the ratio of the epochs); a MoCo learner the queue and momentum; an
        ST-GCN or CFFN encoder the reduced widths, CFFN its image branch. A CPU plan (``channels``
        set) also applies the preset's own ``cpu_plan`` (:func:`ssal.methods.registry.method_cpu_plan`:
        PSTL's smaller projector, MAMP's smaller transformer, whose window of frames is then the
        schedule's clip length)."""
        model: dict[str, Any] = {"augment": {"general": {"clip_len": self.clip_len}}}
        if method_learner(method) == "moco":
            model.update(queue_size=self.queue_size, momentum=self.momentum)
        enc: dict[str, Any] = {}
        if self.channels is not None and encoder_name(method) in ("stgcn", "cffn"):  # the CPU plan
            enc["channels"] = list(self.channels)
            enc["strides"] = list(self.strides) if self.strides is not None else None
            enc["hidden_dim"] = None  # the last width is the last entry of channels
        if encoder_name(method) == "cffn":
            if self.image_channels is not None:
                enc["image_channels"] = self.image_channels
            if self.image_depth is not None:
                enc["image_depth"] = self.image_depth
        if enc:
            model["encoder"] = enc
        train: dict[str, Any] = {"epochs": self.pretrain_epochs, "batch_size": self.batch_size}
        own = load_method_config(method).get("train", {})
        if "lr" not in own:
            train.update(lr=self.lr, lr_milestones=list(self.lr_milestones))
        elif own.get("warmup_epochs") and own.get("epochs"):  # the recipe's warm-up, scaled
            train["warmup_epochs"] = max(1, round(own["warmup_epochs"] * self.pretrain_epochs / own["epochs"]))
        overrides = {"model": model, "train": train, "run": {"knn_every": self.knn_every}}
        if self.cpu_plan:
            overrides = deep_merge(overrides, method_cpu_plan(method), strict=False)
            if encoder_name(method) == "transformer":  # its window is the schedule's clip
                overrides = deep_merge(overrides, {"model": {"encoder": {"num_frames": self.clip_len}}}, strict=False)
        return overrides


@dataclass(frozen=True)
class EvalSchedule:
    """The settings of the evaluation protocols (free to change on resume); what each field is:
    ``schedules/default.yaml``."""

    linear_epochs: int
    linear_lr: float
    linear_std_lr: float
    finetune_epochs: int
    finetune_lr: float
    semi_epochs: int
    semi_steps: int | None
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    semi_validations: int | None = 5


_PRETRAIN_KEYS = tuple(f.name for f in fields(PretrainSchedule))
_EVAL_KEYS = tuple(f.name for f in fields(EvalSchedule))


@dataclass(frozen=True)
class Schedule:
    """How long each stage runs: a name, a :class:`PretrainSchedule` and an :class:`EvalSchedule`.

    :meth:`of` and :meth:`with_changes` take the flat field names of both parts
    (``Schedule.of("mine", pretrain_epochs=2, linear_epochs=20)``); :meth:`to_dict` is the flat
    record written to ``schedule.json`` and ``results.json``.
    """

    name: str
    pretrain: PretrainSchedule
    evaluation: EvalSchedule

    @classmethod
    def of(cls, name: str, **changes: Any) -> Schedule:
        """The ``default`` preset named ``name``, with flat field changes applied."""
        return SCHEDULES["default"].with_changes(name=name, **changes)

    def with_changes(self, **changes: Any) -> Schedule:
        """A copy with flat field changes (``name`` or any field of either part) applied."""
        unknown = sorted(set(changes) - {"name", *_PRETRAIN_KEYS, *_EVAL_KEYS})
        if unknown:
            raise SsalInputError("schedule", f"unknown schedule field(s) {', '.join(unknown)}")
        pre = {k: v for k, v in changes.items() if k in _PRETRAIN_KEYS}
        ev = {k: v for k, v in changes.items() if k in _EVAL_KEYS}
        return replace(self, name=changes.get("name", self.name), pretrain=replace(self.pretrain, **pre),
                       evaluation=replace(self.evaluation, **ev))

    def to_dict(self) -> dict[str, Any]:
        """The flat record: ``name``, then the pretraining fields, then the evaluation fields."""
        return {"name": self.name, **asdict(self.pretrain), **asdict(self.evaluation)}

    def overrides(self, method: str) -> dict[str, Any]:
        """Config overrides of this schedule for one method (:meth:`PretrainSchedule.overrides`)."""
        return self.pretrain.overrides(method)


def shipped_schedules() -> list[str]:
    """Names of the schedule presets shipped in the package."""
    return shipped(SCHEDULE)


def load_schedule(name_or_path: str | Path) -> Schedule:
    """A preset (``quick``, ``default``, ``full``) or a schedule file, typed and checked.

    A file has two sections, ``pretrain`` and ``evaluation`` (the fields of
    :class:`PretrainSchedule` and :class:`EvalSchedule`); ``extends: default`` fills what it
    leaves out. The schedule is named by the file (its name without the suffix). An unknown
    key, a missing key or a mistyped value is one line naming the file and the key.
    """
    raw, where = read_extending(SCHEDULE, str(name_or_path))
    unknown = sorted(set(map(str, raw)) - {"pretrain", "evaluation"})
    if unknown:
        raise SsalInputError(where, f"unknown key(s) {', '.join(unknown)} (known: extends, pretrain, evaluation)")
    pre = typed(PretrainSchedule, raw.get("pretrain") or {}, where, "pretrain")
    ev = typed(EvalSchedule, raw.get("evaluation") or {}, where, "evaluation")
    return Schedule(name=Path(str(name_or_path)).stem, pretrain=pre, evaluation=ev)


#: The presets by name (``quick``: a first look in minutes; ``default``: the demo's; ``full``:
#: paper scale).
SCHEDULES: dict[str, Schedule] = {name: load_schedule(name) for name in shipped_schedules()}


__all__ = ["PretrainSchedule", "EvalSchedule", "Schedule", "SCHEDULES", "load_schedule", "shipped_schedules"]

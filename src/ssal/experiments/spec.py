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

``schedules``: name -> settings (``pretrain_epochs``, ``snapshot_every``, ``batch_size``, ``lr``,
    ``queue_size``, ``clip_len``, ``plan`` (``cpu``: the reduced 5-layer encoder; ``reference``:
    the presets' widths), ``pretrain_limit`` (files per source; ``null``: all), ``draws``,
    ``scratch_epochs`` (0: no from-scratch reference), ``scratch_draws``, ``methods`` (a subset; ``null``: all), ``folds``
    (test folds kept; ``null``: all)).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..config import deep_merge
from ..errors import SsalInputError, display_path

SPEC_SUFFIXES = (".yaml", ".yml")
#: Largest spec file read (a spec is a page of text).
MAX_SPEC_BYTES = 256 * 1024


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

    pretrain_epochs: int = 100
    snapshot_every: int = 10
    batch_size: int = 128
    lr: float = 0.1
    queue_size: int = 1024
    clip_len: int = 32
    plan: str = "cpu"
    pretrain_limit: int | None = None
    draws: int | None = None
    scratch_epochs: int = 30
    scratch_draws: int = 5
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
    folder = resources.files("ssal.experiments") / "specs"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(SPEC_SUFFIXES))


def _spec_text(name_or_path: str) -> tuple[str, str]:
    p = Path(name_or_path)
    if p.suffix.lower() in SPEC_SUFFIXES or p.exists():
        where = display_path(p)
        if not p.is_file():
            raise SsalInputError(where, "benchmark spec not found")
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise SsalInputError(where, f"benchmark spec larger than {MAX_SPEC_BYTES} bytes")
        return p.read_text(encoding="utf-8", errors="replace"), where
    if name_or_path not in shipped_specs():
        raise SsalInputError("SPEC", f"unknown benchmark {name_or_path!r}; shipped: {', '.join(shipped_specs())} "
                                     "(or give the path of a .yaml spec)")
    f = resources.files("ssal.experiments") / "specs" / f"{name_or_path}.yaml"
    return f.read_text(encoding="utf-8"), f"spec {name_or_path}"


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases (no billion-laughs expansion)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "aliases are not allowed in a spec", event.start_mark)
        return super().compose_node(parent, index)


def _typed(cls: type, data: Any, where: str, key: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and mistyped values."""
    if not isinstance(data, Mapping):
        raise SsalInputError(where, f"{key}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SsalInputError(where, f"{key}: unknown key(s) {', '.join(map(str, unknown))} "
                                    f"(known: {', '.join(known)})")
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = _coerce(known[k].type, v, where, f"{key}.{k}" if key else k)
    try:
        return cls(**out)
    except TypeError as exc:
        raise SsalInputError(where, f"{key}: {exc}") from None


def _values(v: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return (str(v),)
    if isinstance(v, list) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        return tuple(str(x) for x in v)
    raise SsalInputError(where, f"{key}: expected a value or a list of values")


def _coerce(annotation: Any, v: Any, where: str, key: str) -> Any:
    t = str(annotation)
    if t.startswith("dict[str, tuple[str"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected field -> values")
        return {str(k): _values(x, where, f"{key}.{k}") for k, x in v.items()}
    if t.startswith("tuple[str, ...]"):
        if v is None and "None" in t:
            return None
        return _values(v, where, key)
    if t.startswith("tuple[int"):
        if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
            raise SsalInputError(where, f"{key}: expected a list of positive whole numbers")
        return tuple(v)
    if t.startswith("int"):
        if v is None and "None" in t:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise SsalInputError(where, f"{key}: expected a whole number >= 0, got {v!r}")
        return v
    if t == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise SsalInputError(where, f"{key}: expected a positive number, got {v!r}")
        return float(v)
    if t.startswith("str"):
        if v is None and "None" in t:
            return None
        if not isinstance(v, str):
            raise SsalInputError(where, f"{key}: expected text, got {v!r}")
        return v
    if t.startswith("dict[str, str]"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected a mapping")
        return {str(a): str(b) for a, b in v.items()}
    if t.startswith("dict[str, Any]"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected a mapping")
        return dict(v)
    return v


def _read_raw(name_or_path: str, depth: int = 0) -> tuple[dict[str, Any], str]:
    """The spec's mapping, with ``extends: BASE`` merged over its base (mappings merge key by
    key, anything else replaces)."""
    text, where = _spec_text(name_or_path)
    try:
        raw = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SsalInputError(where, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, Mapping):
        raise SsalInputError(where, "a benchmark spec is a mapping of keys")
    raw = dict(raw)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, where
    if not isinstance(base_name, str) or depth >= 4:
        raise SsalInputError(where, "extends: expected the name or path of one spec (at most 4 levels)")
    here = Path(name_or_path)
    if Path(base_name).suffix.lower() in SPEC_SUFFIXES and not Path(base_name).is_absolute() and here.is_file():
        base_name = str(here.parent / base_name)  # a path is relative to the spec that extends it
    base, _ = _read_raw(base_name, depth + 1)
    return deep_merge(base, raw, strict=False), where


def load_spec(name_or_path: str) -> BenchmarkSpec:
    """Read and check a benchmark spec: a shipped name or a path (module docstring)."""
    raw, where = _read_raw(name_or_path)
    allowed = {"name", "title", "about", "evaluation", "split", "few_labels", "pretraining", "methods", "schedules"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SsalInputError(where, f"unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(allowed))})")
    for key in ("name", "evaluation", "split", "pretraining", "methods", "schedules"):
        if key not in raw:
            raise SsalInputError(where, f"missing key {key!r}")
    ev = _typed(EvaluationSpec, raw["evaluation"], where, "evaluation")
    split = _typed(SplitSpec, raw["split"], where, "split")
    if split.scheme not in ("leave-one-out", "fixed"):
        raise SsalInputError(where, f"split.scheme: {split.scheme!r} is not leave-one-out or fixed")
    if split.scheme == "fixed" and not (split.train and split.test):
        raise SsalInputError(where, "split: a fixed split needs train and test (field -> values)")
    few = _typed(FewLabelSpec, raw.get("few_labels") or {}, where, "few_labels")
    pre_raw = raw["pretraining"]
    if not isinstance(pre_raw, Mapping) or not isinstance(pre_raw.get("sources"), list) or not pre_raw["sources"]:
        raise SsalInputError(where, "pretraining.sources: expected a non-empty list of file selections")
    sources = tuple(_typed(FileSelection, s, where, f"pretraining.sources[{i}]") for i, s in enumerate(pre_raw["sources"]))
    pre = _typed(PretrainingSpec, {k: v for k, v in pre_raw.items() if k != "sources"}, where, "pretraining")
    pre = PretrainingSpec(sources=sources, window=pre.window, stride=pre.stride)
    methods: list[MethodEntry] = []
    if not isinstance(raw["methods"], list) or not raw["methods"]:
        raise SsalInputError(where, "methods: expected a non-empty list")
    for i, m in enumerate(raw["methods"]):
        if isinstance(m, str):
            methods.append(MethodEntry(name=m, method=m))
        else:
            methods.append(_typed(MethodEntry, m, where, f"methods[{i}]"))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise SsalInputError(where, "methods: two entries share a name")
    if not isinstance(raw["schedules"], Mapping) or not raw["schedules"]:
        raise SsalInputError(where, "schedules: expected name -> settings")
    schedules = {str(k): _typed(BenchSchedule, v or {}, where, f"schedules.{k}") for k, v in raw["schedules"].items()}
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
